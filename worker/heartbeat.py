"""A live worker's heartbeat: the key ``status`` and ``health`` read, and the name it holds.

Each worker renews ``<prefix>:worker:<name>`` with a ``Heartbeat`` while it runs. Two live
workers cannot share a name (their consumer's pending entries would be one list); a
restart under the same name after a crash takes the old one over.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable

import msgspec
from redis.asyncio import Redis

from worker.ops.health import Health


class Heartbeat(msgspec.Struct, frozen=True, kw_only=True):
    """What a live worker says of itself under its heartbeat key."""

    name: str
    host: str
    pid: int
    started_at: int
    at: int
    in_flight: int
    handled: int
    healthy: bool = True
    problem: str = ""


class WorkerNameInUse(RuntimeError):
    """Another live worker already uses this consumer name."""


class Beat:
    """One worker's heartbeat, written by its consumer."""

    def __init__(
        self,
        redis: Redis,
        key: str,
        name: str,
        *,
        ttl_ms: int,
        health: Callable[[], Health] | None = None,
    ) -> None:
        self._redis = redis
        self._key = key
        self._name = name
        self._ttl_ms = ttl_ms
        self._health = health
        self._started_at = int(time.time() * 1000)

    def encode(self, in_flight: int, handled: int) -> bytes:
        """The heartbeat as of now."""
        report = self._health() if self._health is not None else None
        return msgspec.json.encode(
            Heartbeat(
                healthy=report is None or report.healthy,
                problem="" if report is None else report.reason,
                name=self._name,
                host=socket.gethostname(),
                pid=os.getpid(),
                started_at=self._started_at,
                at=int(time.time() * 1000),
                in_flight=in_flight,
                handled=handled,
            )
        )

    async def claim(self) -> None:
        """Take this worker's name, unless a live worker has it.

        A restart under the same name after a crash finds the old heartbeat: taken over at
        once when it was this host's and its process is gone, else after it expires.
        """
        deadline = time.monotonic() + self._ttl_ms / 1000 + 1
        while True:
            if await self._redis.set(self._key, self.encode(0, 0), nx=True, px=self._ttl_ms):
                return
            stale = await self._redis.get(self._key)
            if stale is not None and is_dead_local(stale):
                await self._redis.set(self._key, self.encode(0, 0), px=self._ttl_ms)
                return
            if time.monotonic() > deadline:
                raise WorkerNameInUse(
                    f"worker name {self._name!r} is in use by a live worker; set WORKER_NAME "
                    "to a name of its own"
                )
            await asyncio.sleep(0.2)

    async def renew(self, in_flight: int, handled: int) -> None:
        """Write the heartbeat again (it expires if the worker stops renewing it)."""
        await self._redis.set(self._key, self.encode(in_flight, handled), px=self._ttl_ms)

    async def end(self) -> None:
        """The worker stops: its heartbeat goes."""
        await self._redis.delete(self._key)


def is_dead_local(data: bytes) -> bool:
    """Whether a heartbeat was written by a process of this host that no longer runs."""
    try:
        beat = msgspec.json.decode(data, type=Heartbeat)
    except msgspec.DecodeError:
        return False
    if beat.host != socket.gethostname():
        return False
    if beat.pid == os.getpid():
        return True  # an earlier incarnation of this process (a container restarts as pid 1)
    try:
        os.kill(beat.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
