"""Peer 1, streaq: the place round trip as a streaq task (the ``bench`` extra installs it).

    python -m streaq run benchmarks.peer_streaq:worker       the worker (streaq's own CLI)
    python -m benchmarks.peer_streaq --samples N --warmup W  the caller

Both read ``BENCH_REDIS_URL``; the worker also ``BENCH_BROKER_URL``. The worker's
lifespan opens one aiohttp session, logs in and resolves the contract (``peer_http``),
then sets ``READY_KEY``; its task ``place_order`` makes the one broker call. The caller
enqueues it and awaits ``task.result()``, one at a time; its result
(``workload.Recorder.as_json``) goes to ``--result FILE`` or stdout.

Settings, from streaq's documentation ("Worker optimization"): coredis's optimized mode
(``coredis.Config.optimized``, no runtime validation of commands) and uvloop
(``anyio_kwargs={"use_uvloop": True}``); ``max_tries=1`` on the task, as its docs say for
work that must not run twice (an order). Everything else is streaq's default: pickle,
concurrency 16, prefetch, INFO logs (two lines per task) as its CLI configures them.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Final

import coredis
from streaq import Worker

from benchmarks.peer_http import PeerGateway, make_session, new_tag
from benchmarks.procs import deliver, loadgen_parser, run
from benchmarks.workload import Outcome, run_places, sequential_options

REDIS_URL_ENV: Final = "BENCH_REDIS_URL"
BROKER_URL_ENV: Final = "BENCH_BROKER_URL"
READY_KEY: Final = "bench:streaq:ready"
_RESULT_TIMEOUT_S: Final = 30

coredis.Config.optimized = True


@dataclass(frozen=True)
class Context:
    """What the worker's lifespan holds for its tasks."""

    gateway: PeerGateway


@asynccontextmanager
async def lifespan() -> AsyncIterator[Context]:
    """One session, logged in, for the worker's life; then tell the harness it is ready."""
    async with make_session() as session:
        gateway = await PeerGateway.open(session, os.environ[BROKER_URL_ENV])
        await worker.redis.set(READY_KEY, "1")
        yield Context(gateway)


worker: Worker[Context] = Worker(
    redis_url=os.environ.get(REDIS_URL_ENV, "redis://127.0.0.1:6379/0"),
    lifespan=lifespan,
    anyio_kwargs={"use_uvloop": True},
)


async def place_order(tag: str) -> dict[str, Any]:
    """The task: one bracketed market order at the broker."""
    gateway: PeerGateway = worker.context.gateway
    return await gateway.place(tag)


place = worker.task(max_tries=1)(place_order)


_finished_ms: list[float] = []
"""Per call: from the caller's send until the worker had finished the task (streaq's own
``finish_time``), so the figures can tell dispatch from the delivery of the result."""


async def _place() -> Outcome:
    sent = time.time()
    task = await place.enqueue(new_tag())
    try:
        result = await task.result(timeout=_RESULT_TIMEOUT_S)
    except TimeoutError:
        return Outcome(answered=False, status="no answer")
    _finished_ms.append(result.finish_time - sent * 1000)
    if not result.success:
        return Outcome(answered=True, status=f"failed: {type(result.exception).__name__}")
    answer: dict[str, Any] = result.result
    return Outcome(
        answered=True, status=answer["status"], order_id=answer["order_id"], broker_ms=answer["ms"]
    )


async def measure(samples: int, warmup: int) -> dict[str, Any]:
    """The place round trip through streaq, one at a time."""
    async with worker:
        answer = await run_places(_place, samples, warmup)
    answer["finished_ms"] = _finished_ms[warmup:]
    return answer


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``python -m benchmarks.peer_streaq`` (the caller)."""
    parser = loadgen_parser("benchmarks.peer_streaq", __doc__)
    sequential_options(parser)
    args = parser.parse_args(argv)
    deliver(args.result, run(measure(args.samples, args.warmup)))


if __name__ == "__main__":
    main()
