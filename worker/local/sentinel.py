"""A local Sentinel group: one primary, one replica and three sentinels, on free ports.

For the tests and for trying a failover by hand: real ``redis-server`` processes on
127.0.0.1 (the sentinels are ``redis-server --sentinel``), with short failure-detection
times so a killed primary is replaced within a few seconds.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, cast

import redis

from ow_core.connect import Address, RedisTarget
from worker.local.stack import Process, RedisServer, free_port, spawn, wait_until

MASTER: Final = "ow-primary"
QUORUM: Final = 2


@dataclass
class SentinelGroup:
    """A primary, its replica and three sentinels monitoring them as ``MASTER``."""

    log_dir: Path
    down_after_ms: int = 1000
    failover_timeout_ms: int = 5000
    primary: RedisServer = field(init=False)
    replica: RedisServer = field(init=False)
    sentinel_ports: list[int] = field(default_factory=lambda: [free_port() for _ in range(3)])
    sentinels: list[Process] = field(default_factory=list)
    data_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ow-sentinel-")))
    failover_s: float = 0.0
    """How long the last ``wait_failover`` waited for the sentinels to agree."""

    def start(self, timeout: float = 30.0) -> SentinelGroup:
        """Start every process; return once each sentinel sees the replica and the others."""
        self.primary = RedisServer(self.log_dir).start()
        self.replica = RedisServer(
            self.log_dir, args=["--replicaof", "127.0.0.1", str(self.primary.port)]
        ).start()
        binary = shutil.which("redis-server")
        assert binary is not None  # RedisServer.start found it
        for port in self.sentinel_ports:
            config = self.data_dir / f"sentinel-{port}.conf"
            # Sentinel rewrites its configuration file as it learns: it must be its own.
            config.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.data_dir}\n"
                f"sentinel monitor {MASTER} 127.0.0.1 {self.primary.port} {QUORUM}\n"
                f"sentinel down-after-milliseconds {MASTER} {self.down_after_ms}\n"
                f"sentinel failover-timeout {MASTER} {self.failover_timeout_ms}\n"
                f"sentinel parallel-syncs {MASTER} 1\n"
            )
            self.sentinels.append(
                spawn(f"sentinel-{port}", [binary, str(config), "--sentinel"], log_dir=self.log_dir)
            )
        wait_until(self._ready, "sentinel group", timeout)
        return self

    @property
    def addresses(self) -> tuple[Address, ...]:
        """The sentinels' addresses."""
        return tuple(("127.0.0.1", port) for port in self.sentinel_ports)

    @property
    def env(self) -> dict[str, str]:
        """A worker's variables for this group."""
        return {
            "REDIS_SENTINELS": ",".join(f"{h}:{p}" for h, p in self.addresses),
            "REDIS_SENTINEL_MASTER": MASTER,
        }

    def target(self, url: str = "redis://127.0.0.1/0") -> RedisTarget:
        """A target finding the primary through this group (``url`` for the rest)."""
        return RedisTarget(url, self.addresses, MASTER)

    def master_state(self, port: int) -> dict[str, Any]:
        """What the sentinel on ``port`` says of the primary (``SENTINEL MASTER``)."""
        client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1, decode_responses=True)
        try:
            # redis-py leaves its Sentinel commands unannotated.
            ask = cast(Callable[[str, str], dict[str, Any]], client.execute_command)
            return ask("SENTINEL MASTER", MASTER)
        finally:
            client.close()

    def primary_port(self) -> int:
        """The port of the primary the first sentinel names now."""
        return int(self.master_state(self.sentinel_ports[0])["port"])

    def wait_failover(self, old_port: int, timeout: float = 30.0) -> int:
        """Wait until every sentinel names a primary other than ``old_port``; its port."""

        def moved() -> bool:
            ports = {int(self.master_state(p)["port"]) for p in self.sentinel_ports}
            return len(ports) == 1 and old_port not in ports

        started = time.monotonic()
        wait_until(moved, "failover", timeout)
        self.failover_s = time.monotonic() - started
        return self.primary_port()

    def _ready(self) -> bool:
        for port in self.sentinel_ports:
            state = self.master_state(port)
            if int(state["num-slaves"]) < 1 or int(state["num-other-sentinels"]) < 2:
                return False
        replica = redis.Redis(host="127.0.0.1", port=self.replica.port, socket_timeout=1)
        try:
            info = cast(dict[str, Any], replica.info("replication"))
        finally:
            replica.close()
        return bool(info.get("master_link_status") == "up")

    def stop(self) -> None:
        """Stop every process and delete the group's files."""
        for process in self.sentinels:
            process.kill()
        for server in (self.primary, self.replica):
            server.cleanup()
        shutil.rmtree(self.data_dir, ignore_errors=True)
