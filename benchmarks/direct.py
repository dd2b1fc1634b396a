"""Scenario 3, direct: the same intents straight to the broker, no queue.

    python -m benchmarks.direct --broker-url URL --samples N --warmup W
    python -m benchmarks.direct --broker-url URL --concurrency C --duration S

What a strategy would get holding its own broker session: one process, one persistent
aiohttp session, the worker's own ``GatewayClient`` (same validation, same JSON, same
retries), logged in and with the contract resolved before measuring. Each order carries a
tag made from a fresh request ID, as the worker sends. The result
(``workload.Recorder.as_json``) goes to ``--result FILE`` or stdout.

With ``--concurrency``, ``C`` lanes each place a bracketed market order and the next as
soon as it is answered, for ``S`` seconds: the rate one session gets with ``C`` requests
in flight, the baseline of the worker's in-flight bounds (``{"rate": ..., "placed": ...}``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from benchmarks.procs import deliver, loadgen_parser, run
from benchmarks.workload import (
    ACCOUNT,
    STOP_LOSS_TICKS,
    SYMBOL,
    TAKE_PROFIT_TICKS,
    Outcome,
    run_sequential,
    sequential_options,
)
from ow_core.tags import broker_tag
from producer.intents import new_request_id
from worker.broker.client import GatewayClient
from worker.broker.errors import BrokerError
from worker.broker.transport import CallStats, make_session

DEMO_USER = "demo"
DEMO_KEY = "demo-key"
"""The simulator takes any credentials unless started with ``--username``/``--api-key``."""
_TAG_MAX_LEN = 50


class DirectDriver:
    """Intents as broker calls on one ``GatewayClient``."""

    def __init__(self, broker: GatewayClient) -> None:
        self._broker = broker

    async def place(self, limit_price: float | None) -> Outcome:
        tag = broker_tag("bench", new_request_id(), _TAG_MAX_LEN)
        if limit_price is None:
            return await _call(
                lambda stats: self._broker.place_order(
                    account_id=ACCOUNT,
                    symbol=SYMBOL,
                    side="BUY",
                    quantity=1,
                    stop_loss_ticks=STOP_LOSS_TICKS,
                    take_profit_ticks=TAKE_PROFIT_TICKS,
                    custom_tag=tag,
                    stats=stats,
                )
            )
        return await _call(
            lambda stats: self._broker.place_order(
                account_id=ACCOUNT,
                symbol=SYMBOL,
                side="BUY",
                quantity=1,
                order_type="limit",
                limit_price=limit_price,
                custom_tag=tag,
                stats=stats,
            )
        )

    async def modify(self, order_id: int, price: float) -> Outcome:
        return await _call(
            lambda stats: self._broker.modify_order(
                account_id=ACCOUNT, order_id=order_id, limit_price=price, stats=stats
            ),
            order_id,
        )

    async def cancel(self, order_id: int) -> Outcome:
        return await _call(
            lambda stats: self._broker.cancel_order(
                account_id=ACCOUNT, order_id=order_id, stats=stats
            ),
            order_id,
        )


async def _call(
    send: Callable[[CallStats], Awaitable[int | None]], order_id: int | None = None
) -> Outcome:
    stats = CallStats()
    try:
        answer = await send(stats)
    except BrokerError as error:
        # The broker answered (a refusal) or could not be reached: a result either way,
        # as the worker would report it.
        return Outcome(answered=True, status=f"error: {error.code}", broker_ms=stats.broker_ms)
    return Outcome(
        answered=True,
        status="accepted",
        order_id=answer if answer is not None else order_id,
        broker_ms=stats.broker_ms,
    )


async def measure(broker_url: str, samples: int, warmup: int) -> dict[str, Any]:
    """The sequential workload straight to the broker."""
    async with make_session() as session:
        broker = GatewayClient(session, broker_url, username=DEMO_USER, api_key=DEMO_KEY)
        await broker.auth.login()
        await broker.contracts.resolve(SYMBOL)
        return await run_sequential(DirectDriver(broker), samples, warmup)


async def measure_concurrent(broker_url: str, concurrency: int, duration: float) -> dict[str, Any]:
    """``concurrency`` lanes placing orders back to back for ``duration`` seconds."""
    async with make_session() as session:
        broker = GatewayClient(session, broker_url, username=DEMO_USER, api_key=DEMO_KEY)
        await broker.auth.login()
        await broker.contracts.resolve(SYMBOL)
        driver = DirectDriver(broker)
        placed = 0
        end = time.monotonic() + duration

        async def lane() -> None:
            nonlocal placed
            while time.monotonic() < end:
                outcome = await driver.place(None)
                placed += outcome.status == "accepted"

        started = time.monotonic()
        await asyncio.gather(*(lane() for _ in range(concurrency)))
        return {"rate": placed / (time.monotonic() - started), "placed": placed}


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``python -m benchmarks.direct``."""
    parser = loadgen_parser("benchmarks.direct", __doc__)
    parser.add_argument("--broker-url", required=True, help="the broker (simulator) base URL")
    sequential_options(parser)
    parser.add_argument(
        "--concurrency", type=int, default=0, help="lanes in flight (0: the sequential workload)"
    )
    parser.add_argument("--duration", type=float, default=5.0, help="seconds, with --concurrency")
    args = parser.parse_args(argv)
    if args.concurrency > 0:
        work = measure_concurrent(args.broker_url, args.concurrency, args.duration)
    else:
        work = measure(args.broker_url, args.samples, args.warmup)
    deliver(args.result, run(work))


if __name__ == "__main__":
    main()
