"""The stack a run measures, and the sizes of a quick and a full run.

One private ``redis-server`` and one simulator (``--no-rate-limit``) for the whole run,
started with ``worker.local.stack`` as the demo and the tests start them; workers and load
generators are separate processes started per scenario. Each scenario starts from a
flushed Redis and a reset simulator, so nothing one leaves behind slows the next.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import redis

from benchmarks.procs import LoadGen
from worker.local.pytest_plugin import BrokerSim
from worker.local.stack import Process, RedisServer, start_simulator, start_worker, worker_env


@dataclass(frozen=True)
class Sizes:
    """How much each scenario sends; ``QUICK`` and ``FULL`` below."""

    floor_samples: int
    floor_warmup: int
    sequential_samples: int
    sequential_warmup: int
    arq_default_samples: int
    arq_default_warmup: int
    arq_fast_samples: int
    arq_fast_warmup: int
    producers: int
    """Load generator processes in the throughput runs."""
    concurrency: int
    """Calls in flight per producer at zero broker latency."""
    window_s: float
    """Measured seconds per throughput point."""
    bounds: tuple[int, ...]
    broker_latency_ms: int
    backlog: int
    """Intents queued before the worker starts (memory with a backlog)."""
    soak: int
    """Intents through one worker in the soak."""
    soak_sample_s: float
    """Seconds between RSS samples in the soak."""
    peer_samples: int
    peer_warmup: int
    install_peers: bool
    """Whether a peer that needs a virtual environment of its own may have it created
    (pip, from the package index); a quick run only uses one already there."""
    rate_limit: tuple[int, float] | None
    """The limit of the rate-limit scenarios, (requests, seconds): None for the gateway's
    200 / 60 s at the simulator and the worker's default budget; a quick run scales it
    down and sets the worker's ``PROJECTX_RATE_LIMIT`` to match."""
    burst: int
    """New orders submitted at once into that limit."""
    per_order: int
    """New orders sent to count broker requests per order."""
    stats_poll_s: float
    """Seconds between reads of the simulator's counters in the sustained scenario."""
    fills: int
    """Fills timed from the simulator to ``events()``."""
    market_rate: float
    """Quotes per second at the simulator, across the ten symbols of scenario 12."""
    market_s: float
    """Seconds of each of scenario 12's phases (the floor, then the quotes)."""

    def describe(self) -> dict[str, Any]:
        """The sizes as JSON."""
        return asdict(self)


QUICK = Sizes(
    floor_samples=300,
    floor_warmup=50,
    sequential_samples=100,
    sequential_warmup=20,
    arq_default_samples=2,
    arq_default_warmup=0,
    arq_fast_samples=50,
    arq_fast_warmup=10,
    producers=2,
    concurrency=50,
    window_s=1.0,
    bounds=(8, 64),
    broker_latency_ms=20,
    backlog=1000,
    soak=2000,
    soak_sample_s=0.25,
    peer_samples=20,
    peer_warmup=5,
    install_peers=False,
    rate_limit=(20, 1.0),
    burst=12,
    per_order=10,
    stats_poll_s=0.05,
    fills=20,
    market_rate=300.0,
    market_s=1.5,
)
FULL = Sizes(
    floor_samples=10_000,
    floor_warmup=1000,
    sequential_samples=2000,
    sequential_warmup=200,
    arq_default_samples=20,
    arq_default_warmup=1,
    arq_fast_samples=1000,
    arq_fast_warmup=100,
    producers=2,
    concurrency=100,
    window_s=5.0,
    bounds=(8, 16, 32, 64),
    broker_latency_ms=20,
    backlog=10_000,
    soak=100_000,
    soak_sample_s=1.0,
    peer_samples=500,
    peer_warmup=50,
    install_peers=True,
    rate_limit=None,
    burst=120,
    per_order=100,
    stats_poll_s=0.1,
    fills=300,
    market_rate=1000.0,
    market_s=10.0,
)

