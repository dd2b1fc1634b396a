"""The broker session: log in with the API key, renew the token before it expires, log in
again once after a 401.

With a shared ``TokenStore`` (``worker.fleet.tokens``) the whole fleet uses one token:
a worker needing a new one takes it from the store if another worker just renewed it, and
only one worker at a time asks the broker.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Final, Protocol

import msgspec

from worker.broker.errors import (
    BrokerAuthError,
    BrokerProtocolError,
    BrokerRejected,
    BrokerUnavailable,
)
from worker.broker.models import (
    JwtClaims,
    LoginKeyRequest,
    LoginRefusal,
    LoginResponse,
    Token,
    ValidateResponse,
)
from worker.broker.transport import LOGIN_ENDPOINT, CallStats, Transport
from worker.observe import Observer

log = logging.getLogger("worker.broker")

_CLAIMS: Final = msgspec.json.Decoder(JwtClaims)


# A refused login is not asked again for 1 s, then 2, 4, ... up to a minute.
FIRST_LOGIN_WAIT_S: Final = 1.0
LAST_LOGIN_WAIT_S: Final = 60.0


def login_not_reached() -> BrokerUnavailable:
    """The deadline came while another request (here or in the fleet) was logging in."""
    return BrokerUnavailable(
        f"{LOGIN_ENDPOINT} not sent: the deadline came while another login was under way",
        endpoint=LOGIN_ENDPOINT,
        sent=False,
    )


class TokenStore(Protocol):
    """Where a fleet of clients shares one token (``worker.fleet.tokens.SharedTokens``)."""

    async def current(self) -> Token | None:
        """The shared token, if there is one."""

    async def replace(
        self,
        stale: str | None,
        obtain: Callable[[], Awaitable[Token]],
        deadline: float | None = None,
    ) -> Token:
        """A token to use instead of ``stale``: one another client already obtained, or
        ``obtain()``'s, by at most one client at a time; ``BrokerUnavailable`` (not sent)
        if another client still holds the turn at ``deadline`` (``time.monotonic()``)."""

    async def refusal(self) -> LoginRefusal | None:
        """A login refusal the fleet is waiting out, if any."""

    async def refused(self, refusal: LoginRefusal) -> None:
        """Share a refusal, so no other client asks before ``refusal.until``."""

    async def accepted(self) -> None:
        """A login worked: forget any refusal."""


def next_refusal(previous: LoginRefusal | None, message: str, now: float) -> LoginRefusal:
    """The refusal after one more refused login: the wait doubles, up to a minute."""
    failures = 1 if previous is None else previous.failures + 1
    wait = min(FIRST_LOGIN_WAIT_S * 2 ** (failures - 1), LAST_LOGIN_WAIT_S)
    return LoginRefusal(message=message, failures=failures, at=now, until=now + wait)


def token_expiry(token: str) -> float | None:
    """The ``exp`` claim (epoch seconds) of a JWT, or None when it has none we can read."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        return _CLAIMS.decode(payload).exp
    except (binascii.Error, ValueError, msgspec.DecodeError):
        return None


