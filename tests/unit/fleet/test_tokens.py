"""The fleet's shared token: one worker obtains it, the others take it from Redis."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgspec
import pytest

from ow_core.keys import Keys
from tests.unit.worker.ledger_fakes import make_redis
from worker.broker.errors import BrokerUnavailable
from worker.broker.models import Token
from worker.fleet.tokens import SharedTokens

KEYS = Keys("t")


def token(value: str, *, lifetime: float = 3600.0) -> Token:
    now = time.time()
    return Token(value, now, now + lifetime)


async def test_no_shared_token_at_first() -> None:
    assert await SharedTokens(make_redis(), KEYS).current() is None


async def test_a_token_obtained_is_shared_with_the_next_worker() -> None:
    redis = make_redis()
    first, second = SharedTokens(redis, KEYS), SharedTokens(redis, KEYS)
    obtained = await first.replace(None, lambda: _ready(token("t1")))
    assert obtained.value == "t1"
    calls = 0

    async def never() -> Token:
        nonlocal calls
        calls += 1
        return token("t2")

    assert (await second.replace(None, never)).value == "t1"
    assert calls == 0
    current = await second.current()
    assert current is not None
    assert current.value == "t1"
    assert 0 < await redis.pttl(KEYS.token) <= 3600 * 1000


async def test_a_stale_token_is_replaced_once_however_many_ask() -> None:
    redis = make_redis()
    await SharedTokens(redis, KEYS).replace(None, lambda: _ready(token("old")))
    obtained = 0

    async def obtain() -> Token:
        nonlocal obtained
        obtained += 1
        await asyncio.sleep(0.05)  # while this worker renews, the others wait for it
        return token("new")

    workers = [SharedTokens(redis, KEYS) for _ in range(5)]
    got = await asyncio.gather(*(w.replace("old", obtain) for w in workers))
    assert {t.value for t in got} == {"new"}
    assert obtained == 1
    assert not await redis.exists(KEYS.token_lock)  # the lock is given back


async def test_an_expired_or_unreadable_shared_token_is_none() -> None:
    redis = make_redis()
    store = SharedTokens(redis, KEYS)
    now = time.time()
    await redis.set(KEYS.token, msgspec.json.encode(Token("gone", now - 7200, now - 1)))
    assert await store.current() is None
    await redis.set(KEYS.token, b"not a token")
    assert await store.current() is None


async def test_a_stuck_lock_holder_is_not_waited_for_ever() -> None:
    redis = make_redis()
    await redis.set(KEYS.token_lock, b"someone-else", px=60_000)
    store = SharedTokens(redis, KEYS, lock_ms=200)
    started = time.monotonic()
    obtained = await store.replace(None, lambda: _ready(token("mine")))
    assert obtained.value == "mine"
    assert time.monotonic() - started >= 0.2


async def test_redis_down_means_renewing_alone() -> None:
    store = SharedTokens(_Down(), KEYS)  # type: ignore[arg-type]
    assert await store.current() is None
    assert (await store.replace(None, lambda: _ready(token("alone")))).value == "alone"


class _Down:
    """A Redis client whose every command fails as an unreachable server does."""

    def __getattr__(self, name: str) -> Any:
        import redis.exceptions

        async def fail(*_: Any, **__: Any) -> Any:
            raise redis.exceptions.ConnectionError("Error 111 connecting: Connection refused")

        return fail


async def _ready(value: Token) -> Token:
    return value


async def test_waiting_for_another_workers_login_ends_at_the_deadline_unsent() -> None:
    redis = make_redis()
    # Another worker holds the turn (logging in to a broker that does not answer).
    await redis.set(KEYS.token_lock, b"other", px=10_000)
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable) as waited:
        await SharedTokens(redis, KEYS).replace(None, never_called, deadline=started + 0.2)
    assert waited.value.sent is False
    # It gave up at the deadline, not at the lock's 10 s.
    assert time.monotonic() - started < 5


async def never_called() -> Token:
    raise AssertionError("only the lock's holder logs in")
