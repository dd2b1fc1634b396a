"""Load generators as separate processes, and what /proc says about any process.

A load generator is ``python -m benchmarks.<module> ... --result FILE``: it writes small
JSON control lines to stdout (``ready``, ``queued``), its result to FILE (then a last
line naming it) and its logs to stderr, which goes to a file. Results go to a file, not
the pipe, because uvloop leaves stdout so that a write larger than the pipe's buffer is
cut short without an error (MagicStack/uvloop#460; measured here: 64 KiB of a 400 KB
line arrived, and the process exited 0).
Running each in a process of its own keeps the event loops of the measured parts apart,
as they are in production: a strategy, a worker and the broker are different processes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Coroutine, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, TypeVar

import msgspec

T = TypeVar("T")

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


class BenchError(RuntimeError):
    """A benchmark process failed or did not answer in time."""


class LoadGen:
    """A running ``python -m benchmarks.<module>`` and its JSON lines."""

    def __init__(
        self,
        name: str,
        module: str,
        args: Sequence[str],
        log_dir: Path,
        *,
        python: str = sys.executable,
        env: Mapping[str, str] | None = None,
    ) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self.result_path = log_dir / f"{name}.result.json"
        sink: IO[bytes] = self.log_path.open("ab")
        try:
            self.popen = subprocess.Popen(
                [python, "-m", module, *args, "--result", str(self.result_path)],
                stdin=subprocess.PIPE,
                env=None if env is None else {**os.environ, **env},
                stdout=subprocess.PIPE,
                stderr=sink,
                start_new_session=True,
            )
        finally:
            sink.close()
        assert self.popen.stdout is not None
        self._stdout = self.popen.stdout
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._stdout, selectors.EVENT_READ)

    @property
    def pid(self) -> int:
        """The process ID."""
        return self.popen.pid

    def send(self, line: str) -> None:
        """Write one line to its stdin (e.g. the ``go`` of a throughput producer)."""
        assert self.popen.stdin is not None
        self.popen.stdin.write(line.encode() + b"\n")
        self.popen.stdin.flush()

    @property
    def done(self) -> bool:
        """Whether it has exited."""
        return self.popen.poll() is not None

    def line(self, timeout: float) -> dict[str, Any]:
        """The next JSON line it prints (waiting up to ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.stop()
                raise BenchError(f"{self.name}: no output after {timeout:g} s{self._tail()}")
            if self._selector.select(left):
                raw = self._stdout.readline()
                if not raw:
                    self.popen.wait(5)
                    raise BenchError(
                        f"{self.name} exited ({self.popen.returncode}) early{self._tail()}"
                    )
                answer: dict[str, Any] = msgspec.json.decode(raw)
                return answer

    def result(self, timeout: float) -> dict[str, Any]:
        """Its result, once it exits with status 0."""
        announced = self.line(timeout)
        if announced.get("result") != str(self.result_path):
            self.stop()
            raise BenchError(f"{self.name}: expected its result, got {announced}{self._tail()}")
        answer: dict[str, Any] = msgspec.json.decode(self.result_path.read_bytes())
        try:
            code = self.popen.wait(max(1.0, timeout))
        except subprocess.TimeoutExpired:
            self.stop()
            raise BenchError(f"{self.name}: did not exit after its result{self._tail()}") from None
        if code != 0:
            raise BenchError(f"{self.name} exited with status {code}{self._tail()}")
        return answer

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not go (used on failures and at the end)."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(5)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self._selector.close()
        self._stdout.close()
        if self.popen.stdin is not None:
            self.popen.stdin.close()

    def _tail(self) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return f":\n{text[-3000:]}" if text else f" (log: {self.log_path})"


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far (``/proc/<pid>/stat``)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) may hold spaces and parentheses; fields after it do not.
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / _CLOCK_TICKS


def rss_mb(pid: int) -> float:
    """Resident set size of a process in MiB (``/proc/<pid>/status`` VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    # A zombie has no VmRSS line; fall back to statm, which reads zero for it too.
    pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return pages * _PAGE_BYTES / 2**20


def own_cpu_seconds() -> float:
    """CPU time this process has used (a load generator reports its own cost)."""
    times = os.times()
    return times.user + times.system


def emit(payload: object) -> None:
    """Print one short JSON line to stdout for the harness (flushed at once)."""
    sys.stdout.write(msgspec.json.encode(payload).decode() + "\n")
    sys.stdout.flush()


def loadgen_parser(module: str, doc: str | None) -> argparse.ArgumentParser:
    """The argument parser of a load generator: its docstring as help, and ``--result``,
    which every load generator takes (the harness passes it)."""
    parser = argparse.ArgumentParser(
        prog=f"python -m {module}",
        description=doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--result",
        type=Path,
        help="write the result (JSON) to this file and print its name; default: print it",
    )
    return parser


def redis_option(parser: argparse.ArgumentParser) -> None:
    """``--redis-url``, required."""
    parser.add_argument("--redis-url", required=True, help="the Redis to use, redis://HOST:PORT/DB")


def deliver(path: Path | None, payload: object) -> None:
    """Write the result to ``path`` and announce it, or print it when there is no path."""
    if path is None:
        emit(payload)
        return
    partial = path.with_suffix(".partial")
    partial.write_bytes(msgspec.json.encode(payload))
    partial.replace(path)
    emit({"result": str(path)})


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run a load generator's coroutine on uvloop, as the worker runs (asyncio without it)."""
    try:
        import uvloop
    except ImportError:  # no uvloop build for this platform
        return asyncio.run(main)
    return uvloop.run(main)


def sleep_until(epoch: float) -> float:
    """Seconds to wait until a wall-clock time (0 when it has passed)."""
    return max(0.0, epoch - time.time())


async def wait_for_go() -> float:
    """Read ``go <epoch>`` from stdin (without blocking the event loop), then sleep until
    that wall-clock time, so load generators started apart begin together; the epoch."""
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    word, _, when = line.partition(" ")
    if word != "go":
        raise SystemExit(f"expected 'go <epoch>' on stdin, got {line!r}")
    start_at = float(when)
    await asyncio.sleep(sleep_until(start_at))
    return start_at
