"""End to end through real processes: a real redis-server, the simulator, worker processes."""

from __future__ import annotations

import asyncio
import json
import sys
import time

import msgspec
import redis.asyncio as aioredis

from producer import OrderClient
from producer.contract import CONTRACT_VERSION
from worker.local.pytest_plugin import DEMO_ACCOUNT, BrokerSim, WorkerStack
from worker.local.stack import RedisServer


def live_orders(broker_sim: BrokerSim) -> list[dict[str, object]]:
    """Orders the broker accepted (its rejected ones excluded), entries only (no bracket legs)."""
    return [o for o in broker_sim.orders() if o["status"] != 5 and o.get("parentOrderId") is None]


async def test_a_thousand_concurrent_intents_from_one_client_through_two_workers(
    order_worker: WorkerStack, order_client: OrderClient, broker_sim: BrokerSim
) -> None:
    order_worker.start_worker("test-worker-2")
    calls = [
        order_client.place_order("MES", "BUY" if i % 2 else "SELL", 1, custom_tag=f"s{i}")
        for i in range(1000)
    ]
    results = await asyncio.gather(*calls)

    assert [r.status for r in results] == ["accepted"] * 1000
    assert len({r.request_id for r in results}) == 1000
    assert {r.worker for r in results} == {"test-worker-1", "test-worker-2"}
    orders = live_orders(broker_sim)
    assert len(orders) == 1000
    by_tag = {o["customTag"]: o["id"] for o in orders}
    # Each result names the order its own intent made: tag "s<i>.<request id>".
    for i, result in enumerate(results):
        assert by_tag[f"s{i}.{result.request_id}"] == result.order_id


async def test_a_repeated_request_id_is_executed_once(
    order_client: OrderClient, broker_sim: BrokerSim
) -> None:
    first = order_client.make_place("MNQ", "BUY", 1)
    second = order_client.make_place("MNQ", "BUY", 1, request_id=first.request_id)
    await asyncio.gather(order_client.submit(first), order_client.submit(second))
    result = await order_client.wait(first.request_id)

    assert result.status == "accepted"
    assert len(live_orders(broker_sim)) == 1
    # A later resubmission is answered from the stored result too.
    again = await order_client.place_order("MNQ", "BUY", 1, request_id=first.request_id)
    assert again.order_id == result.order_id
    assert len(live_orders(broker_sim)) == 1


async def test_an_intent_past_its_deadline_is_expired_and_never_sent(
    order_client: OrderClient, broker_sim: BrokerSim
) -> None:
    intent = order_client.make_place("MNQ", "BUY", 1)
    stale = msgspec.structs.replace(intent, deadline=intent.created_at - 1)
    result = await order_client.wait(await order_client.submit(stale))

    assert result.status == "expired"
    assert result.error_code == "deadline_passed"
    assert live_orders(broker_sim) == []


async def test_malformed_entries_are_answered_where_possible_and_dead_lettered(
    order_worker: WorkerStack, order_client: OrderClient, broker_sim: BrokerSim
) -> None:
    redis = aioredis.Redis.from_url(order_worker.redis_url)
    keys = order_client.keys
    readable = {
        "kind": "place",
        "request_id": "bad-quantity",
        "reply_to": order_client.reply_stream,
        "account_id": DEMO_ACCOUNT,
        "created_at": int(time.time() * 1000),
        "deadline": int(time.time() * 1000) + 10_000,
        "symbol": "MNQ",
        "side": "BUY",
        "quantity": "one",
    }
    try:
        await redis.xadd(keys.intents, {"v": str(CONTRACT_VERSION), "d": json.dumps(readable)})
        await redis.xadd(keys.intents, {"v": str(CONTRACT_VERSION), "d": b"\xff not json"})
        await redis.xadd(keys.intents, {"v": "99", "d": "{}"})
        await redis.xadd(keys.intents, {"unexpected": "fields"})
        answered = await order_client.result("bad-quantity", timeout=5)
        # The worker carries on with good intents after the bad ones.
        good = await order_client.place_order("MNQ", "BUY", 1)
        dead = await redis.xrange(keys.dead_letters)
    finally:
        await redis.aclose()

    assert answered is not None
    assert answered.status == "rejected"
    assert answered.error_code == "malformed_intent"
    assert "$.quantity" in (answered.message or "")
    assert good.status == "accepted"
    assert len(dead) == 4
    reasons = [json.loads(fields[b"record"])["reason"] for _, fields in dead]
    assert any("unsupported contract version" in r for r in reasons)
    assert len(live_orders(broker_sim)) == 1


