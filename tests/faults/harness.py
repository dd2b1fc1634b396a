"""Shared machinery of the fault scenarios: a fleet of real processes, a strategy-like load
from several producers, and the audit every scenario ends with."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from ow_core.aio import cancel_and_wait
from ow_core.tags import broker_tag
from producer import OrderClient, OrderResult, QueueUnavailable, ResultTimeout
from producer.contract import Intent, ModifyOrder, PlaceOrder, decode_result
from worker.local.pytest_plugin import DEMO_ACCOUNT, BrokerSim
from worker.local.stack import Process, RedisServer, start_simulator, start_worker, worker_env

# Short timings so crashes are noticed and recovered from within a test's few seconds.
FAST: Mapping[str, str] = {
    "WORKER_CLAIM_IDLE_MS": "2000",
    "WORKER_CLAIM_INTERVAL_MS": "200",
    "WORKER_LEASE_MS": "1000",
    "WORKER_MAX_DELIVERIES": "4",
    "WORKER_BLOCK_MS": "500",
    "WORKER_DRAIN_TIMEOUT_S": "5",
    "BROKER_TIMEOUT_MS": "500",
    "BROKER_RETRY_SCHEDULE_MS": "100,200,400",
    "RESOLVE_TIMEOUT_S": "30",
    "WARM_SYMBOLS": "MNQ,ES,MES",
}
SYMBOLS = ("MNQ", "ES", "MES")
FAR_LIMITS = {"MNQ": 15000.0, "ES": 4000.0, "MES": 4000.0}


@dataclass
class Fleet:
    """redis-server, the simulator and named worker processes, for one scenario."""

    log_dir: Path
    redis: RedisServer
    broker: BrokerSim
    redis_url: str
    broker_url: str
    env: dict[str, str]
    workers: dict[str, Process] = field(default_factory=dict)

    @classmethod
    def start(
        cls,
        log_dir: Path,
        *,
        sim_args: Sequence[str] = (),
        appendonly: bool = False,
        env: Mapping[str, str] | None = None,
    ) -> Fleet:
        redis = RedisServer(log_dir, appendonly=appendonly).start()
        limits = [] if "--rate-limit" in sim_args else ["--no-rate-limit"]
        process, url = start_simulator(log_dir, [*limits, "--seed", "11", *sim_args])
        return cls(log_dir, redis, BrokerSim(url, process), redis.url, url, {**FAST, **(env or {})})

    def start_worker(
        self,
        name: str,
        *,
        argv: Sequence[str] | None = None,
        redis_url: str | None = None,
        broker_url: str | None = None,
    ) -> Process:
        """Start (or restart, under the same name) a worker; wait until it consumes.

        ``redis_url`` and ``broker_url`` route this worker elsewhere (through a proxy).
        """
        env = worker_env(redis_url or self.redis_url, broker_url or self.broker_url, name, self.env)
        process = start_worker(self.log_dir, env, argv=argv)
        self.workers[name] = process
        return process

    def kill(self, name: str) -> None:
        """SIGKILL a worker: no drain, no goodbye, leases and pending entries left behind."""
        self.workers[name].kill()

    def close(self) -> None:
        for process in self.workers.values():
            process.kill()
        self.broker.process.stop()
        self.redis.cleanup()


class AuditingClient(OrderClient):
    """An OrderClient that also keeps every reply it receives, duplicates included."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.replies: defaultdict[str, list[OrderResult]] = defaultdict(list)

    def _deliver(self, fields: dict[bytes, bytes]) -> None:
        try:
            result = decode_result(fields.get(b"r", b""))
        except msgspec.DecodeError:
            result = None
        if result is not None:
            self.replies[result.request_id].append(result)
        super()._deliver(fields)


@dataclass
class Run:
    """What a load sent and what came back."""

    intents: dict[str, Intent] = field(default_factory=dict)
    results: dict[str, OrderResult | None] = field(default_factory=dict)
    replies: dict[str, list[OrderResult]] = field(default_factory=dict)
    # (modify request ID, cancel request ID) pairs submitted back to back for one order.
    follow_ups: list[tuple[str, str]] = field(default_factory=list)

    def add(self, other: Run) -> None:
        """Fold another run into this one."""
        self.intents.update(other.intents)
        self.results.update(other.results)
        self.replies.update(other.replies)
        self.follow_ups += other.follow_ups


