"""``order-worker dead-letters list|retry|drop``, run as an operator runs them, against real
worker processes, Redis and the broker simulator."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
import redis.asyncio as aioredis

from producer import OrderClient
from producer.contract import Intent, encode_intent, encode_result
from tests.faults.harness import Fleet
from tests.integration.operations.test_status_cli import until
from tests.integration.pipeline.test_replay_and_cli import run_cli
from worker.ledger import DeadLetter
from worker.local.pytest_plugin import DEMO_ACCOUNT, BrokerSim, WorkerStack

POISON_WORKER = [sys.executable, str(Path(__file__).parents[2] / "faults" / "poison_worker.py")]


async def bury(redis_url: str, intent: Intent, reason: str = "delivered 6 times") -> str:
    """A dead letter of ``intent``, as a worker writes one; returns its dead-letter ID."""
    fields = {k.decode(): v.decode() for k, v in encode_intent(intent).items()}
    record = DeadLetter(
        entry_id="1-1",
        reason=reason,
        request_id=intent.request_id,
        deliveries=6,
        fields=fields,
        at=int(time.time() * 1000),
    )
    redis = aioredis.Redis.from_url(redis_url)
    try:
        entry = await redis.xadd("ow:dead", {"entry": "1-1", "record": msgspec.json.encode(record)})
    finally:
        await redis.aclose()
    return str(entry.decode())


async def dead_ids(redis_url: str) -> list[str]:
    redis = aioredis.Redis.from_url(redis_url)
    try:
        return [entry_id.decode() for entry_id, _ in await redis.xrange("ow:dead")]
    finally:
        await redis.aclose()


def placed_with(broker: BrokerSim, request_id: str) -> list[int]:
    """The broker's entry orders whose tag carries the request ID."""
    return [
        order["id"]
        for order in broker.orders()
        if order["parentOrderId"] is None and request_id in (order["customTag"] or "")
    ]


async def test_a_malformed_entry_is_listed_refused_for_retry_and_dropped(
    order_worker: WorkerStack,
) -> None:
    url = order_worker.redis_url
    redis = aioredis.Redis.from_url(url)
    try:
        entry = (await redis.xadd("ow:intents", {"v": "1", "d": "not json"})).decode()
        await until(lambda: redis.xlen("ow:dead"), "dead letter")
    finally:
        await redis.aclose()
    [dead] = await dead_ids(url)

    listed = run_cli("dead-letters", "list", redis_url=url)
    assert listed.returncode == 0, listed.stderr
    print(listed.stdout)
    header, row = listed.stdout.splitlines()
    assert header.split() == ["id", "dead", "since", "request", "kind", "deliveries", "reason"]
    assert row.split()[0] == dead
    assert "unknown (malformed)" in row
    assert "not a valid intent: JSON is malformed" in row

    as_json = run_cli("dead-letters", "list", "--json", redis_url=url)
    [line] = as_json.stdout.splitlines()
    record = json.loads(line)
    assert record["id"] == dead
    assert record["entry_id"] == entry
    assert record["fields"] == {"v": "1", "d": "not json"}
    assert record["deliveries"] == 1
    assert record["request_id"] is None

    refused = run_cli("dead-letters", "retry", dead, redis_url=url)
    assert refused.returncode == 1
    assert f"{dead}: not retried: not a valid intent" in refused.stderr
    assert "drop it" in refused.stderr
    assert await dead_ids(url) == [dead]

    dropped = run_cli("dead-letters", "drop", dead, redis_url=url)
    assert dropped.returncode == 0, dropped.stderr
    assert dropped.stdout.startswith(f"dropped {dead} (no request ID: not a valid intent")
    assert await dead_ids(url) == []
    assert run_cli("dead-letters", "list", redis_url=url).stdout == "ow:dead: no dead letters\n"