async def test_a_worker_that_starts_late_picks_up_queued_intents(
    redis_server: RedisServer, broker_sim: BrokerSim, clean_stack: None, tmp_path: object
) -> None:
    from pathlib import Path

    stack = WorkerStack(redis_server.url, broker_sim, Path(str(tmp_path)) / "logs", [])
    async with OrderClient(redis_server.url, account_id=DEMO_ACCOUNT, timeout=20) as client:
        request_ids = [await client.submit(client.make_place("ES", "BUY", 1)) for _ in range(50)]
        stack.start_worker("late-worker")
        try:
            results = await asyncio.gather(*(client.wait(r) for r in request_ids))
        finally:
            for process in stack.workers:
                process.stop()
    assert [r.status for r in results] == ["accepted"] * 50
    assert len(live_orders(broker_sim)) == 50


async def test_graceful_shutdown_loses_nothing(
    order_worker: WorkerStack, order_client: OrderClient, broker_sim: BrokerSim
) -> None:
    """SIGTERM one of two workers mid-burst: every intent is answered exactly once."""
    order_worker.start_worker("test-worker-2")
    broker_sim.faults(latency_ms=100)
    try:
        request_ids = [
            await order_client.submit(order_client.make_place("MNQ", "SELL", 1, timeout=30))
            for _ in range(300)
        ]
        await asyncio.sleep(0.15)
        stopped = order_worker.workers[0]
        assert stopped.stop() == 0  # a clean exit, after draining what it had in flight
        results = await asyncio.gather(*(order_client.wait(r, 30) for r in request_ids))
    finally:
        broker_sim.faults(latency_ms=0)
    assert "draining" in stopped.output()
    assert [r.status for r in results] == ["accepted"] * 300
    assert len({r.order_id for r in results}) == 300
    assert len(live_orders(broker_sim)) == 300


async def test_good_til_time_order_is_cancelled_and_reported(
    order_client: OrderClient, broker_sim: BrokerSim
) -> None:
    placed = await order_client.place_order(
        "MNQ", "BUY", 1, order_type="limit", limit_price=15000.0, cancel_after=0.5
    )
    assert placed.status == "accepted"
    cancelled = await order_client.result(f"{placed.request_id}:gtt", timeout=10)

    assert cancelled is not None
    assert cancelled.kind == "cancel"
    assert cancelled.status == "accepted"
    assert cancelled.order_state == "cancelled"
    status = {o["id"]: o["status"] for o in broker_sim.orders()}
    assert status[placed.order_id] == 3  # Cancelled


async def test_cancel_of_a_filled_order_reports_its_real_state(order_client: OrderClient) -> None:
    placed = await order_client.place_order("MNQ", "BUY", 1)
    assert placed.order_id is not None
    result = await order_client.cancel_order(placed.order_id)

    assert result.status == "rejected"
    assert result.error_code == "order_filled"
    assert result.order_state == "filled"


async def test_cancelling_twice_is_accepted_both_times(order_client: OrderClient) -> None:
    placed = await order_client.place_order(
        "NQ", "SELL", 1, order_type="limit", limit_price=30000.0
    )
    assert placed.order_id is not None
    first = await order_client.cancel_order(placed.order_id)
    second = await order_client.cancel_order(placed.order_id)

    assert (first.status, second.status) == ("accepted", "accepted")
    assert second.order_state == "cancelled"
    assert second.message == "already cancelled"


async def test_arqs_own_command_line_runs_a_worker_too(
    redis_server: RedisServer, broker_sim: BrokerSim, clean_stack: None, tmp_path: object
) -> None:
    """`arq worker.WorkerSettings` reads the same environment as `order-worker run`."""
    import shutil
    from pathlib import Path

    from worker.local.stack import start_worker, worker_env

    arq = shutil.which("arq", path=str(Path(sys.executable).parent))
    assert arq is not None
    env = worker_env(redis_server.url, broker_sim.url, "arq-cli-worker")
    worker = start_worker(Path(str(tmp_path)), env, argv=[arq, "worker.WorkerSettings"])
    try:
        async with OrderClient(redis_server.url, account_id=DEMO_ACCOUNT) as client:
            result = await client.place_order("MNQ", "BUY", 1)
    finally:
        assert worker.stop() == 0
    assert result.status == "accepted"
    assert result.worker == "arq-cli-worker"
