"""Scenario 7, the peers: the queues a user would pick instead of ours, on the same round trip.

Each peer gets a worker process of its own (its library's own worker, holding one aiohttp
session that logs in once and POSTs ``/api/Order/place`` per task, ``peer_http``) and a
caller that sends a bracketed market order and awaits its result, one at a time, warmed
up first, as ``ours`` does. Where a peer comes from:

- streaq shares our environment (the ``bench`` extra: ``pip install -e '.[test,bench]'``);
  when it is not installed the peer is skipped with a note.
- taskiq-redis needs redis-py 8, which arq's pin excludes, so it runs from a virtual
  environment under ``<out>/tmp/venvs/taskiq`` that a full run creates (pip, from
  ``requirements-taskiq.txt``) and later runs reuse while that file is unchanged. A quick
  run never installs: it uses that environment only if it is already there.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import redis

from benchmarks.harness import Bench, Sizes, progress
from benchmarks.report import Results
from benchmarks.stats import difference
from worker.local.stack import spawn, wait_until

ROOT: Final = Path(__file__).resolve().parents[1]
TASKIQ_REQUIREMENTS: Final = Path(__file__).with_name("requirements-taskiq.txt")
REDIS_URL_ENV: Final = "BENCH_REDIS_URL"
BROKER_URL_ENV: Final = "BENCH_BROKER_URL"
_START_TIMEOUT_S: Final = 60.0
_INSTALL_TIMEOUT_S: Final = 600.0
_STATS: Final = ("p50", "p95", "p99")


@dataclass(frozen=True)
class Peer:
    """One queue library, how its worker and its caller are started."""

    key: str
    how: str
    """The setting measured, in words (for the figures)."""
    client_module: str
    worker_args: tuple[str, ...]
    """After ``python``: the library's own worker command."""
    ready_key: str
    """Set in Redis by the worker once it is logged in."""
    packages: tuple[str, ...]
    """Reported with their versions."""
    own_venv: bool


PEERS: Final = (
    Peer(
        key="streaq",
        how="streaq task, result awaited with task.result() (pub/sub), "
        "coredis optimized mode and uvloop",
        client_module="benchmarks.peer_streaq",
        worker_args=("-m", "streaq", "run", "benchmarks.peer_streaq:worker"),
        ready_key="bench:streaq:ready",
        packages=("streaq", "coredis"),
        own_venv=False,
    ),
    Peer(
        key="taskiq",
        how="taskiq task on taskiq-redis's RedisStreamBroker, result polled every 1 ms "
        "from RedisAsyncResultBackend, one worker process, uvloop",
        client_module="benchmarks.peer_taskiq",
        worker_args=(
            "-m", "taskiq", "worker", "benchmarks.peer_taskiq:broker", "--workers", "1",
        ),
        ready_key="bench:taskiq:ready",
        packages=("taskiq", "taskiq-redis", "redis"),
        own_venv=True,
    ),
)  # fmt: skip


def _installed_here(peer: Peer) -> tuple[str | None, str]:
    modules = [name.replace("-", "_") for name in peer.packages]
    if any(importlib.util.find_spec(module) is None for module in modules):
        return None, "not installed (pip install -e '.[test,bench]')"
    versions = ", ".join(f"{p} {importlib.metadata.version(p)}" for p in peer.packages)
    return sys.executable, versions


def _own_venv(peer: Peer, bench: Bench, sizes: Sizes) -> tuple[str | None, str]:
    """The peer's virtual environment: reused while its requirements are unchanged,
    created by a full run otherwise; (its python or None, versions or why not)."""
    venv = bench.venv_dir / peer.key
    python = venv / "bin" / "python"
    stamp = venv / ".requirements-sha256"
    wanted = hashlib.sha256(TASKIQ_REQUIREMENTS.read_bytes()).hexdigest()
    if not (stamp.exists() and stamp.read_text() == wanted and python.exists()):
        if not sizes.install_peers:
            return None, f"its virtual environment ({venv}) is not installed; a quick run "
            "installs nothing (a full run creates it)"
        made = _install(venv, python)
        if made is not None:
            return None, made
        stamp.write_text(wanted)
    probe = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m, sys; "
         "print(', '.join(f'{p} {m.version(p)}' for p in sys.argv[1:]))", *peer.packages],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    if probe.returncode != 0:
        return None, f"its virtual environment does not work: {probe.stderr[-500:]}"
    return str(python), f"{probe.stdout.strip()} (own virtual environment)"