class SessionAuth:
    """The session token of one client, renewed ahead of its expiry."""

    def __init__(
        self,
        transport: Transport,
        *,
        username: str,
        api_key: str,
        token_lifetime: float = 24 * 3600.0,
        renew_margin: float = 3600.0,
        clock: Callable[[], float] = time.time,
        tokens: TokenStore | None = None,
        observer: Observer | None = None,
    ) -> None:
        self._transport = transport
        self._username = username
        self._api_key = api_key
        self._token_lifetime = token_lifetime
        self._renew_margin = renew_margin
        self._clock = clock
        self._tokens = tokens
        self._observer = observer or Observer()
        self._refusal: LoginRefusal | None = None
        self._token: Token | None = None
        self._lock = asyncio.Lock()
        self.headers: dict[str, str] = {}
        self.logins = 0
        """Logins performed (a test and metrics figure)."""

    def __repr__(self) -> str:
        return f"SessionAuth(username={self._username!r})"

    def set_token(self, token: str, expires_at: float | None = None) -> None:
        """Use this session token (expiry read from the JWT unless given, epoch seconds)."""
        now = self._clock()
        self._use(
            Token(token, now, expires_at or token_expiry(token) or now + self._token_lifetime)
        )

    def get_token(self) -> str | None:
        """The current session token, if any."""
        return None if self._token is None else self._token.value

    @property
    def token_expires_at(self) -> float:
        """When the current token expires (epoch seconds; 0 without a token)."""
        return 0.0 if self._token is None else self._token.expires_at

    async def login(self, stats: CallStats | None = None, *, deadline: float | None = None) -> None:
        """POST /api/Auth/loginKey: a new session token (§2.1), shared if a store is set."""
        async with self._turn(deadline):
            await self._refresh(self.get_token(), lambda: self._login(stats, deadline), deadline)

    async def ensure_token(
        self, stats: CallStats | None = None, *, deadline: float | None = None
    ) -> str:
        """A token good for a while yet: the current one, the fleet's, or a renewed one."""
        if not self._due():
            assert self._token is not None
            return self._token.value
        async with self._turn(deadline):
            # Another request may have renewed it while this one waited for the lock.
            if self._due():
                shared = await self._tokens.current() if self._tokens is not None else None
                if shared is not None and not shared.due(self._clock(), self._renew_margin):
                    self._use(shared)
                else:
                    await self._refresh(
                        self.get_token(), lambda: self._renewed(stats, deadline), deadline
                    )
            assert self._token is not None
            return self._token.value

    async def after_401(
        self, refused: str, stats: CallStats | None, deadline: float | None
    ) -> None:
        """A fresh login, unless another request already replaced the refused token."""
        async with self._turn(deadline):
            if self.get_token() == refused:
                await self._refresh(refused, lambda: self._login(stats, deadline), deadline)

    # --- internals ----------------------------------------------------------------------

    def _use(self, token: Token) -> None:
        self._token = token
        self.headers = {
            "Authorization": f"Bearer {token.value}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }

    def _due(self) -> bool:
        """No token, or one close enough to its expiry to renew now."""
        return self._token is None or self._token.due(self._clock(), self._renew_margin)

    @contextlib.asynccontextmanager
    async def _turn(self, deadline: float | None) -> AsyncIterator[None]:
        """This process's turn to log in or renew, waited for no longer than ``deadline``:
        an intent behind a slow login expires unsent on time rather than answer late."""
        wait = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            await asyncio.wait_for(self._lock.acquire(), wait)
        except TimeoutError:
            raise login_not_reached() from None
        try:
            yield
        finally:
            self._lock.release()

    async def _refresh(
        self, stale: str | None, obtain: Callable[[], Awaitable[Token]], deadline: float | None
    ) -> None:
        token = await (self._tokens.replace(stale, obtain, deadline) if self._tokens else obtain())
        self._use(token)

    async def _login(self, stats: CallStats | None, deadline: float | None) -> Token:
        """loginKey, unless a refusal is being waited out (here or anywhere in the fleet):
        a wrong key must cost one login per back-off step, not one per intent."""
        await self._wait_out_refusal()
        body = LoginKeyRequest(user_name=self._username, api_key=self._api_key)
        try:
            answer = await self._transport.call(
                LOGIN_ENDPOINT,
                body,
                LoginResponse,
                idempotent=True,
                stats=stats,
                deadline=deadline,
                auth="none",
            )
        except BrokerAuthError as error:
            await self._refused(error)
            raise
        if self._refusal is not None:
            log.warning("broker login works again after %d refusals", self._refusal.failures)
        self._refusal = None
        if self._tokens is not None:
            await self._tokens.accepted()
        self._observer.broker_login(True, "")
        if not answer.token:
            raise BrokerProtocolError(
                "login answered success without a token", endpoint=LOGIN_ENDPOINT, sent=True
            )
        self.logins += 1
        return self._token_of(answer.token)

    async def _wait_out_refusal(self) -> None:
        now = self._clock()
        refusal = self._refusal
        if self._tokens is not None:
            shared = await self._tokens.refusal()
            if shared is not None and (refusal is None or shared.until > refusal.until):
                refusal = self._refusal = shared
        if refusal is not None and now < refusal.until:
            raise BrokerAuthError(
                f"{refusal.message} ({refusal.failures} refusals in a row; the next login is "
                f"tried in {refusal.until - now:.0f} s); not sent",
                endpoint=LOGIN_ENDPOINT,
            )

    async def _refused(self, error: BrokerAuthError) -> None:
        """One refusal more: wait longer before the next login, say so once, share it."""
        refusal = next_refusal(self._refusal, error.message, self._clock())
        if refusal.failures == 1:
            log.error(
                "%s: no order can be sent until a login works (tried again in %.0f s, then "
                "less and less often)",
                error.message,
                refusal.until - refusal.at,
            )
        self._refusal = refusal
        self._observer.broker_login(False, error.message)
        if self._tokens is not None:
            await self._tokens.refused(refusal)

    async def _renewed(self, stats: CallStats | None, deadline: float | None) -> Token:
        """validate for a fresh token; a full login without a token or when refused."""
        current = self._token
        if current is None or self._clock() >= current.expires_at:
            return await self._login(stats, deadline)
        try:
            answer = await self._transport.call(
                "/api/Auth/validate",
                None,
                ValidateResponse,
                idempotent=True,
                stats=stats,
                deadline=deadline,
                auth="token",
            )
        except (BrokerRejected, BrokerAuthError):
            return await self._login(stats, deadline)
        if not answer.new_token:
            # Still valid, no new one offered: keep it until the next renewal is due.
            return current
        return self._token_of(answer.new_token)

    def _token_of(self, value: str) -> Token:
        now = self._clock()
        return Token(value, now, token_expiry(value) or now + self._token_lifetime)
