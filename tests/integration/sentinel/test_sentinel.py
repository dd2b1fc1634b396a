"""On a Sentinel group (one primary, one replica, three sentinels, all started here):
orders flow with the primary found through Sentinel, and a failover mid-burst costs no
duplicate and no unasked order at the broker.

The group is shared by the module (it takes a few seconds to form); the failover test
kills its primary, so it runs last.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import redis.exceptions

from ow_core.fastlane import FastLane
from producer import OrderClient, replay
from tests.faults.harness import FAST, AuditingClient, Run, audit, drive_while
from worker.local.pytest_plugin import DEMO_ACCOUNT, BrokerSim
from worker.local.sentinel import MASTER, SentinelGroup
from worker.local.stack import Process, start_simulator, start_worker, worker_env

# The URL's host is never used with Sentinel: nothing listens on port 1.
NOWHERE = "redis://127.0.0.1:1/0"


@dataclass
class Stack:
    group: SentinelGroup
    broker: BrokerSim
    workers: list[Process]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    logs = tmp_path_factory.mktemp("sentinel")
    group = SentinelGroup(logs).start()
    process, url = start_simulator(logs, ["--no-rate-limit", "--seed", "5"])
    started = Stack(group, BrokerSim(url, process), [])
    try:
        for name in ("s1", "s2"):
            env = worker_env(group.primary.url, url, name, {**FAST, **group.env})
            started.workers.append(start_worker(logs, env))
        yield started
    finally:
        for worker in started.workers:
            worker.kill()
        process.stop()
        group.stop()


def client(stack: Stack) -> OrderClient:
    return OrderClient(
        NOWHERE, account_id=DEMO_ACCOUNT, sentinels=stack.group.addresses, sentinel_master=MASTER
    )


async def test_orders_and_the_cli_reach_the_primary_through_sentinel(stack: Stack) -> None:
    async with client(stack) as strategy:
        placed = await asyncio.gather(
            *(strategy.place_order("MNQ", "BUY", 1, stop_loss_ticks=20) for _ in range(20))
        )
        resting = await strategy.place_order("ES", "BUY", 1, order_type="limit", limit_price=4000.0)
        assert resting.order_id is not None
        modified = await strategy.modify_order(resting.order_id, price=4000.25)
        cancelled = await strategy.cancel_order(resting.order_id)
    assert [r.status for r in (*placed, resting, modified, cancelled)] == ["accepted"] * 23
    sentinels = ",".join(f"{h}:{p}" for h, p in stack.group.addresses)
    status = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "worker", "status", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            "REDIS_URL": NOWHERE,
            "REDIS_SENTINELS": sentinels,
            "REDIS_SENTINEL_MASTER": MASTER,
            "PATH": "/usr/bin:/bin",
        },
        check=False,
    )
    assert status.returncode == 0, status.stderr
    assert {w["name"] for w in json.loads(status.stdout)["workers"]} == {"s1", "s2"}


async def test_a_lane_on_a_demoted_server_drops_it_and_finds_the_primary(stack: Stack) -> None:
    # A lane that reached a replica (as one does whose primary was demoted by a failover)
    # is refused every write: it gives the connection up as an outage, and a lane that
    # asks Sentinel finds the primary.
    stale = FastLane(stack.group.replica.url)
    with pytest.raises(redis.exceptions.ConnectionError, match="replica"):
        await stale.execute("XADD", "ow:probe", "*", "f", "v")
    await stale.close()
    lane = stack.group.target(NOWHERE).lane()
    assert await lane.execute("XADD", "ow:probe", "*", "f", "v")
    role = await lane.execute("ROLE")
    assert role[0] == b"master"
    await lane.execute("DEL", "ow:probe")
    await lane.close()


async def test_a_failover_mid_burst_places_nothing_twice_and_nothing_unasked(
    stack: Stack,
) -> None:
    group = stack.group
    old = group.primary_port()
    stack.broker.reset()  # the audit counts this test's orders only

    async def fail_over() -> None:
        await asyncio.sleep(1.0)
        group.primary.kill()  # SIGKILL: whatever it has not sent to its replica is gone
        await asyncio.to_thread(group.wait_failover, old)

    failover = asyncio.create_task(fail_over())
    run = await drive_while(
        NOWHERE,
        failover,
        producers=3,
        places=120,
        batch=8,
        timeout=10,
        sentinels=group.addresses,
        sentinel_master=MASTER,
    )
    assert group.primary_port() == group.replica.port
    resubmitted = await settle_the_lost(stack, run)
    twice = sum(len(replies) > 1 for replies in run.replies.values())
    report = audit(
        f"sentinel failover {group.failover_s:.1f} s: {twice} answered twice, "
        f"{resubmitted} resubmitted",
        run,
        stack.broker.orders(),
        failover=True,
    )
    assert report.outcomes["place accepted"] == report.places
    assert all(worker.alive for worker in stack.workers)


async def settle_the_lost(stack: Stack, run: Run) -> int:
    """What the README tells a strategy to do with a call that timed out across a
    failover: fetch its result, and if there is none, submit it again under the same
    request ID (the look-up by tag makes that safe). Returns how many were resubmitted."""
    lost = [rid for rid, result in run.results.items() if result is None]
    if not lost:
        return 0
    async with AuditingClient(
        NOWHERE,
        account_id=DEMO_ACCOUNT,
        timeout=30,
        sentinels=stack.group.addresses,
        sentinel_master=MASTER,
    ) as again:
        missing = [rid for rid in lost if await again.result(rid) is None]
        resent = await replay(again, [run.intents[rid] for rid in missing], keep_ids=True)
        for rid in lost:
            run.results[rid] = await again.result(rid)
        assert len(resent) == len(missing)
        for rid, replies in again.replies.items():
            run.replies.setdefault(rid, []).extend(replies)
    return len(lost)
