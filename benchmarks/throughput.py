"""Scenarios 5 and 6, the load: one producer process keeping many calls in flight.

    python -m benchmarks.throughput --redis-url URL --concurrency C --duration S
    python -m benchmarks.throughput --redis-url URL --concurrency C --count N

``C`` lanes each place a bracketed market order through one ``OrderClient``, await its
result and place the next (a closed loop, so the queue never grows past ``C`` per
producer). The protocol with the harness, so several producers start together:

1. warm up (``C`` intents, not measured: the client's connections are open after it),
2. print ``{"ready": true}`` and read one line ``go <epoch seconds>`` from stdin,
3. from that wall-clock time, run for ``--duration`` seconds or until ``--count`` intents
   were sent; calls still in flight at the end are awaited (and counted as answered),
4. write the result (``--result FILE``, or stdout): sent, answered, completed inside
   the window, every call's latency and this process's own CPU time.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from benchmarks.procs import (
    deliver,
    emit,
    loadgen_parser,
    own_cpu_seconds,
    redis_option,
    run,
    wait_for_go,
)
from benchmarks.workload import ACCOUNT, STOP_LOSS_TICKS, SYMBOL, TAKE_PROFIT_TICKS
from producer.client import OrderClient
from producer.errors import ResultTimeout


@dataclass
class Tally:
    """What one producer sent and got back."""

    budget: int | None
    end: float | None
    sent: int = 0
    answered: int = 0
    in_window: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    latency_ms: list[float] = field(default_factory=list)

    def take(self) -> bool:
        """Whether a lane may send one more intent (and count it as sent)."""
        if self.end is not None and time.time() >= self.end:
            return False
        if self.budget is not None and self.sent >= self.budget:
            return False
        self.sent += 1
        return True


async def _place(client: OrderClient) -> str:
    try:
        result = await client.place_order(
            SYMBOL,
            "BUY",
            1,
            stop_loss_ticks=STOP_LOSS_TICKS,
            take_profit_ticks=TAKE_PROFIT_TICKS,
            custom_tag="bench",
        )
    except ResultTimeout:
        return "no answer"
    return result.status if result.ok else f"{result.status}: {result.error_code}"


async def _lane(client: OrderClient, tally: Tally) -> None:
    while tally.take():
        started = time.perf_counter()
        status = await _place(client)
        tally.latency_ms.append((time.perf_counter() - started) * 1000)
        tally.statuses[status] += 1
        if status != "no answer":
            tally.answered += 1
        if tally.end is None or time.time() <= tally.end:
            tally.in_window += 1


async def measure(
    redis_url: str, concurrency: int, duration: float | None, count: int | None, timeout: float
) -> dict[str, Any]:
    """Warm up, wait for the go, run the closed loop; the tally as JSON."""
    async with OrderClient(redis_url, account_id=ACCOUNT, timeout=timeout) as client:
        warm = await asyncio.gather(*(_place(client) for _ in range(concurrency)))
        emit({"ready": True, "warmup_unanswered": warm.count("no answer")})
        start_at = await wait_for_go()
        cpu_before = own_cpu_seconds()
        started = time.time()
        tally = Tally(count, None if duration is None else start_at + duration)
        tally.statuses.update(warm)
        await asyncio.gather(*(_lane(client, tally) for _ in range(concurrency)))
        finished = time.time()
        return {
            "sent": tally.sent + len(warm),
            "answered": tally.answered + len(warm) - warm.count("no answer"),
            "measured_sent": tally.sent,
            "measured_answered": tally.answered,
            "in_window": tally.in_window,
            "started": started,
            "late_s": max(0.0, started - start_at),
            "finished": finished,
            "statuses": dict(tally.statuses),
            "latency_ms": [round(x, 3) for x in tally.latency_ms],
            "cpu_s": own_cpu_seconds() - cpu_before,
        }


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``python -m benchmarks.throughput``."""
    parser = loadgen_parser("benchmarks.throughput", __doc__)
    redis_option(parser)
    parser.add_argument("--concurrency", type=int, default=64, help="calls in flight")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--duration", type=float, help="seconds to keep sending")
    mode.add_argument("--count", type=int, help="intents to send in all")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per call")
    args = parser.parse_args(argv)
    deliver(
        args.result,
        run(measure(args.redis_url, args.concurrency, args.duration, args.count, args.timeout)),
    )


if __name__ == "__main__":
    main()
