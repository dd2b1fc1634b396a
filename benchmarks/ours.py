"""Scenario 2, ours: one producer, one intent at a time, through the queue and a worker.

    python -m benchmarks.ours --redis-url URL --samples N --warmup W

Each call is ``OrderClient.place_order`` / ``modify_order`` / ``cancel_order`` as a
strategy makes it, timed from the call to its result. The worker reports its own time at
the broker in ``result.broker_ms``; end-to-end minus that is the queue's share. The
result (``workload.Recorder.as_json``) goes to ``--result FILE`` or stdout.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Any

from benchmarks.procs import deliver, loadgen_parser, redis_option, run
from benchmarks.workload import (
    ACCOUNT,
    STOP_LOSS_TICKS,
    SYMBOL,
    TAKE_PROFIT_TICKS,
    Outcome,
    run_sequential,
    sequential_options,
)
from producer.client import OrderClient
from producer.contract import OrderResult
from producer.errors import ResultTimeout


class QueueDriver:
    """Intents through ``OrderClient``, as a strategy sends them."""

    def __init__(self, client: OrderClient) -> None:
        self._client = client

    async def place(self, limit_price: float | None) -> Outcome:
        if limit_price is None:
            call = self._client.place_order(
                SYMBOL,
                "BUY",
                1,
                stop_loss_ticks=STOP_LOSS_TICKS,
                take_profit_ticks=TAKE_PROFIT_TICKS,
                custom_tag="bench",
            )
        else:
            call = self._client.place_order(
                SYMBOL, "BUY", 1, order_type="limit", limit_price=limit_price, custom_tag="bench"
            )
        return await _outcome(call)

    async def modify(self, order_id: int, price: float) -> Outcome:
        return await _outcome(self._client.modify_order(order_id, price=price))

    async def cancel(self, order_id: int) -> Outcome:
        return await _outcome(self._client.cancel_order(order_id))


async def _outcome(call: Awaitable[OrderResult]) -> Outcome:
    try:
        result = await call
    except ResultTimeout:
        return Outcome(answered=False, status="no answer")
    status = result.status if result.ok else f"{result.status}: {result.error_code}"
    return Outcome(
        answered=True, status=status, order_id=result.order_id, broker_ms=result.broker_ms
    )


async def measure(redis_url: str, samples: int, warmup: int) -> dict[str, Any]:
    """The sequential workload through the queue."""
    async with OrderClient(redis_url, account_id=ACCOUNT, timeout=10.0) as client:
        return await run_sequential(QueueDriver(client), samples, warmup)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``python -m benchmarks.ours``."""
    parser = loadgen_parser("benchmarks.ours", __doc__)
    redis_option(parser)
    sequential_options(parser)
    args = parser.parse_args(argv)
    deliver(args.result, run(measure(args.redis_url, args.samples, args.warmup)))


if __name__ == "__main__":
    main()
