"""Scenario 4, arq as a plain job queue doing the same work.

An arq job (``order_job``) makes the broker call on a ``GatewayClient`` opened once per
worker process in ``on_startup``, as ours does; the caller enqueues it and reads the
result back with ``job.result()``. Two settings are measured: arq's defaults (the worker
polls its queue every 0.5 s, and ``job.result`` polls every 0.5 s), and both polls at 1 ms.

    python -m benchmarks.arq_baseline worker --redis-url URL --broker-url URL [--poll-delay S]
    python -m benchmarks.arq_baseline client --redis-url URL [--poll-delay S] --samples N

The worker is arq's own ``Worker`` (``arq.worker.run_worker(WorkerSettings)``), not the
product's subclass; ``arq benchmarks.arq_baseline.WorkerSettings`` runs it too, against a
Redis on localhost, given ``BENCH_BROKER_URL``.
The client's result (``workload.Recorder.as_json``) goes to ``--result FILE`` or stdout.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Final

import arq.worker
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from arq.cron import CronJob
from arq.typing import StartupShutdown, WorkerCoroutine
from arq.worker import Function

from benchmarks.direct import DEMO_KEY, DEMO_USER, DirectDriver
from benchmarks.procs import deliver, loadgen_parser, redis_option, run
from benchmarks.workload import SYMBOL, Outcome, run_sequential, sequential_options
from worker.broker.client import GatewayClient
from worker.broker.transport import make_session
from worker.ops.run import use_uvloop

QUEUE: Final = "arq:queue"
"""arq's default queue name, used by both sides."""
HEALTH_KEY: Final = f"{QUEUE}:health-check"
"""Written by an arq worker once it has started polling: the harness waits for it."""
_ARQ_DEFAULT_POLL_S: Final = 0.5
_RESULT_TIMEOUT_S: Final = 30.0


async def startup(ctx: dict[str, Any]) -> None:
    """One session and one logged-in broker client per worker process, as ours keeps."""
    session = make_session()
    broker = GatewayClient(
        session,
        ctx.get("broker_url") or os.environ["BENCH_BROKER_URL"],
        username=DEMO_USER,
        api_key=DEMO_KEY,
    )
    await broker.auth.login()
    await broker.contracts.resolve(SYMBOL)
    ctx.update(session=session, driver=DirectDriver(broker))


async def shutdown(ctx: dict[str, Any]) -> None:
    """Close the session."""
    if "session" in ctx:
        await ctx["session"].close()


async def order_job(
    ctx: dict[str, Any], kind: str, order_id: int | None, price: float | None
) -> dict[str, Any]:
    """The job: one broker call, as the direct driver makes it; its outcome as a dict."""
    driver: DirectDriver = ctx["driver"]
    if kind == "place":
        outcome = await driver.place(price)
    elif kind == "modify" and order_id is not None and price is not None:
        outcome = await driver.modify(order_id, price)
    elif kind == "cancel" and order_id is not None:
        outcome = await driver.cancel(order_id)
    else:
        raise ValueError(f"bad job arguments: {kind} {order_id} {price}")
    return {"status": outcome.status, "order_id": outcome.order_id, "ms": outcome.broker_ms}


class WorkerSettings:
    """arq's defaults, plus the job and the start-up/shutdown hooks."""

    functions: Sequence[WorkerCoroutine | Function] = (order_job,)
    cron_jobs: Sequence[CronJob] | None = None
    on_startup: StartupShutdown | None = startup
    on_shutdown: StartupShutdown | None = shutdown


class ArqDriver:
    """Each intent as an arq job, its result read back with ``job.result``."""

    def __init__(self, pool: ArqRedis, poll_delay: float) -> None:
        self._pool = pool
        self._poll_delay = poll_delay

    async def place(self, limit_price: float | None) -> Outcome:
        return await self._job("place", None, limit_price)

    async def modify(self, order_id: int, price: float) -> Outcome:
        return await self._job("modify", order_id, price)

    async def cancel(self, order_id: int) -> Outcome:
        return await self._job("cancel", order_id, None)

    async def _job(self, kind: str, order_id: int | None, price: float | None) -> Outcome:
        job = await self._pool.enqueue_job("order_job", kind, order_id, price)
        if job is None:
            return Outcome(answered=False, status="not enqueued")
        try:
            answer = await job.result(timeout=_RESULT_TIMEOUT_S, poll_delay=self._poll_delay)
        except TimeoutError:
            return Outcome(answered=False, status="no answer")
        except Exception as error:  # the job raised: an answer, a failed one
            return Outcome(answered=True, status=f"failed: {type(error).__name__}")
        return Outcome(
            answered=True,
            status=answer["status"],
            order_id=answer["order_id"],
            broker_ms=answer["ms"],
        )


async def measure(redis_url: str, poll_delay: float, samples: int, warmup: int) -> dict[str, Any]:
    """The sequential workload as arq jobs."""
    pool = await create_pool(RedisSettings.from_dsn(redis_url))
    try:
        return await run_sequential(ArqDriver(pool, poll_delay), samples, warmup)
    finally:
        await pool.aclose()


def serve(redis_url: str, broker_url: str, poll_delay: float | None) -> None:
    """Run arq's own worker with ``WorkerSettings`` until SIGTERM."""
    use_uvloop()  # the same event loop as the product's worker (arq takes the policy's)
    overrides: dict[str, Any] = {
        "redis_settings": RedisSettings.from_dsn(redis_url),
        "ctx": {"broker_url": broker_url},
    }
    if poll_delay is not None:
        overrides["poll_delay"] = poll_delay
    arq.worker.run_worker(WorkerSettings, **overrides)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``python -m benchmarks.arq_baseline``."""
    parser = loadgen_parser("benchmarks.arq_baseline", __doc__)
    parser.add_argument("role", choices=("worker", "client"))
    redis_option(parser)
    parser.add_argument("--broker-url", help="worker: the broker (simulator) base URL")
    parser.add_argument(
        "--poll-delay",
        type=float,
        help="seconds between polls (worker: of the queue; client: of the result); "
        f"default arq's own ({_ARQ_DEFAULT_POLL_S} s)",
    )
    sequential_options(parser)
    args = parser.parse_args(argv)
    if args.role == "worker":
        if not args.broker_url:
            parser.error("worker needs --broker-url")
        serve(args.redis_url, args.broker_url, args.poll_delay)
        return
    poll = _ARQ_DEFAULT_POLL_S if args.poll_delay is None else args.poll_delay
    deliver(args.result, run(measure(args.redis_url, poll, args.samples, args.warmup)))


if __name__ == "__main__":
    main()
