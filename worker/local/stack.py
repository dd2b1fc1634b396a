"""A local stack of real processes: redis-server, the broker simulator, worker processes.

Used by ``order-worker demo``, the pytest plugin and the benchmarks, so all three run the
product exactly as it runs for real: separate processes talking over 127.0.0.1 on free
ports, nothing shared in memory.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Final, cast

import redis

_LISTENING: Final = re.compile(rb"listening on (http://\S+)")


class StackError(RuntimeError):
    """A local process did not start or did not become ready in time."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Process:
    """A child process with a name, its output captured to a log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def alive(self) -> bool:
        """Whether it is still running."""
        return self.popen.poll() is None

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, wait up to ``timeout``, then SIGKILL; returns the exit code."""
        if self.alive:
            self.popen.send_signal(signal.SIGTERM)
            try:
                return self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        return self.kill()

    def kill(self) -> int | None:
        """SIGKILL now (a crash, as far as the process can tell)."""
        if self.alive:
            self.popen.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            return self.popen.wait(5)
        return None

    def output(self) -> str:
        """What it printed so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


def spawn(
    name: str,
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    log_dir: Path,
) -> Process:
    """Start a child process whose stdout and stderr go to ``log_dir/name.log``."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    sink: IO[bytes] = log_path.open("ab")
    try:
        popen = subprocess.Popen(
            list(argv),
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
    finally:
        sink.close()
    return Process(name, popen, log_path)


def wait_until(check: object, what: str, timeout: float, process: Process | None = None) -> None:
    """Poll ``check()`` until it is true; StackError with the process's output if not.

    A process that is not ready in time, or whose wait is interrupted (Ctrl-C, SIGTERM),
    is killed here: it runs in a session of its own, so nothing else would stop it.
    """
    assert callable(check)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process is not None and not process.alive:
                raise StackError(
                    f"{what}: {process.name} exited early:\n{process.output()[-3000:]}"
                )
            with contextlib.suppress(Exception):
                if check():
                    return
            time.sleep(0.02)
        tail = f":\n{process.output()[-3000:]}" if process is not None else ""
        raise StackError(f"{what}: not ready after {timeout:g} s{tail}")
    except BaseException:
        if process is not None:
            process.kill()
        raise


@dataclass
class RedisServer:
    """A private ``redis-server`` on a free port (never the machine's own)."""

    log_dir: Path
    appendonly: bool = False
    port: int = field(default_factory=free_port)
    args: Sequence[str] = ()
    """More ``redis-server`` options (``--replicaof``, ``--user``...)."""
    tls_dir: Path | None = None
    """Serve TLS only, with ``ca.crt``, ``redis.crt`` and ``redis.key`` from here."""
    admin: tuple[str, str] | None = None
    """The user and password ``url`` logs in as (for a server with ACL users)."""
    data_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ow-redis-")))
    process: Process | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0`` (``rediss://`` with the CA to trust, and the admin's
        credentials, when the server has them)."""
        return self.url_for(*self.admin) if self.admin else self.url_for()

    def url_for(self, user: str | None = None, password: str | None = None) -> str:
        """The URL of this server for one ACL user (or none)."""
        login = f"{user}:{password}@" if user and password else ""
        if self.tls_dir is None:
            return f"redis://{login}127.0.0.1:{self.port}/0"
        return f"rediss://{login}127.0.0.1:{self.port}/0?ssl_ca_certs={self.tls_dir / 'ca.crt'}"

    def start(self, timeout: float = 10.0) -> RedisServer:
        """Start it (again, on the same port and data directory) and wait for PING."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise StackError(
                "redis-server not found: install it (Debian: apt-get install redis-server)"
            )
        argv = [
            binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.data_dir),
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "everysec",
            *self._tls_args(),
            *self.args,
        ]  # fmt: skip
        self.process = spawn(f"redis-{self.port}", argv, log_dir=self.log_dir)
        client = redis.Redis.from_url(self.url, socket_timeout=1)
        try:
            wait_until(client.ping, "redis-server", timeout, self.process)
        finally:
            client.close()
        return self

    def _tls_args(self) -> list[str]:
        if self.tls_dir is None:
            return []
        return [
            "--port", "0",  # TLS only: nothing in clear
            "--tls-port", str(self.port),
            "--tls-cert-file", str(self.tls_dir / "redis.crt"),
            "--tls-key-file", str(self.tls_dir / "redis.key"),
            "--tls-ca-cert-file", str(self.tls_dir / "ca.crt"),
            "--tls-auth-clients", "no",
        ]  # fmt: skip

    def stop(self) -> None:
        """Shut it down cleanly."""
        if self.process is not None:
            self.process.stop()

    def kill(self) -> None:
        """SIGKILL it: no chance to write anything more to disk."""
        if self.process is not None:
            self.process.kill()

    def cleanup(self) -> None:
        """Stop it and delete its data directory."""
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)


def start_simulator(
    log_dir: Path, args: Sequence[str] = (), *, name: str = "simulator", timeout: float = 10.0
) -> tuple[Process, str]:
    """``python -m simulator`` on a free port; returns the process and its base URL."""
    process = spawn(
        name,
        [sys.executable, "-m", "simulator", "--host", "127.0.0.1", "--port", "0", *args],
        log_dir=log_dir,
    )
    found: list[str] = []

    def listening() -> bool:
        match = _LISTENING.search(process.log_path.read_bytes())
        if match:
            found.append(match.group(1).decode())
        return bool(match)

    wait_until(listening, "simulator", timeout, process)
    return process, found[0]


def worker_env(
    redis_url: str, broker_url: str, name: str, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of a worker against a local stack (the simulator's demo login)."""
    return {
        "REDIS_URL": redis_url,
        "PROJECTX_BASE_URL": broker_url,
        "PROJECTX_USERNAME": "demo",
        "PROJECTX_API_KEY": "demo-key",
        "WORKER_NAME": name,
        # Local simulators run without the gateway's rate limit, so the fleet needs no budget.
        "PROJECTX_RATE_LIMIT": "off",
        **(extra or {}),
    }


def start_worker(
    log_dir: Path,
    env: Mapping[str, str],
    *,
    timeout: float = 15.0,
    argv: Sequence[str] | None = None,
) -> Process:
    """A worker process (``python -m worker run`` unless ``argv`` says otherwise), returned
    once its own heartbeat is in Redis, which it writes when its consumer has started (a
    restart under the same name may find its predecessor's heartbeat still there)."""
    name = env["WORKER_NAME"]
    process = spawn(name, argv or [sys.executable, "-m", "worker", "run"], env=env, log_dir=log_dir)
    client = redis.Redis.from_url(env["REDIS_URL"], socket_timeout=1)
    key = f"{env.get('ORDER_KEY_PREFIX', 'ow')}:worker:{name}"

    def beating() -> bool:
        beat = cast(bytes | None, client.get(key))
        return beat is not None and json.loads(beat).get("pid") == process.popen.pid

    try:
        wait_until(beating, f"worker {name}", timeout, process)
    finally:
        client.close()
    return process
