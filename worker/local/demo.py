"""``order-worker demo``: the whole product on one machine, no account, no internet.

Starts a private redis-server (unless REDIS_URL is given), the broker simulator and worker
processes; a strategy-like producer sends a burst (bracketed market orders, resting limits
that are modified and cancelled, a good-til-time order, a repeated request ID and a few bad
intents), then fills a resting limit by moving the market and follows it through
``events()``; it prints what happened and how long it took, and stops everything.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from ow_core.aio import cancel_and_wait
from producer.client import OrderClient
from producer.contract import OrderResult
from producer.errors import OrderError
from producer.events import Event
from worker.local.stack import Process, RedisServer, start_simulator, start_worker, worker_env
from worker.ops.args import positive
from worker.ops.progress import Progress

ACCOUNT = 12345678
_SYMBOLS = (("MNQ", 20000.0), ("ES", 6000.0), ("NQ", 20000.0), ("MES", 6000.0), ("CL", 70.0))


@dataclass
class Row:
    """One line of the outcome table."""

    what: str
    outcomes: dict[str, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)

    def add(self, outcome: str, millis: float | None = None) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        if millis is not None:
            self.latencies.append(millis)


class Tally:
    """Outcomes and end-to-end latencies, by what was sent."""

    def __init__(self) -> None:
        self.rows: dict[str, Row] = {}

    async def timed(self, what: str, call: Awaitable[OrderResult]) -> OrderResult | None:
        row = self.rows.setdefault(what, Row(what))
        started = time.perf_counter()
        try:
            result = await call
        except OrderError as error:
            row.add(f"refused: {error.code}")
            return None
        millis = (time.perf_counter() - started) * 1000
        row.add(result.status if result.ok else f"{result.status}: {result.error_code}", millis)
        return result

    def table(self) -> str:
        lines = [f"{'intent':<36} {'n':>4}  {'p50 ms':>7} {'p95 ms':>7} {'max ms':>7}  outcome"]
        for row in self.rows.values():
            n = sum(row.outcomes.values())
            lat = sorted(row.latencies)
            p50 = f"{statistics.median(lat):7.2f}" if lat else f"{'-':>7}"
            p95 = f"{lat[max(0, int(len(lat) * 0.95) - 1)]:7.2f}" if lat else f"{'-':>7}"
            top = f"{lat[-1]:7.2f}" if lat else f"{'-':>7}"
            outcome = ", ".join(f"{k} x{v}" for k, v in sorted(row.outcomes.items()))
            lines.append(f"{row.what:<36} {n:>4}  {p50} {p95} {top}  {outcome}")
        return "\n".join(lines)


def run_demo(*, orders: int, workers: int, redis_url: str | None, logs: Path | None) -> int:
    """Run the demo; 0 when every intent got its expected kind of answer.

    Every process it starts is stopped at the end, however the demo ends: also on Ctrl-C
    and on SIGTERM (turned into SystemExit here, so the clean-up runs), at any moment,
    even while a process is still starting (``stack.wait_until`` kills that one).
    """
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    log_dir = logs or Path(tempfile.mkdtemp(prefix="order-worker-demo-"))
    say = _say
    server: RedisServer | None = None
    processes: list[Process] = []
    try:
        if redis_url is None:
            server = RedisServer(log_dir).start()
            redis_url = server.url
            say(f"redis-server    {redis_url} (private, stopped at the end)")
        else:
            say(f"redis           {redis_url} (from REDIS_URL)")
        simulator, broker_url = start_simulator(log_dir, ["--no-rate-limit"])
        processes.append(simulator)
        say(f"simulator       {broker_url} (ProjectX Gateway stand-in)")
        for index in range(1, workers + 1):
            env = worker_env(
                redis_url, broker_url, f"demo-worker-{index}", {"WARM_SYMBOLS": "MNQ,ES,NQ,MES,CL"}
            )
            processes.append(start_worker(log_dir, env))
            say(f"worker          demo-worker-{index} started")
        tally = Tally()
        started = time.perf_counter()
        asyncio.run(_burst(redis_url, broker_url, orders, tally, say))
        elapsed = time.perf_counter() - started
        print()
        print(tally.table())
        total = sum(sum(r.outcomes.values()) for r in tally.rows.values())
        print(f"\n{total} intents in {elapsed:.1f} s through {workers} workers; logs in {log_dir}")
        unanswered = sum(
            n
            for row in tally.rows.values()
            for outcome, n in row.outcomes.items()
            if "result_timeout" in outcome or outcome == "no result"
        )
        if unanswered:
            print(f"demo: {unanswered} intents got no answer in time", file=sys.stderr)
        return 1 if unanswered else 0
    finally:
        for process in reversed(processes):
            process.stop()
        if server is not None:
            server.cleanup()


async def _burst(
    redis_url: str, broker_url: str, orders: int, tally: Tally, say: Callable[[str], None]
) -> None:
    async with OrderClient(redis_url, account_id=ACCOUNT, timeout=10.0) as client:
        say(f"placing {orders} bracketed market orders, 10 at a time")
        placed = await _market_orders(client, orders, tally)
        say("resting limits: place, modify, cancel")
        await _resting_limits(client, tally)
        say("good-til-time limit (cancel_after=1 s)")
        await _good_til_time(client, tally)
        say("a repeated request ID, and a few bad intents")
        await _refusals(client, placed, tally)
        say("after accepted: a resting MNQ limit filled by a price move, seen by events()")
        await _lifecycle(client, broker_url, tally, say)


async def _lifecycle(
    client: OrderClient, broker_url: str, tally: Tally, say: Callable[[str], None]
) -> None:
    deadline = time.monotonic() + 15
    while not await client.mirror_live():
        if time.monotonic() > deadline:
            say("no worker made the account's mirror live: skipping the lifecycle")
            return
        await asyncio.sleep(0.1)
    seen: list[Event] = []

    async def collect() -> None:
        async for event in client.events():
            seen.append(event)

    reader = asyncio.create_task(collect())
    try:
        async with aiohttp.ClientSession(broker_url) as sim:
            async with sim.get("/_sim/price", params={"symbol": "MNQ"}) as answer:
                last = float((await answer.json())["lastPrice"])
            limit = last - 2.5
            placed = await tally.timed(
                "limit, filled by a price move",
                client.place_order("MNQ", "BUY", 1, order_type="limit", limit_price=limit),
            )
            if placed is None or placed.order_id is None:
                return
            row = tally.rows.setdefault("fill to wait_order()", Row("fill to wait_order()"))
            started = time.perf_counter()
            # The ask (one tick over the last) reaches the limit: it fills there.
            async with sim.post("/_sim/price", json={"symbol": "MNQ", "price": limit - 0.25}):
                pass
            filled = await client.wait_order(placed.order_id, timeout=10)
            row.add(filled.state, (time.perf_counter() - started) * 1000)
        await asyncio.sleep(0.2)  # the trade, position and balance follow the order
    finally:
        await cancel_and_wait([reader])
    kinds = ", ".join(f"{kind} x{n}" for kind, n in sorted(Counter(
        type(e).__name__ for e in seen).items()))  # fmt: skip
    held = ", ".join(f"{p.symbol} {p.size:+d}" for p in await client.positions())
    say(f"events(): {kinds}; open positions: {held or 'none'}")


async def _market_orders(client: OrderClient, orders: int, tally: Tally) -> list[OrderResult]:
    bar = Progress(orders, "  placed")
    placed: list[OrderResult] = []
    for wave in range(0, orders, 10):
        calls = []
        for i in range(wave, min(wave + 10, orders)):
            symbol, _ = _SYMBOLS[i % len(_SYMBOLS)]
            calls.append(
                tally.timed(
                    "place market + brackets",
                    client.place_market_order(
                        symbol=symbol,
                        side="BUY" if i % 2 == 0 else "SELL",
                        quantity=1 + i % 3,
                        stop_loss_ticks=20,
                        take_profit_ticks=40,
                        custom_tag="demo",
                    ),
                )
            )
        placed += [r for r in await asyncio.gather(*calls) if r is not None]
        bar.update(min(wave + 10, orders))
    return placed


async def _resting_limits(client: OrderClient, tally: Tally) -> None:
    limits = []
    for i in range(10):
        symbol, price = _SYMBOLS[i % len(_SYMBOLS)]
        limit = price * 0.9 if i % 2 == 0 else price * 1.1
        result = await tally.timed(
            "place limit (rests)",
            client.place_order(
                symbol,
                "BUY" if i % 2 == 0 else "SELL",
                1,
                order_type="limit",
                limit_price=round(limit),
            ),
        )
        if result is not None and result.order_id is not None:
            limits.append((result.order_id, round(limit)))
    await asyncio.gather(
        *(
            tally.timed("modify limit", client.modify_order(oid, price=price + 1, quantity=2))
            for oid, price in limits
        )
    )
    await asyncio.gather(
        *(tally.timed("cancel limit", client.cancel_order(oid)) for oid, _ in limits)
    )
    await asyncio.gather(
        *(tally.timed("cancel again (idempotent)", client.cancel_order(oid)) for oid, _ in limits)
    )


async def _good_til_time(client: OrderClient, tally: Tally) -> None:
    gtt = await tally.timed(
        "place limit, cancel_after=1s",
        client.place_order(
            "MNQ", "BUY", 1, order_type="limit", limit_price=15000.0, cancel_after=1.0
        ),
    )
    if gtt is not None:
        scheduled = await client.result(f"{gtt.request_id}:gtt", timeout=10.0)
        tally.rows.setdefault("scheduled cancel (:gtt)", Row("scheduled cancel (:gtt)")).add(
            "no result" if scheduled is None else scheduled.status
        )


async def _refusals(client: OrderClient, placed: list[OrderResult], tally: Tally) -> None:
    if placed:
        again = client.make_place("MNQ", "BUY", 1, request_id=placed[0].request_id)
        await tally.timed(
            "repeat a request ID (not re-sent)", client.wait(await client.submit(again))
        )
        await tally.timed("cancel a filled order", client.cancel_order(placed[0].order_id or 0))
    await tally.timed(
        "limit price off the tick grid",
        client.place_order("MNQ", "BUY", 1, order_type="limit", limit_price=20000.1),
    )
    await tally.timed("unknown symbol", client.place_order("XYZ", "BUY", 1))
    await tally.timed(
        "stop-loss too close (broker rule)",
        client.place_order("MNQ", "BUY", 1, stop_loss_ticks=2),
    )
    await tally.timed("quantity 0 (refused before enqueue)", client.place_order("MNQ", "BUY", 0))


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _say(text: str) -> None:
    print(f"demo: {text}", file=sys.stderr, flush=True)


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``demo`` command."""
    demo = commands.add_parser(
        "demo",
        help="run a self-contained demo: Redis, the simulator, two workers, a burst of intents",
        description="Start a private redis-server (or use REDIS_URL), the broker simulator and "
        "worker processes, send a realistic burst of intents, print outcomes and latencies, "
        "and stop everything. Needs no account and no internet.",
    )
    demo.add_argument(
        "--orders", type=positive, default=60, help="market orders to place (default 60)"
    )
    demo.add_argument("--workers", type=positive, default=2, help="worker processes (default 2)")
    demo.add_argument("--logs", type=Path, help="keep process logs in this folder")
    demo.set_defaults(handler=_demo, redis_url=os.environ.get("REDIS_URL", ""))


def _demo(args: argparse.Namespace) -> int:
    return run_demo(
        orders=args.orders, workers=args.workers, redis_url=args.redis_url or None, logs=args.logs
    )
