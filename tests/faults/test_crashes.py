"""Scenario 1: workers SIGKILLed at random points while intents are in flight."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

from tests.faults.harness import Fleet, audit, drive_while


async def test_sigkill_workers_mid_flight_loses_and_duplicates_nothing(
    fleet: Callable[..., Fleet],
) -> None:
    stack = fleet(sim_args=["--latency-ms", "30", "--jitter-ms", "40"])
    names = ["w1", "w2", "w3"]
    for name in names:
        stack.start_worker(name)
    rng = random.Random(5)
    kills = 0

    async def killer() -> None:
        nonlocal kills
        while kills < 6:
            await asyncio.sleep(rng.uniform(0.2, 0.5))
            name = rng.choice(names)
            stack.kill(name)
            kills += 1
            await asyncio.sleep(rng.uniform(0.0, 0.3))
            await asyncio.to_thread(stack.start_worker, name)

    chaos = asyncio.create_task(killer())
    run = await drive_while(stack.redis_url, chaos, producers=3, places=150, batch=8)
    report = audit("sigkill x6", run, stack.broker.orders())
    assert kills == 6
    assert report.outcomes["place accepted"] == report.places  # every place was accepted
