"""Session tokens: JWT-shaped strings that the simulator issues, checks and revokes.

The signature is random bytes, not a real signature: only this process ever checks a token,
by looking it up. Times are epoch seconds passed in by the caller.
"""

import base64
import secrets
from dataclasses import dataclass

import msgspec

# docs/gateway.md §1: "session tokens are only valid for 24 hours".
DEFAULT_TTL_S = 24 * 60 * 60.0

_HEADER = msgspec.json.encode({"alg": "HS256", "typ": "JWT"})


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True, slots=True)
class Session:
    """Who a token belongs to and when it stops working."""

    user: str
    expires_at: float


class TokenStore:
    """Tokens issued by this simulator; a token is valid while stored and not expired."""

    def __init__(self, ttl_s: float = DEFAULT_TTL_S) -> None:
        self._ttl_s = ttl_s
        self._sessions: dict[str, Session] = {}

    def issue(self, user: str, now: float) -> str:
        """A new token for the user, valid for the configured lifetime from now."""
        expires_at = now + self._ttl_s
        payload = {"sub": user, "exp": int(expires_at), "jti": secrets.token_hex(16)}
        token = ".".join(
            (
                _b64url(_HEADER),
                _b64url(msgspec.json.encode(payload)),
                _b64url(secrets.token_bytes(32)),
            )
        )
        self._sessions[token] = Session(user, expires_at)
        return token

    def user_of(self, token: str, now: float) -> str | None:
        """The user a live token belongs to, or None for unknown, expired or revoked tokens."""
        session = self.session(token, now)
        return None if session is None else session.user

    def session(self, token: str, now: float) -> Session | None:
        """The live session of a token, or None for unknown, expired or revoked tokens."""
        session = self._sessions.get(token)
        if session is None:
            return None
        if now >= session.expires_at:
            del self._sessions[token]
            return None
        return session

    def revoke(self, token: str) -> None:
        """Make the token invalid (logout)."""
        self._sessions.pop(token, None)
