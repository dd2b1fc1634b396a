"""The load of the rate-limit scenarios: new orders at once, at a pace, or one by one.

    python -m benchmarks.orders burst  --redis-url URL --count N [--timeout S]
    python -m benchmarks.orders paced  --redis-url URL --count N --rate R [--timeout S]
    python -m benchmarks.orders serial --redis-url URL --count N

``burst`` and ``paced`` print ``{"ready": true}`` once connected and wait for
``go <epoch>`` on stdin, so the harness reads the simulator's counters at the start.
``burst`` submits N bracketed market orders together (every XADD issued in the same
event-loop turn); ``paced`` submits order ``i`` at ``go + i / R`` without waiting for
earlier results (an open loop, so a slow budget shows as a growing lag, not a lower
offered rate); both then await every result. ``serial`` sends N market orders one at a
time, alternately BUY and SELL without brackets, so the position stays within one contract
and a max-position risk limit never refuses one. ``--timeout`` is each intent's deadline.

The result (``--result FILE`` or stdout): sent, answered, statuses, each order's latency
from its own submission (s), when each was answered (s after go), the results'
``attempts`` (the worker's own count of broker requests), and the time to the last answer.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from benchmarks.procs import deliver, emit, loadgen_parser, redis_option, run, wait_for_go
from benchmarks.workload import ACCOUNT, STOP_LOSS_TICKS, SYMBOL, TAKE_PROFIT_TICKS
from producer.client import OrderClient
from producer.contract import OrderResult, PlaceOrder
from producer.errors import ResultTimeout

_GRACE_S: Final = 5.0


@dataclass
class Answers:
    """What came back, timed from the go signal."""

    origin: float
    statuses: Counter[str] = field(default_factory=Counter)
    latency_s: list[float] = field(default_factory=list)
    answered_at: list[float] = field(default_factory=list)
    attempts: list[int] = field(default_factory=list)
    sent: int = 0

    def take(self, submitted: float, result: OrderResult | None) -> None:
        """One order's outcome (None: no answer before its deadline)."""
        if result is None:
            self.statuses["no answer"] += 1
            return
        now = time.time()
        self.latency_s.append(now - submitted)
        self.answered_at.append(now - self.origin)
        self.attempts.append(result.attempts)
        self.statuses[result.status if result.ok else f"{result.status}: {result.error_code}"] += 1

    def as_json(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "answered": self.sent - self.statuses["no answer"],
            "statuses": dict(self.statuses),
            "latency_s": [round(x, 4) for x in self.latency_s],
            "answered_at": [round(x, 4) for x in sorted(self.answered_at)],
            "attempts": self.attempts,
            "last_answer_s": max(self.answered_at, default=0.0),
        }


def _bracketed(client: OrderClient, timeout: float) -> PlaceOrder:
    return client.make_place(
        SYMBOL,
        "BUY",
        1,
        stop_loss_ticks=STOP_LOSS_TICKS,
        take_profit_ticks=TAKE_PROFIT_TICKS,
        custom_tag="bench",
        timeout=timeout,
    )


async def _await(
    client: OrderClient, answers: Answers, request_id: str, submitted: float, timeout: float
) -> None:
    try:
        # Past the deadline by a grace, so the worker's "expired" answer still arrives.
        result: OrderResult | None = await client.wait(request_id, timeout + _GRACE_S)
    except ResultTimeout:
        result = None
    answers.take(submitted, result)


async def burst(client: OrderClient, count: int, timeout: float) -> dict[str, Any]:
    """``count`` orders submitted together at the go signal."""
    emit({"ready": True})
    origin = await wait_for_go()
    answers = Answers(origin)
    intents = [_bracketed(client, timeout) for _ in range(count)]
    submitted = time.time()
    request_ids = await asyncio.gather(*(client.submit(intent) for intent in intents))
    answers.sent = len(request_ids)
    await asyncio.gather(*(_await(client, answers, r, submitted, timeout) for r in request_ids))
    return answers.as_json()


async def paced(client: OrderClient, count: int, rate: float, timeout: float) -> dict[str, Any]:
    """Order ``i`` submitted at ``go + i / rate``, each awaited on its own."""
    emit({"ready": True})
    origin = await wait_for_go()
    answers = Answers(origin)
    waits = []
    for index in range(count):
        await asyncio.sleep(max(0.0, origin + index / rate - time.time()))
        intent = _bracketed(client, timeout)
        submitted = time.time()
        request_id = await client.submit(intent)
        answers.sent += 1
        waits.append(asyncio.create_task(_await(client, answers, request_id, submitted, timeout)))
    await asyncio.gather(*waits)
    return answers.as_json()


async def serial(client: OrderClient, count: int) -> dict[str, Any]:
    """``count`` market orders one at a time, alternately BUY and SELL."""
    answers = Answers(time.time())
    for index in range(count):
        submitted = time.time()
        side = "BUY" if index % 2 == 0 else "SELL"
        answers.sent += 1
        try:
            result: OrderResult | None = await client.place_order(
                SYMBOL, side, 1, custom_tag="bench"
            )
        except ResultTimeout:
            result = None
        answers.take(submitted, result)
    return answers.as_json()


async def measure(redis_url: str, mode: str, count: int, rate: float, timeout: float) -> Any:
    """Connect, then run the mode."""
    async with OrderClient(redis_url, account_id=ACCOUNT, timeout=timeout) as client:
        if mode == "burst":
            return await burst(client, count, timeout)
        if mode == "paced":
            return await paced(client, count, rate, timeout)
        return await serial(client, count)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``python -m benchmarks.orders``."""
    parser = loadgen_parser("benchmarks.orders", __doc__)
    parser.add_argument("mode", choices=("burst", "paced", "serial"))
    redis_option(parser)
    parser.add_argument("--count", type=int, required=True, help="orders to send")
    parser.add_argument("--rate", type=float, default=1.0, help="paced: orders per second")
    parser.add_argument("--timeout", type=float, default=10.0, help="each intent's deadline, s")
    args = parser.parse_args(argv)
    deliver(
        args.result, run(measure(args.redis_url, args.mode, args.count, args.rate, args.timeout))
    )


if __name__ == "__main__":
    main()
