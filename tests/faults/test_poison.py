"""Scenario 6: an entry that always crashes execution ends in the dead-letter stream after
the configured deliveries, and the workers keep serving everything else."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from producer import OrderClient
from tests.faults.harness import Fleet
from worker.local.pytest_plugin import DEMO_ACCOUNT
from worker.local.stack import StackError

POISON_WORKER = [sys.executable, str(Path(__file__).with_name("poison_worker.py"))]


@pytest.mark.parametrize("mode", ["raise", "crash"])
async def test_a_poison_entry_is_dead_lettered_and_others_are_served(
    fleet: Callable[..., Fleet], mode: str
) -> None:
    stack = fleet(env={"WORKER_MAX_DELIVERIES": "3", "POISON_MODE": mode})
    names = ("w1", "w2")
    for name in names:
        stack.start_worker(name, argv=POISON_WORKER)
    restarts = 0

    async def supervisor() -> None:
        """Restart dead workers, as systemd or Docker would."""
        nonlocal restarts
        while True:
            await asyncio.sleep(0.1)
            for name in names:
                if not stack.workers[name].alive:
                    restarts += 1
                    # A restarted worker may resume the poison entry and die before it
                    # is seen to be ready; the next round restarts it again.
                    with contextlib.suppress(StackError):
                        await asyncio.to_thread(stack.start_worker, name, argv=POISON_WORKER)

    keeper = asyncio.create_task(supervisor())
    try:
        async with OrderClient(stack.redis_url, account_id=DEMO_ACCOUNT, timeout=30) as client:
            poison = await client.submit(client.make_place("MNQ", "BUY", 1, custom_tag="poison"))
            others = [await client.submit(client.make_place("ES", "SELL", 1)) for _ in range(100)]
            served = await asyncio.gather(*(client.wait(r) for r in others))
            dead = await client.wait(poison)
    finally:
        keeper.cancel()

    assert [r.status for r in served] == ["accepted"] * 100
    assert dead.status == "failed"
    assert dead.error_code == "dead_lettered"
    assert "delivered 4 times" in (dead.message or "")
    assert "not placed" in (dead.message or "")
    redis = aioredis.Redis.from_url(stack.redis_url)
    try:
        [(_, fields)] = await redis.xrange("ow:dead")
    finally:
        await redis.aclose()
    record = json.loads(fields[b"record"])
    assert record["request_id"] == poison
    assert record["deliveries"] == 4
    claims = [h for h in record["history"] if h.startswith("claim ")]
    assert len(claims) == 3
    if mode == "raise":
        assert sum("always crashes" in h for h in record["history"]) == 3
        assert restarts == 0
    else:
        assert restarts >= 3
    tags = [o["customTag"] for o in stack.broker.orders()]
    assert not any(t and t.startswith("poison") for t in tags)