async def drive_while(redis_url: str, busy: asyncio.Future[Any], **options: Any) -> Run:
    """Keep driving load, round after round, until ``busy`` is done (faults keep coming).

    If the fault maker itself fails (say Redis does not come back), stop at once rather
    than wait out every intent's deadline.
    """
    total = Run()
    rounds = 0
    while True:
        current = asyncio.ensure_future(drive(redis_url, seed=rounds, **options))
        await asyncio.wait({current, busy}, return_when=asyncio.FIRST_COMPLETED)
        if busy.done() and busy.exception() is not None:
            await cancel_and_wait([current])
            await busy  # raises the fault maker's error
        total.add(await current)
        rounds += 1
        if busy.done():
            return total


async def drive(
    redis_url: str,
    *,
    producers: int = 3,
    places: int = 300,
    timeout: float = 90.0,
    batch: int = 20,
    seed: int = 1,
    sentinels: Sequence[tuple[str, int]] = (),
    sentinel_master: str | None = None,
) -> Run:
    """Several producers place market and limit orders; each resting limit then gets a
    modify and a cancel submitted back to back (``sentinels``: through a Sentinel group)."""
    rng = random.Random(seed)
    run = Run()
    clients = [
        AuditingClient(
            redis_url,
            account_id=DEMO_ACCOUNT,
            timeout=timeout,
            sentinels=sentinels,
            sentinel_master=sentinel_master,
        )
        for _ in range(producers)
    ]
    for client in clients:
        await open_when_reachable(client, timeout)
    try:

        async def settle(client: OrderClient, request_id: str) -> None:
            try:
                run.results[request_id] = await client.wait(request_id, timeout)
            except ResultTimeout:
                run.results[request_id] = None

        async def one(client: OrderClient, intent: Intent) -> None:
            run.intents[intent.request_id] = intent
            await settle(client, await client.submit(intent))

        async def producer(index: int, count: int) -> None:
            client = clients[index]
            for start in range(0, count, batch):
                calls = []
                for n in range(start, min(start + batch, count)):
                    symbol = SYMBOLS[(n + index) % len(SYMBOLS)]
                    if n % 5 == 4:
                        intent = client.make_place(
                            symbol, "BUY", 1, order_type="limit", limit_price=FAR_LIMITS[symbol],
                            custom_tag=f"p{index}",
                        )  # fmt: skip
                    else:
                        intent = client.make_place(
                            symbol, rng.choice(("BUY", "SELL")), 1,
                            stop_loss_ticks=rng.choice((None, 20)),
                            take_profit_ticks=rng.choice((None, 40)),
                            custom_tag=f"p{index}",
                        )  # fmt: skip
                    calls.append(one(client, intent))
                await asyncio.gather(*calls)
            resting = [
                (run.intents[rid], result)
                for rid, result in run.results.items()
                if result is not None
                and result.ok
                and isinstance(run.intents[rid], PlaceOrder)
                and run.intents[rid].reply_to == client.reply_stream
                and getattr(run.intents[rid], "order_type", "") == "limit"
            ]
            for place, result in resting:
                assert isinstance(place, PlaceOrder)
                assert result.order_id is not None
                modify = client.make_modify(
                    result.order_id, price=(place.limit_price or 0) + 0.25, quantity=2
                )
                cancel = client.make_cancel(result.order_id)
                run.follow_ups.append((modify.request_id, cancel.request_id))
                # Submitted one after the other (the order that counts), awaited together.
                for follow_up in (modify, cancel):
                    run.intents[follow_up.request_id] = follow_up
                    await client.submit(follow_up)
                await asyncio.gather(
                    settle(client, modify.request_id), settle(client, cancel.request_id)
                )

        share = places // producers
        await asyncio.gather(*(producer(i, share) for i in range(producers)))
    finally:
        for client in clients:
            run.replies.update(client.replies)
            await client.close()
    return run


