"""One definition of "Redis is unreachable": outages are retried, bugs surface."""

from __future__ import annotations

import asyncio

import pytest
import redis.exceptions

from ow_core.fastlane import _Protocol
from ow_core.redis_down import is_redis_down


@pytest.mark.parametrize(
    "error",
    [
        redis.exceptions.ConnectionError("Connection refused"),
        redis.exceptions.TimeoutError("Timeout reading from socket"),
        redis.exceptions.BusyLoadingError("Redis is loading the dataset in memory"),
        ConnectionResetError(104, "Connection reset by peer"),
        OSError(113, "No route to host"),
        RuntimeError(
            "unable to perform operation on <TCPTransport closed=True reading=False>; "
            "the handler is closed"
        ),
    ],
)
def test_an_outage_is_recognised(error: BaseException) -> None:
    assert is_redis_down(error)


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError("dictionary changed size during iteration"),
        RuntimeError("Event loop is closed"),
        redis.exceptions.ResponseError("WRONGTYPE Operation against a key"),
        ValueError("bad value"),
        KeyError("x"),
    ],
)
def test_a_bug_is_not_an_outage(error: BaseException) -> None:
    assert not is_redis_down(error)


async def test_the_fast_lanes_loading_answer_is_an_outage_too() -> None:
    # A restarted Redis answers LOADING while it reads its AOF back: the consumer's reads
    # (on the fast lane, not redis-py) must ride that out like redis-py's own clients do.
    protocol = _Protocol()
    future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
    protocol.waiting.append((future, 0.0))
    protocol.data_received(b"-LOADING Redis is loading the dataset in memory\r\n")
    assert is_redis_down(future.exception() or Exception())
