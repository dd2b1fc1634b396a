"""The leader lease: one worker runs the job; when it goes, another takes over; a worker that
lost the lease stops at once."""

from __future__ import annotations

import asyncio
from typing import Any

from ow_core.aio import cancel_and_wait
from tests.unit.worker.ledger_fakes import make_redis
from worker.hubs.leader import Leadership, Lease

KEY = "t:leader:user"


def leadership(redis: Any, name: str, running: set[str]) -> Leadership:
    async def job() -> None:
        running.add(name)
        try:
            await asyncio.Event().wait()
        finally:
            running.discard(name)

    return Leadership(Lease(redis, KEY, name, ttl_ms=600), job, what="test", try_s=0.05)


async def until(condition: Any, timeout: float = 3.0) -> None:
    for _ in range(int(timeout / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not so within {timeout} s")


async def test_one_worker_leads_and_another_takes_over_when_it_stops() -> None:
    redis = make_redis()
    running: set[str] = set()
    first, second = leadership(redis, "w1", running), leadership(redis, "w2", running)
    one = asyncio.create_task(first.run())
    await until(lambda: running == {"w1"})
    two = asyncio.create_task(second.run())
    await asyncio.sleep(0.8)  # longer than the lease: w1 renews it, w2 never gets it
    assert running == {"w1"}
    assert first.leading
    assert not second.leading
    await cancel_and_wait([one])
    await first.stop()
    await until(lambda: running == {"w2"}, timeout=0.5)  # released: no wait for expiry
    await cancel_and_wait([two])


async def test_a_dead_leaders_lease_expires_and_is_taken() -> None:
    redis = make_redis()
    running: set[str] = set()
    await redis.set(KEY, "dead-worker", px=300)
    task = asyncio.create_task(leadership(redis, "w2", running).run())
    await asyncio.sleep(0.1)
    assert running == set()
    await until(lambda: running == {"w2"}, timeout=1.0)
    await cancel_and_wait([task])


async def test_a_leader_that_lost_its_lease_stops_its_job() -> None:
    redis = make_redis()
    running: set[str] = set()
    task = asyncio.create_task(leadership(redis, "w1", running).run())
    await until(lambda: running == {"w1"})
    await redis.set(KEY, "w9", px=60_000)  # another worker holds it now (after a stall)
    await until(lambda: running == set(), timeout=1.0)
    assert await redis.get(KEY) == b"w9"
    await cancel_and_wait([task])