async def open_when_reachable(client: OrderClient, within: float) -> None:
    """Open a client, as a strategy would that starts while Redis is away (a round of
    ``drive_while`` can begin in the middle of a restart or a failover): ``open`` says
    ``QueueUnavailable`` then, and is tried again until ``within`` seconds have passed."""
    deadline = time.monotonic() + within
    while True:
        try:
            await client.open()
            return
        except QueueUnavailable:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


@dataclass
class Report:
    intents: int
    places: int
    results: int
    broker_orders: int
    duplicates: int
    lost: int
    unasked: int
    wrong: int
    outcomes: Counter[str]

    def line(self, name: str) -> str:
        outcome = ", ".join(f"{k} {v}" for k, v in sorted(self.outcomes.items()))
        return (
            f"[{name}] intents {self.intents}, results {self.results}, broker orders "
            f"{self.broker_orders}, duplicates {self.duplicates}, lost {self.lost}, "
            f"unasked {self.unasked}, wrong {self.wrong} ({outcome})"
        )


def audit(
    name: str,
    run: Run,
    orders: list[dict[str, Any]],
    *,
    tag_len: int = 50,
    failover: bool = False,
) -> Report:
    """Check the invariants, print the counts, and fail on any breach.

    Every intent has exactly one final result (replies may repeat it, never contradict it:
    with ``failover``, a Redis failover that lost a stored result lets an intent be
    executed again and answered a second time, resolved by the look-up, so its replies
    must agree on the outcome, not on the attempt counts and timings);
    no intent has two broker orders; the broker has no order no intent asked for; an
    accepted place names its order, a place not accepted has none; and a modify submitted
    before a cancel of the same order was never applied after it.
    """
    tags = {
        broker_tag(i.custom_tag, i.request_id, tag_len): rid
        for rid, i in run.intents.items()
        if isinstance(i, PlaceOrder)
    }
    entries = [o for o in orders if o.get("parentOrderId") is None and o["status"] != 5]
    per_tag = Counter(o["customTag"] for o in entries)
    order_of_tag = {o["customTag"]: o["id"] for o in entries}
    duplicates = sum(n - 1 for n in per_tag.values())
    unasked = [o for o in entries if o["customTag"] not in tags]
    lost = [rid for rid, result in run.results.items() if result is None]
    contradicting = [
        rid
        for rid, replies in run.replies.items()
        if len({_outcome(r) if failover else msgspec.json.encode(r) for r in replies}) > 1
    ]
    wrong: list[str] = list(contradicting)
    for tag, rid in tags.items():
        result = run.results.get(rid)
        if result is None:
            continue
        if result.ok and order_of_tag.get(tag) != result.order_id:
            wrong.append(
                f"{rid}: accepted as {result.order_id}, broker has {order_of_tag.get(tag)}"
            )
        if not result.ok and tag in order_of_tag:
            wrong.append(
                f"{rid}: answered {result.status} but the broker has order {order_of_tag[tag]}"
            )
    for modify_id, _cancel_id in run.follow_ups:
        modified = run.results.get(modify_id)
        if modified is not None and modified.error_code == "order_cancelled":
            wrong.append(f"{modify_id}: modify applied after the cancel submitted after it")
    outcomes: Counter[str] = Counter(
        "no result" if r is None else f"{_kind(run.intents[rid])} {r.status}"
        for rid, r in run.results.items()
    )
    report = Report(
        intents=len(run.intents),
        places=sum(isinstance(i, PlaceOrder) for i in run.intents.values()),
        results=sum(r is not None for r in run.results.values()),
        broker_orders=len(entries),
        duplicates=duplicates,
        lost=len(lost),
        unasked=len(unasked),
        wrong=len(wrong),
        outcomes=outcomes,
    )
    print(report.line(name))
    assert duplicates == 0, [t for t, n in per_tag.items() if n > 1]
    assert not lost, lost[:10]
    assert not unasked, unasked[:10]
    assert not wrong, wrong[:10]
    assert report.results == report.intents
    return report


def _outcome(result: OrderResult) -> tuple[object, ...]:
    return (result.status, result.order_id, result.error_code, result.order_exists)


def _kind(intent: Intent) -> str:
    if isinstance(intent, PlaceOrder):
        return "place"
    return "modify" if isinstance(intent, ModifyOrder) else "cancel"
