"""Trimming the intents stream with MINID: acknowledged history goes, work never does."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from ow_core.keys import Keys
from tests.unit.worker.ledger_fakes import make_redis
from worker.housekeeping import forget_idle_consumers, trim_floor, trim_intents

KEYS = Keys()
RETENTION_S = 3600


@pytest.fixture
async def redis() -> AsyncIterator[Any]:
    client = make_redis()
    yield client
    await client.aclose()


async def add(redis: Any, *entry_ids: str) -> None:
    for entry_id in entry_ids:
        await redis.xadd(KEYS.intents, {b"n": entry_id.encode()}, id=entry_id)


async def deliver(redis: Any, count: int, group: str = KEYS.group) -> list[str]:
    answer = await redis.xreadgroup(group, "w1", {KEYS.intents: ">"}, count=count)
    return [entry_id.decode() for entry_id, _ in answer[0][1]] if answer else []


async def left(redis: Any) -> list[str]:
    return [entry_id.decode() for entry_id, _ in await redis.xrange(KEYS.intents)]


async def test_nothing_to_trim_without_a_stream_or_a_group(redis: Any) -> None:
    assert await trim_floor(redis, KEYS, RETENTION_S) is None
    assert await trim_intents(redis, KEYS, RETENTION_S) == 0
    await add(redis, "1000-0")
    assert await trim_floor(redis, KEYS, RETENTION_S) is None
    assert await trim_intents(redis, KEYS, RETENTION_S) == 0
    assert await left(redis) == ["1000-0"]


async def test_pending_and_undelivered_entries_are_never_trimmed(redis: Any) -> None:
    await redis.xgroup_create(KEYS.intents, KEYS.group, id="0", mkstream=True)
    await add(redis, "1000-0", "2000-0", "3000-0", "4000-0")  # all long past the retention
    assert await deliver(redis, 3) == ["1000-0", "2000-0", "3000-0"]
    await redis.xack(KEYS.intents, KEYS.group, "1000-0", "3000-0")

    # 2000-0 is pending, 4000-0 was never delivered: only 1000-0 may go.
    assert await trim_floor(redis, KEYS, RETENTION_S) == "2000-0"
    assert await trim_intents(redis, KEYS, RETENTION_S) == 1
    assert await left(redis) == ["2000-0", "3000-0", "4000-0"]

    await redis.xack(KEYS.intents, KEYS.group, "2000-0")
    assert await trim_floor(redis, KEYS, RETENTION_S) == "3000-1"
    assert await trim_intents(redis, KEYS, RETENTION_S) == 2
    assert await left(redis) == ["4000-0"]

    # Delivered and acknowledged at last: now it goes too.
    assert await deliver(redis, 1) == ["4000-0"]
    assert await trim_intents(redis, KEYS, RETENTION_S) == 0  # pending
    await redis.xack(KEYS.intents, KEYS.group, "4000-0")
    assert await trim_intents(redis, KEYS, RETENTION_S) == 1
    assert await left(redis) == []


async def test_nothing_delivered_means_nothing_trimmed(redis: Any) -> None:
    await redis.xgroup_create(KEYS.intents, KEYS.group, id="0", mkstream=True)
    await add(redis, "1000-0", "1000-1")
    assert await trim_floor(redis, KEYS, RETENTION_S) == "0-1"
    assert await trim_intents(redis, KEYS, RETENTION_S) == 0
    assert await left(redis) == ["1000-0", "1000-1"]


async def test_acknowledged_entries_within_the_retention_are_kept(redis: Any) -> None:
    now_ms = int(time.time() * 1000)
    old = "1000-0"
    recent = f"{now_ms - 60_000}-0"  # a minute old, retention one hour
    await redis.xgroup_create(KEYS.intents, KEYS.group, id="0", mkstream=True)
    await add(redis, old, recent)
    assert await deliver(redis, 2) == [old, recent]
    await redis.xack(KEYS.intents, KEYS.group, old, recent)

    floor = await trim_floor(redis, KEYS, RETENTION_S)
    assert floor is not None
    floor_ms = int(floor.split("-")[0])
    assert now_ms - RETENTION_S * 1000 - 5000 <= floor_ms <= now_ms - RETENTION_S * 1000 + 5000
    assert await trim_intents(redis, KEYS, RETENTION_S) == 1
    assert await left(redis) == [recent]
    # With a retention shorter than its age, it goes as well.
    assert await trim_intents(redis, KEYS, 30) == 1
    assert await left(redis) == []


async def test_every_group_must_be_done_with_an_entry(redis: Any) -> None:
    await redis.xgroup_create(KEYS.intents, KEYS.group, id="0", mkstream=True)
    await redis.xgroup_create(KEYS.intents, "recorder", id="0")
    await add(redis, "1000-0", "2000-0")
    await deliver(redis, 2)
    await redis.xack(KEYS.intents, KEYS.group, "1000-0", "2000-0")
    assert await deliver(redis, 1, group="recorder") == ["1000-0"]

    # The recorder still has 1000-0 pending and has not seen 2000-0.
    assert await trim_intents(redis, KEYS, RETENTION_S) == 0
    await redis.xack(KEYS.intents, "recorder", "1000-0")
    assert await trim_intents(redis, KEYS, RETENTION_S) == 1
    assert await left(redis) == ["2000-0"]


async def test_idle_consumers_with_nothing_pending_are_forgotten(redis: Any) -> None:
    assert await forget_idle_consumers(redis, KEYS, idle_ms=0) == 0  # no stream yet
    await redis.xgroup_create(KEYS.intents, KEYS.group, id="0", mkstream=True)
    await add(redis, "1000-0", "2000-0")
    await redis.xreadgroup(KEYS.group, "gone", {KEYS.intents: ">"}, count=1)
    await redis.xack(KEYS.intents, KEYS.group, "1000-0")
    await redis.xreadgroup(KEYS.group, "busy", {KEYS.intents: ">"}, count=1)

    assert await forget_idle_consumers(redis, KEYS, idle_ms=3_600_000) == 0
    assert await forget_idle_consumers(redis, KEYS, idle_ms=0) == 1
    consumers = await redis.xinfo_consumers(KEYS.intents, KEYS.group)
    assert [c["name"] for c in consumers] == [b"busy"]
