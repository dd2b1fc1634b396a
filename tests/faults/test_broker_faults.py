"""Scenarios 2, 3 and 5: a broker that fails, commits then fails, or stalls; and one
request ID sent to two workers at once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

import redis

from tests.faults.harness import AuditingClient, Fleet, Run, audit, drive
from tests.integration.lifecycle.venue import eventually
from worker.local.pytest_plugin import DEMO_ACCOUNT


async def test_errors_and_commit_then_fail_never_duplicate_an_order(
    fleet: Callable[..., Fleet],
) -> None:
    stack = fleet(sim_args=["--error-rate", "0.3", "--commit-then-fail-rate", "0.1"])
    for name in ("w1", "w2"):
        stack.start_worker(name)
    run = await drive(stack.redis_url, producers=3, places=300)
    report = audit("errors 30% + commit-then-fail 10%", run, stack.broker.orders())
    stats = stack.broker.stats()
    # The faults really happened, and a place that may have gone through was looked up.
    assert stats["errors_injected"] > 50
    assert stats["commit_then_fail"] > 10
    assert stats["endpoints"]["/api/Order/search"] > 10
    assert report.outcomes["place accepted"] >= 290


async def test_stalled_places_are_looked_up_not_resent_blindly(
    fleet: Callable[..., Fleet],
) -> None:
    """A stalled place takes effect after the worker's 0.5 s timeout has given up on it."""
    stack = fleet()
    stack.broker.faults(stall_rate=0.2, stall_ms=1200, endpoints=["/api/Order/place"])
    for name in ("w1", "w2"):
        stack.start_worker(name)
    run = await drive(stack.redis_url, producers=3, places=240)
    report = audit("stalled places", run, stack.broker.orders())
    assert stack.broker.stats()["stalls"] > 20
    assert report.outcomes["place accepted"] == 240


def blocked_readers(redis_url: str) -> int:
    """Connections blocked in XREADGROUP: with the hubs off, the workers' consumers."""
    client = redis.Redis.from_url(redis_url)
    try:
        listed = cast(list[dict[str, Any]], client.client_list())
    finally:
        client.close()
    return sum(1 for c in listed if c.get("cmd") == "xreadgroup" and "b" in str(c.get("flags")))


async def test_one_request_id_sent_twice_at_once_to_two_workers_executes_once(
    fleet: Callable[..., Fleet],
) -> None:
    # No listener processes: their reads would count as waiting workers below.
    stack = fleet(
        sim_args=["--latency-ms", "30"],
        env={"PROJECTX_USER_HUB": "off", "PROJECTX_MARKET_HUB": "off"},
    )
    for name in ("w1", "w2"):
        stack.start_worker(name)

    # Both must be in their read loops when the pairs come, or one worker may take them
    # all and the test would not show two workers racing for one request ID.
    def both_waiting() -> None:
        assert blocked_readers(stack.redis_url) == 2

    await eventually(both_waiting)
    run = Run()
    async with AuditingClient(stack.redis_url, account_id=DEMO_ACCOUNT, timeout=30) as client:

        async def twice(n: int) -> None:
            intent = client.make_place("MNQ", "BUY", 1, custom_tag="twice")
            run.intents[intent.request_id] = intent
            # Two entries with one request ID, back to back: the two blocked workers each
            # wake up with one of them.
            await client.submit(intent)
            await client.submit(intent)
            run.results[intent.request_id] = await client.wait(intent.request_id)

        await asyncio.gather(*(twice(n) for n in range(60)))
        await asyncio.sleep(0.5)  # let the second replies arrive
        run.replies.update(client.replies)
    report = audit("same request ID twice", run, stack.broker.orders())
    assert report.outcomes["place accepted"] == 60
    # Every entry got its reply, and both replies of a request are the same result.
    assert all(len(replies) == 2 for replies in run.replies.values())
    workers = {r.worker for replies in run.replies.values() for r in replies}
    assert workers == {"w1", "w2"}
