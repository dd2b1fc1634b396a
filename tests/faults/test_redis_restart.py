"""Scenario 4: redis-server killed and restarted mid-run, with append-only persistence."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from tests.faults.harness import Fleet, audit, drive_while


async def test_workers_and_producers_ride_out_a_redis_restart(
    fleet: Callable[..., Fleet],
) -> None:
    stack = fleet(appendonly=True, sim_args=["--latency-ms", "20", "--jitter-ms", "20"])
    for name in ("w1", "w2"):
        stack.start_worker(name)

    async def restart_redis() -> None:
        await asyncio.sleep(1.0)
        stack.redis.kill()  # SIGKILL: whatever Redis has not written to its AOF is gone
        await asyncio.sleep(1.0)
        await asyncio.to_thread(stack.redis.start)

    outage = asyncio.create_task(restart_redis())
    run = await drive_while(stack.redis_url, outage, producers=3, places=150, batch=8)
    report = audit("redis restart (AOF everysec)", run, stack.broker.orders())
    # Each round: 150 places, 30 modifies, 30 cancels; every place accepted.
    assert report.outcomes["place accepted"] == report.places  # every place was accepted
    assert all(process.alive for process in stack.workers.values())
