"""Session tokens: shape, lifetime, revocation."""

import base64
import json

from simulator.tokens import DEFAULT_TTL_S, TokenStore

T0 = 1_750_000_000.0


def _segment(token: str, index: int) -> bytes:
    part = token.split(".")[index]
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def test_token_is_jwt_shaped() -> None:
    token = TokenStore(ttl_s=60).issue("alice", T0)
    assert len(token.split(".")) == 3
    assert json.loads(_segment(token, 0)) == {"alg": "HS256", "typ": "JWT"}
    payload = json.loads(_segment(token, 1))
    assert payload["sub"] == "alice"
    assert payload["exp"] == int(T0 + 60)
    assert len(payload["jti"]) == 32
    assert len(_segment(token, 2)) == 32
    assert "=" not in token


def test_default_lifetime_is_24_hours() -> None:
    store = TokenStore()
    token = store.issue("bob", T0)
    assert DEFAULT_TTL_S == 86_400
    assert store.user_of(token, T0 + 86_399.9) == "bob"
    assert store.user_of(token, T0 + 86_400) is None


def test_token_expires_and_stays_expired() -> None:
    store = TokenStore(ttl_s=10)
    token = store.issue("carol", T0)
    assert store.user_of(token, T0) == "carol"
    assert store.user_of(token, T0 + 9.99) == "carol"
    assert store.user_of(token, T0 + 10) is None
    assert store.user_of(token, T0) is None  # expired tokens are forgotten


def test_tokens_are_distinct_and_revocable() -> None:
    store = TokenStore(ttl_s=10)
    first, second = store.issue("dave", T0), store.issue("dave", T0)
    assert first != second
    store.revoke(first)
    assert store.user_of(first, T0) is None
    assert store.user_of(second, T0) == "dave"
    store.revoke("never-issued")  # revoking an unknown token is harmless
    assert store.user_of("never-issued", T0) is None