async def test_a_retried_cancel_is_executed(
    order_worker: WorkerStack, order_client: OrderClient, broker_sim: BrokerSim
) -> None:
    resting = await order_client.place_order(
        "MNQ", "BUY", 1, order_type="limit", limit_price=15000.0
    )
    assert resting.status == "accepted"
    assert resting.order_id is not None
    cancel = order_client.make_cancel(resting.order_id)
    dead = await bury(order_worker.redis_url, cancel)
    listed = run_cli("dead-letters", "list", redis_url=order_worker.redis_url)
    assert f"cancel {resting.order_id}" in listed.stdout

    done = run_cli("dead-letters", "retry", dead, redis_url=order_worker.redis_url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{dead}: request {cancel.request_id} (cancel ")
    assert "retried as intents entry " in done.stdout

    result = await order_client.wait(cancel.request_id, timeout=10)
    assert (result.status, result.order_state) == ("accepted", "cancelled")
    [order] = [o for o in broker_sim.orders() if o["id"] == resting.order_id]
    assert order["status"] == 3  # cancelled, in the gateway's numbering
    assert await dead_ids(order_worker.redis_url) == []


async def test_retry_refuses_an_answered_or_stale_request_and_force_does_not_place_twice(
    order_worker: WorkerStack, order_client: OrderClient, broker_sim: BrokerSim
) -> None:
    url = order_worker.redis_url
    intent = order_client.make_place("MNQ", "BUY", 1, custom_tag="strat")
    first = await order_client.wait(await order_client.submit(intent))
    assert first.status == "accepted"
    # As if the entry had then died with the broker unreachable for the look-up: its
    # producer was answered failed / dead_lettered, but the order exists.
    failed = msgspec.structs.replace(first, status="failed", error_code="dead_lettered")
    redis = aioredis.Redis.from_url(url)
    try:
        await redis.set(f"ow:result:{intent.request_id}", encode_result(failed))
    finally:
        await redis.aclose()
    stale = msgspec.structs.replace(intent, deadline=int(time.time() * 1000) - 60_000)
    dead = await bury(url, stale)

    refused = run_cli("dead-letters", "retry", dead, redis_url=url)
    assert refused.returncode == 1
    assert "already has a result (failed/dead_lettered)" in refused.stderr
    assert "--force deletes that result" in refused.stderr
    assert "its deadline passed 1m0" in refused.stderr
    assert "--deadline SECONDS gives it a new one" in refused.stderr
    assert await dead_ids(url) == [dead]

    done = run_cli("dead-letters", "retry", dead, "--force", "--deadline", "30", redis_url=url)
    assert done.returncode == 0, done.stderr
    again = await order_client.result(intent.request_id, timeout=10)
    assert again is not None
    # Looked up by its tag first (its history says it was started before): the order
    # that exists is the answer, and the broker has one order, not two.
    assert (again.status, again.order_id) == ("accepted", first.order_id)
    assert placed_with(broker_sim, intent.request_id) == [first.order_id]
    assert await dead_ids(url) == []


async def test_retry_and_drop_take_ids_or_all(
    order_worker: WorkerStack, order_client: OrderClient
) -> None:
    url = order_worker.redis_url
    valid = order_client.make_place("ES", "SELL", 1, timeout=30)
    kept = await bury(url, valid)
    broken = order_client.make_place("ES", "SELL", 1)
    # Not decodable as an intent (and so refused) though its record is well formed.
    bad = await bury(url, msgspec.structs.replace(broken, reply_to="elsewhere"))

    unknown = run_cli("dead-letters", "retry", "123-4", "nonsense", redis_url=url)
    assert unknown.returncode == 1
    assert "123-4: not in ow:dead" in unknown.stderr
    assert "nonsense: not a stream entry ID" in unknown.stderr
    for verb in ("retry", "drop"):
        for args in ([], [kept, "--all"]):
            wrong = run_cli("dead-letters", verb, *args, redis_url=url)
            assert wrong.returncode == 2
            assert "give dead-letter IDs or --all" in wrong.stderr

    retried = run_cli("dead-letters", "retry", "--all", redis_url=url)
    assert retried.returncode == 1  # one of them was refused
    assert f"{kept}: request {valid.request_id} (place ES SELL 1) retried" in retried.stdout
    assert f"{bad}: not retried: reply_to must be a reply stream" in retried.stderr
    assert (await order_client.wait(valid.request_id, timeout=10)).status == "accepted"
    assert await dead_ids(url) == [bad]

    dropped = run_cli("dead-letters", "drop", "--all", redis_url=url)
    assert dropped.returncode == 0, dropped.stderr
    assert dropped.stdout.splitlines() == [
        f"dropped {bad} (request {broken.request_id}: delivered 6 times)"
    ]
    again = run_cli("dead-letters", "drop", bad, redis_url=url)
    assert again.returncode == 1
    assert f"{bad}: not in ow:dead" in again.stderr


async def test_a_poison_entry_dies_then_is_retried_on_a_healthy_worker(
    fleet: Callable[..., Fleet],
) -> None:
    stack = fleet(env={"WORKER_MAX_DELIVERIES": "2", "POISON_MODE": "raise"})
    stack.start_worker("sick", argv=POISON_WORKER)
    async with OrderClient(stack.redis_url, account_id=DEMO_ACCOUNT, timeout=30) as client:
        poison = await client.submit(client.make_place("MNQ", "BUY", 1, custom_tag="poison"))
        dead = await client.wait(poison)
        assert (dead.status, dead.error_code) == ("failed", "dead_lettered")
        [dead_id] = await dead_ids(stack.redis_url)

        listed = run_cli("dead-letters", "list", "--json", redis_url=stack.redis_url)
        record = json.loads(listed.stdout)
        assert record["request_id"] == poison
        assert record["deliveries"] == 3
        assert "delivered 3 times without finishing" in record["reason"]
        table = run_cli("dead-letters", "list", redis_url=stack.redis_url).stdout
        assert f"{dead_id}  " in table
        assert "place MNQ BUY 1" in table

        refused = run_cli("dead-letters", "retry", dead_id, redis_url=stack.redis_url)
        assert refused.returncode == 1
        assert "already has a result (failed/dead_lettered)" in refused.stderr

        # The fix is deployed: the sick worker replaced by a healthy one.
        stack.workers["sick"].stop()
        stack.start_worker("healthy")
        done = run_cli(
            "dead-letters", "retry", dead_id, "--force", "--deadline", "30",
            redis_url=stack.redis_url,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        result = await client.result(poison, timeout=15)
    assert result is not None
    assert result.status == "accepted"
    assert placed_with(stack.broker, poison) == [result.order_id]
    assert await dead_ids(stack.redis_url) == []
