"""Peer 2, taskiq with taskiq-redis's ``RedisStreamBroker``: the place round trip as a task.

taskiq-redis needs redis-py 8 and arq pins ours below 6, so this runs from a virtual
environment of its own (``requirements-taskiq.txt``; ``benchmarks.peers`` creates it):

    <venv>/bin/python -m taskiq worker benchmarks.peer_taskiq:broker --workers 1
    <venv>/bin/python -m benchmarks.peer_taskiq --samples N --warmup W [--poll-delay S]

Both read ``BENCH_REDIS_URL``; the worker also ``BENCH_BROKER_URL``. On
``WORKER_STARTUP`` the worker opens one aiohttp session, logs in and resolves the contract
(``peer_http``), then sets ``READY_KEY``; the task ``place_order`` makes the one broker
call. The caller ``kiq``s it and awaits ``wait_result``, one at a time; its result
(``workload.Recorder.as_json``) goes to ``--result FILE`` or stdout.

Settings, from taskiq's and taskiq-redis's documentation: the stream broker (the one with
acknowledgements) with the ``RedisAsyncResultBackend``; one worker process
(``--workers 1``, as ours), uvloop installed (taskiq's CLI uses it when present), the
default acknowledgement (``when_saved``: after the result is stored, as ours acks after
its result is written), ``xread_block`` left at 2 s (a blocking read returns as soon as an
entry arrives; the block only bounds idle polls). taskiq has no push for results:
``wait_result`` polls the backend every ``check_interval`` (0.2 s by default), so the
caller polls every 1 ms, as arq's fast setting here does.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

from redis.asyncio import Redis
from taskiq import Context, TaskiqDepends, TaskiqEvents, TaskiqState
from taskiq.exceptions import TaskiqResultTimeoutError
from taskiq_redis import RedisAsyncResultBackend, RedisStreamBroker

from benchmarks.peer_http import PeerGateway, make_session, new_tag
from benchmarks.procs import deliver, loadgen_parser, run
from benchmarks.workload import Outcome, run_places, sequential_options

REDIS_URL_ENV: Final = "BENCH_REDIS_URL"
BROKER_URL_ENV: Final = "BENCH_BROKER_URL"
READY_KEY: Final = "bench:taskiq:ready"
POLL_S: Final = 0.001
_RESULT_TIMEOUT_S: Final = 30.0
_REDIS_URL: Final = os.environ.get(REDIS_URL_ENV, "redis://127.0.0.1:6379/0")

broker = RedisStreamBroker(url=_REDIS_URL).with_result_backend(
    RedisAsyncResultBackend(redis_url=_REDIS_URL, result_ex_time=300)
)


async def startup(state: TaskiqState) -> None:
    """One session, logged in, per worker process; then tell the harness it is ready."""
    state.session = make_session()
    state.gateway = await PeerGateway.open(state.session, os.environ[BROKER_URL_ENV])
    redis = Redis.from_url(_REDIS_URL)
    try:
        await redis.set(READY_KEY, "1")
    finally:
        await redis.aclose()


async def shutdown(state: TaskiqState) -> None:
    """Close the session."""
    await state.session.close()


broker.add_event_handler(TaskiqEvents.WORKER_STARTUP, startup)
broker.add_event_handler(TaskiqEvents.WORKER_SHUTDOWN, shutdown)


_CONTEXT: Final = TaskiqDepends()
"""taskiq injects the task's ``Context`` where a parameter defaults to this."""


async def place_order(tag: str, context: Context = _CONTEXT) -> dict[str, Any]:
    """The task: one bracketed market order at the broker."""
    gateway: PeerGateway = context.state.gateway
    return await gateway.place(tag)


# Named, since the caller runs this module as __main__ and taskiq's default name is the
# module path.
place = broker.task(task_name="place_order")(place_order)


def _placer(poll_s: float) -> Callable[[], Awaitable[Outcome]]:
    async def one() -> Outcome:
        task = await place.kiq(new_tag())
        try:
            result = await task.wait_result(check_interval=poll_s, timeout=_RESULT_TIMEOUT_S)
        except TaskiqResultTimeoutError:
            return Outcome(answered=False, status="no answer")
        if result.is_err:
            return Outcome(answered=True, status=f"failed: {type(result.error).__name__}")
        answer: dict[str, Any] = result.return_value
        return Outcome(
            answered=True,
            status=answer["status"],
            order_id=answer["order_id"],
            broker_ms=answer["ms"],
        )

    return one


async def measure(samples: int, warmup: int, poll_s: float) -> dict[str, Any]:
    """The place round trip through taskiq, one at a time."""
    await broker.startup()
    try:
        return await run_places(_placer(poll_s), samples, warmup)
    finally:
        await broker.shutdown()


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``python -m benchmarks.peer_taskiq`` (the caller)."""
    parser = loadgen_parser("benchmarks.peer_taskiq", __doc__)
    sequential_options(parser)
    parser.add_argument(
        "--poll-delay", type=float, default=POLL_S, help="seconds between result polls"
    )
    args = parser.parse_args(argv)
    deliver(args.result, run(measure(args.samples, args.warmup, args.poll_delay)))


if __name__ == "__main__":
    main()
