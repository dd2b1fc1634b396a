"""Scenario 6, the backlog: queue many intents while no worker runs, then await them all.

    python -m benchmarks.soak --redis-url URL --count 10000

Submits ``--count`` bracketed market orders (XADD only, a few hundred at a time), prints
``{"queued": n}``, then waits for every result; the harness starts the worker after the
first line and samples its memory while it drains the backlog. The result (sent,
answered, statuses) goes to ``--result FILE`` or stdout.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any, Final

from benchmarks.procs import deliver, emit, loadgen_parser, redis_option, run
from benchmarks.workload import ACCOUNT, STOP_LOSS_TICKS, SYMBOL, TAKE_PROFIT_TICKS
from producer.client import OrderClient
from producer.errors import ResultTimeout

_BATCH: Final = 500


async def measure(redis_url: str, count: int, timeout: float) -> dict[str, Any]:
    """Queue ``count`` intents, announce it, then await every result."""
    async with OrderClient(redis_url, account_id=ACCOUNT, timeout=timeout) as client:
        request_ids: list[str] = []
        for start in range(0, count, _BATCH):
            intents = [
                client.make_place(
                    SYMBOL,
                    "BUY",
                    1,
                    stop_loss_ticks=STOP_LOSS_TICKS,
                    take_profit_ticks=TAKE_PROFIT_TICKS,
                    custom_tag="bench",
                )
                for _ in range(min(_BATCH, count - start))
            ]
            request_ids += await asyncio.gather(*(client.submit(i) for i in intents))
        emit({"queued": len(request_ids)})
        started = time.time()
        statuses: Counter[str] = Counter()

        async def wait(request_id: str) -> None:
            try:
                result = await client.wait(request_id, timeout)
            except ResultTimeout:
                statuses["no answer"] += 1
                return
            statuses[result.status if result.ok else f"{result.status}: {result.error_code}"] += 1

        await asyncio.gather(*(wait(r) for r in request_ids))
        return {
            "sent": len(request_ids),
            "answered": len(request_ids) - statuses["no answer"],
            "statuses": dict(statuses),
            "drain_s": time.time() - started,
            "finished": time.time(),
        }


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``python -m benchmarks.soak``."""
    parser = loadgen_parser("benchmarks.soak", __doc__)
    redis_option(parser)
    parser.add_argument("--count", type=int, default=10_000, help="intents to queue")
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds each intent may wait (its deadline)"
    )
    args = parser.parse_args(argv)
    deliver(args.result, run(measure(args.redis_url, args.count, args.timeout)))


if __name__ == "__main__":
    main()