WORKER_ENV: Mapping[str, str] = {
    "WARM_SYMBOLS": "MNQ",
    "PROJECTX_USER_HUB": "off",
    "PROJECTX_MARKET_HUB": "off",
}
"""What every benchmark worker gets on top of ``worker_env``: the contract resolved at
start, so the first measured place does not pay for the look-up; and no user-hub listener,
so scenarios 1-10 measure the order path as the queues compare (the listener runs in a
process of its own, and on this machine the simulator's pushes to it would share the same
two cores: scenario 11 and ``throughput.listening`` measure it, with ``PROJECTX_USER_HUB=on``;
scenario 12 the market feed, with ``PROJECTX_MARKET_HUB=on``).
Everything else is the product's default (``LOG_LEVEL=INFO`` included: one log line per
intent, as deployed)."""
LISTENING: Final = "on"
"""``PROJECTX_USER_HUB`` for the scenarios that measure the lifecycle."""


@dataclass
class Bench:
    """Redis, the simulator, and the processes of the scenario under way."""

    log_dir: Path
    redis_server: RedisServer
    sim: BrokerSim
    workers: list[Process] = field(default_factory=list)
    loadgens: list[LoadGen] = field(default_factory=list)
    _names: dict[str, int] = field(default_factory=dict)

    @classmethod
    @contextlib.contextmanager
    def running(cls, log_dir: Path) -> Iterator[Bench]:
        """Start Redis and the simulator; stop everything on the way out."""
        server = RedisServer(log_dir).start()
        try:
            process, url = start_simulator(log_dir, ["--no-rate-limit", "--seed", "7"])
            bench = cls(log_dir, server, BrokerSim(url, process))
            try:
                yield bench
            finally:
                bench.stop_all()
                process.stop()
        finally:
            server.cleanup()

    @property
    def redis_url(self) -> str:
        """The private Redis."""
        return self.redis_server.url

    @property
    def broker_url(self) -> str:
        """The simulator."""
        return self.sim.url

    def pids(self) -> dict[str, int]:
        """Process IDs of Redis and the simulator (CPU is read per process)."""
        assert self.redis_server.process is not None
        return {
            "redis": self.redis_server.process.popen.pid,
            "simulator": self.sim.process.popen.pid,
        }

    def fresh(self) -> None:
        """Stop this scenario's processes, flush Redis, reset the simulator."""
        self.stop_all()
        client = redis.Redis.from_url(self.redis_url)
        try:
            client.flushall()
        finally:
            client.close()
        self.sim.reset()

    @property
    def venv_dir(self) -> Path:
        """Where virtual environments of peers live (kept across runs, ignored by git)."""
        return self.log_dir.parent / "venvs"

    def worker(self, name: str, **env: str | None) -> Process:
        """Start ``order-worker run`` (``python -m worker run``) and wait until it consumes.

        A variable given as None is left unset, so the worker takes the product's default
        (``PROJECTX_RATE_LIMIT=None``: the gateway's budget, not ``worker_env``'s off).
        """
        unique = self._unique(name)
        given = {k: v for k, v in env.items() if v is not None}
        merged = worker_env(self.redis_url, self.broker_url, unique, {**WORKER_ENV, **given})
        for key in (k for k, v in env.items() if v is None):
            merged.pop(key, None)
        process = start_worker(self.log_dir, merged)
        self.workers.append(process)
        return process

    def loadgen(
        self,
        name: str,
        module: str,
        args: Sequence[str],
        *,
        python: str = sys.executable,
        env: Mapping[str, str] | None = None,
    ) -> LoadGen:
        """Start ``python -m <module> <args>``; stopped with the scenario."""
        gen = LoadGen(self._unique(name), module, args, self.log_dir, python=python, env=env)
        self.loadgens.append(gen)
        return gen

    def stop_all(self) -> None:
        """Stop load generators first (they are the callers), then workers."""
        for gen in self.loadgens:
            gen.stop()
        for process in self.workers:
            process.stop()
        self.loadgens.clear()
        self.workers.clear()

    def _unique(self, name: str) -> str:
        """Names repeat across scenarios; logs and worker names must not."""
        count = self._names[name] = self._names.get(name, 0) + 1
        return name if count == 1 else f"{name}-{count}"


def progress(text: str) -> None:
    """One progress line on stderr."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)
