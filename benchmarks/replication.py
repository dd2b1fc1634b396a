"""What waiting for a replica costs a write, and what ``min-replicas-to-write`` does.

A primary with one replica (two ``redis-server`` processes on this machine), written to
through the hot path's pipelined connection, one write at a time:

- ``XADD`` alone: what every write of ours costs today (replication is asynchronous);
- ``XADD`` then ``WAIT 1 1000`` in the same pipeline: the write is acknowledged only once
  the replica has it, so a failover cannot lose it (an intent on the stream, a result);
- ``XADD`` with ``min-replicas-to-write 1`` on the primary: the primary refuses writes
  while no replica has acknowledged within ``min-replicas-max-lag``; it does not wait.

Then the replica is frozen (SIGSTOP), to show what ``min-replicas-to-write`` buys: after
the lag limit the primary refuses writes (``NOREPLICAS``) instead of acknowledging writes
that no replica has; until then it acknowledges them.

    python -m benchmarks.replication [--samples 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import redis.exceptions

from benchmarks.stats import Summary, summarize
from ow_core.fastlane import FastLane
from worker.local.stack import RedisServer

_FIELDS = ("v", "1", "d", "x" * 400)  # about the size of an intent


async def _measure(write: Callable[[], Any], samples: int) -> Summary:
    for _ in range(min(200, samples)):
        await write()
    taken = []
    for _ in range(samples):
        start = time.perf_counter()
        await write()
        taken.append((time.perf_counter() - start) * 1000)
    return summarize(taken)


async def run(samples: int, log_dir: Path) -> dict[str, Summary | str]:
    """Every figure of the module docstring, by name."""
    primary = RedisServer(log_dir).start()
    replica = RedisServer(log_dir, args=["--replicaof", "127.0.0.1", str(primary.port)]).start()
    lane = FastLane(primary.url)
    figures: dict[str, Summary | str] = {}
    try:
        for _ in range(100):  # the replica's first sync
            if await lane.execute("WAIT", 1, 100) >= 1:
                break

        async def xadd() -> None:
            await lane.execute("XADD", "bench:repl", "MAXLEN", "~", 1000, "*", *_FIELDS)

        async def xadd_wait() -> None:
            added = lane.execute("XADD", "bench:repl", "MAXLEN", "~", 1000, "*", *_FIELDS)
            acked = lane.execute("WAIT", 1, 1000)
            await asyncio.gather(added, acked)

        figures["XADD"] = await _measure(xadd, samples)
        figures["XADD + WAIT 1"] = await _measure(xadd_wait, samples)
        await lane.execute("CONFIG", "SET", "min-replicas-to-write", 1)
        await lane.execute("CONFIG", "SET", "min-replicas-max-lag", 2)
        figures["XADD, min-replicas-to-write 1"] = await _measure(xadd, samples)
        # A replica that stops answering, as one cut off by a partition looks: the primary
        # keeps acknowledging writes for up to the lag limit, then refuses them.
        assert replica.process is not None
        os.kill(replica.process.popen.pid, signal.SIGSTOP)
        stopped = time.monotonic()
        for accepted in range(1000):
            try:
                await xadd()
            except redis.exceptions.ResponseError as error:
                figures["replica frozen (SIGSTOP), min-replicas-max-lag 2"] = (
                    f"{accepted} writes acknowledged that no replica has, then refused "
                    f"after {time.monotonic() - stopped:.1f} s: {error}"
                )
                break
            await asyncio.sleep(0.01)
    finally:
        await lane.close()
        if replica.process is not None:
            os.kill(replica.process.popen.pid, signal.SIGCONT)
        replica.cleanup()
        primary.cleanup()
    return figures


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.replication")
    parser.add_argument("--samples", type=int, default=2000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ow-bench-repl-") as logs:
        figures = asyncio.run(run(args.samples, Path(logs)))
    print("| write (ms) | p50 | p95 | p99 |\n|---|--:|--:|--:|")
    for name, figure in figures.items():
        if isinstance(figure, Summary):
            print(f"| {name} | {figure.p50:.3f} | {figure.p95:.3f} | {figure.p99:.3f} |")
    for name, figure in figures.items():
        if isinstance(figure, str):
            print(f"\n{name}: {figure}")


if __name__ == "__main__":
    main()