def _install(venv: Path, python: Path) -> str | None:
    """Create the virtual environment and pip-install the requirements; why not, if not."""
    progress(f"creating {venv} for the taskiq peer (pip install -r {TASKIQ_REQUIREMENTS.name})")
    steps = (
        [sys.executable, "-m", "venv", "--clear", str(venv)],
        [str(python), "-m", "pip", "install", "-q", "-r", str(TASKIQ_REQUIREMENTS)],
    )
    for argv in steps:
        try:
            done = subprocess.run(
                argv, capture_output=True, text=True, timeout=_INSTALL_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired:
            return f"{' '.join(argv[:4])} did not finish in {_INSTALL_TIMEOUT_S:g} s"
        if done.returncode != 0:
            return f"{' '.join(argv[:4])} failed: {(done.stderr or done.stdout)[-500:]}"
    return None


def peers(bench: Bench, sizes: Sizes, results: Results) -> str:
    """Each available peer's place round trip, and ours as a ratio to it."""
    said = []
    for peer in PEERS:
        python, about = _own_venv(peer, bench, sizes) if peer.own_venv else _installed_here(peer)
        if python is None:
            results.notes.append(f"Peer {peer.key} not measured: {about}.")
            said.append(f"{peer.key} skipped")
            continue
        _measure(bench, sizes, results, peer, python, about)
        said.append(f"{peer.key} place p50 {_p50(results, f'{peer.key}.place')}")
    bench.stop_all()
    return "; ".join(said)


def _measure(
    bench: Bench, sizes: Sizes, results: Results, peer: Peer, python: str, about: str
) -> None:
    bench.fresh()
    env = {REDIS_URL_ENV: bench.redis_url, BROKER_URL_ENV: bench.broker_url}
    if peer.own_venv:
        env["PYTHONPATH"] = str(ROOT)  # the benchmark's own modules, not installed there
    process = spawn(
        f"{peer.key}-worker", [python, *peer.worker_args], env=env, log_dir=bench.log_dir
    )
    bench.workers.append(process)
    client = redis.Redis.from_url(bench.redis_url)
    try:
        wait_until(
            lambda: client.exists(peer.ready_key), f"{peer.key} worker", _START_TIMEOUT_S, process
        )
    finally:
        client.close()
    rounds = sizes.peer_samples + sizes.peer_warmup
    answer = bench.loadgen(
        peer.key,
        peer.client_module,
        ["--samples", str(sizes.peer_samples), "--warmup", str(sizes.peer_warmup)],
        python=python,
        env=env,
    ).result(_START_TIMEOUT_S + rounds * 0.1)
    scenario = f"7 peers, {peer.key}"
    results.count(scenario).add(answer)
    setup = f"{peer.how}; {about}"
    total = answer["latency_ms"]["place"]
    figure = results.latency(
        f"{peer.key}.place",
        scenario,
        f"{setup}: place (market BUY 1 MNQ with brackets), end to end at the caller, one at a time",
        total,
    )
    broker = answer["broker_ms"].get("place", [])
    if len(broker) == len(total):
        results.latency(
            f"{peer.key}.queue.place",
            scenario,
            f"{peer.key}'s share: end to end minus the task's own time at the broker; place",
            difference(total, broker),
        )
    if answer.get("finished_ms"):
        results.latency(
            f"{peer.key}.finished.place",
            scenario,
            f"from the caller's send until the worker had finished the task ({peer.key}'s own "
            "finish time); the rest of the round trip is the result's way back",
            answer["finished_ms"],
        )
    ours = results.figure("ours.place")
    for stat in _STATS:
        mine = None if ours is None else getattr(ours, stat)
        theirs = getattr(figure, stat)
        if mine is None or not theirs:
            continue
        results.scalar(
            f"{peer.key}.ours_ratio_{stat}",
            scenario,
            f"ours.place {stat} / {peer.key}.place {stat} (below 1: ours is faster)",
            mine / theirs,
            "ratio",
        )


def _p50(results: Results, key: str) -> str:
    figure = results.figure(key)
    return "-" if figure is None or figure.p50 is None else f"{figure.p50:.3f} ms"
