"""The pipelined hot-path connection, against a real redis-server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import redis
import redis.exceptions

from ow_core.fastlane import FastLane, Script
from worker.local.stack import RedisServer


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    own = RedisServer(tmp_path).start()
    yield own
    own.cleanup()


async def test_concurrent_commands_share_one_connection_and_answer_in_order(
    server: RedisServer,
) -> None:
    lane = FastLane(server.url)
    answers = await asyncio.gather(*(lane.execute("INCR", "n") for _ in range(200)))
    assert sorted(answers) == list(range(1, 201))
    client = redis.Redis.from_url(server.url)
    listed = cast(list[dict[str, Any]], client.client_list())
    client.close()
    assert len([c for c in listed if c["cmd"] == "incr"]) == 1
    await lane.close()


async def test_scripts_load_themselves_and_errors_are_redis_py_errors(server: RedisServer) -> None:
    lane = FastLane(server.url)
    script = Script("return {KEYS[1], ARGV[1]}")
    assert await lane.run(script, ["k"], ["v"]) == [b"k", b"v"]  # NOSCRIPT, then EVAL
    assert await lane.run(script, ["k"], [2]) == [b"k", b"2"]  # by SHA now
    await lane.execute("SET", "s", "text")
    with pytest.raises(redis.exceptions.ResponseError, match="WRONGTYPE"):
        await lane.execute("LPUSH", "s", "x")
    assert await lane.execute("GET", "s") == b"text"  # the connection is still good
    await lane.close()


async def test_a_restarted_redis_fails_requests_in_flight_then_reconnects(
    server: RedisServer,
) -> None:
    lane = FastLane(server.url)
    blocked = asyncio.ensure_future(lane.execute("BLPOP", "never", 5))
    await asyncio.sleep(0.1)
    server.kill()
    with pytest.raises(redis.exceptions.ConnectionError):
        await blocked
    with pytest.raises(redis.exceptions.ConnectionError):
        await lane.execute("PING")
    server.start()
    assert await lane.execute("PING") == b"PONG"
    await lane.close()


async def test_an_unanswered_request_times_out(server: RedisServer) -> None:
    lane = FastLane(server.url, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(redis.exceptions.TimeoutError):
        await lane.execute("BLPOP", "never", 10)
    assert time.monotonic() - started < 2.5  # the watchdog looks once a second
    assert await lane.execute("PING") == b"PONG"  # and a fresh connection follows
    await lane.close()


async def test_a_password_and_a_database_in_the_url_are_used(tmp_path: Path) -> None:
    guarded = RedisServer(tmp_path).start()
    admin = redis.Redis.from_url(guarded.url)
    admin.config_set("requirepass", "s3cret")
    admin.close()
    try:
        lane = FastLane(f"redis://:s3cret@127.0.0.1:{guarded.port}/3")
        await lane.execute("SET", "where", "db3")
        check = redis.Redis.from_url(f"redis://:s3cret@127.0.0.1:{guarded.port}/3")
        assert check.get("where") == b"db3"
        check.close()
        await lane.close()
        with pytest.raises(redis.exceptions.ResponseError):
            await FastLane(f"redis://:wrong@127.0.0.1:{guarded.port}/0").execute("PING")
    finally:
        guarded.cleanup()
