"""Stream mechanics: move intents from the stream to the executor, and nothing else.

- Read new entries through the consumer group (XREADGROUP with BLOCK), at most as many as
  there is room for under the in-flight bound, each run as its own task.
- Reclaim entries idle on any consumer (a dead worker's, or this one's before a restart)
  with XAUTOCLAIM; an entry delivered more than ``max_deliveries`` times is dead-lettered.
- Keep this worker's running entries alive: leases renewed, idle times reset, so a slow
  but live worker is not mistaken for a dead one; and a heartbeat key for ``status``.
- Survive Redis restarts and dropped connections: every loop backs off and resumes, and a
  group lost with a non-persistent Redis is created again.

Acknowledging is not done here: the executor's finish step XACKs an entry in the same
atomic step that stores its result and writes its reply.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import msgspec
import redis.exceptions
from redis.asyncio import Redis

from ow_core.aio import cancel_and_wait
from ow_core.backoff import Backoff
from ow_core.fastlane import FastLane
from ow_core.keys import Keys
from ow_core.redis_down import REDIS_ERRORS, is_redis_down
from worker.entries import Entry
from worker.executor import Executor
from worker.ledger import Ledger, Running
from worker.observe import Observer
from worker.ops.health import Health

log = logging.getLogger("worker.consumer")


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


class Consumer:
    """One worker process's consumer of the intents stream."""

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        executor: Executor,
        ledger: Ledger,
        *,
        name: str,
        max_in_flight: int = 64,
        block_ms: int = 2000,
        claim_idle_ms: int = 10_000,
        claim_interval_ms: int = 1000,
        max_deliveries: int = 5,
        lease_ms: int = 5000,
        observer: Observer | None = None,
        health: Callable[[], Health] | None = None,
        redis_url: str,
    ) -> None:
        self._redis = redis
        self._redis_url = redis_url
        self._health = health
        self._observer = observer or Observer()
        self._keys = keys
        self._executor = executor
        self._ledger = ledger
        self.name = name
        self._max_in_flight = max_in_flight
        self._block_ms = block_ms
        self._claim_idle_ms = claim_idle_ms
        self._claim_interval = claim_interval_ms / 1000
        self._max_deliveries = max_deliveries
        self._keepalive_interval = lease_ms / 3000
        self._heartbeat_ms = max(lease_ms * 2, 3000)
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self._running: dict[str, Running] = {}
        self._room = asyncio.Event()
        # Entries read ahead, waiting for a slot: a slot that frees starts the next one at
        # once instead of after another read from Redis. They are pending on this worker
        # and kept alive with the running ones, so a crash loses none of them.
        self._ready: collections.deque[Entry] = collections.deque()
        self._read_ahead = max(1, max_in_flight // 4)
        self._loops: list[asyncio.Task[None]] = []
        self._stopping = False
        self._keeper: asyncio.Task[None] | None = None
        self._started_at = int(time.time() * 1000)
        self.handled = 0
        """Entries handed to the executor so far."""

    # --- life cycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Create the group if needed, claim the worker name, start the loops."""
        await self._ensure_group()
        await self._claim_name()
        self._loops = [
            self._spawn(self._read_loop(), "read"),
            self._spawn(self._reclaim_loop(), "reclaim"),
        ]
        self._keeper = self._spawn(self._keepalive_loop(), "keepalive")
        log.info(
            "consumer %s reading %s as group %s", self.name, self._keys.intents, self._keys.group
        )

    async def stop(self, drain_timeout: float) -> None:
        """Stop taking entries, let those in flight finish (bounded), then stop.

        Entries still running after ``drain_timeout`` are cancelled and stay pending;
        another worker reclaims them, and looks each place up by its tag before sending.
        """
        self._stopping = True
        await cancel_and_wait(self._loops)
        if self._ready:
            # Read but never started: left pending, for a restart or another worker.
            log.info("%d entries read ahead stay pending for redelivery", len(self._ready))
            self._ready.clear()
        pending = list(self._inflight.values())
        if pending:
            log.info("draining %d intents in flight (up to %.1f s)", len(pending), drain_timeout)
            _, late = await asyncio.wait(pending, timeout=drain_timeout)
            await cancel_and_wait(late)
        if self._keeper is not None:
            await cancel_and_wait([self._keeper])
        try:
            await self._redis.delete(self._keys.worker(self.name))
        except REDIS_ERRORS as error:
            if not is_redis_down(error):
                raise
            # The heartbeat expires by itself.
        log.info("consumer %s stopped after %d intents", self.name, self.handled)

    async def _claim_name(self) -> None:
        """Take this worker's name, unless a live worker has it.

        A restart under the same name after a crash finds the old heartbeat: taken over at
        once when it was this host's and its process is gone, else after it expires.
        """
        key = self._keys.worker(self.name)
        deadline = time.monotonic() + self._heartbeat_ms / 1000 + 1
        while True:
            if await self._redis.set(key, self._heartbeat(), nx=True, px=self._heartbeat_ms):
                return
            stale = await self._redis.get(key)
            if stale is not None and _is_dead_local(stale):
                await self._redis.set(key, self._heartbeat(), px=self._heartbeat_ms)
                return
            if time.monotonic() > deadline:
                raise WorkerNameInUse(
                    f"worker name {self.name!r} is in use by a live worker; set WORKER_NAME "
                    "to a name of its own"
                )
            await asyncio.sleep(0.2)

    @property
    def in_flight(self) -> int:
        """Entries being executed now."""
        return len(self._inflight)

    def track(self, entry_id: str, request_id: str) -> None:
        """The executor took a request's lease: renew it with the entry from now on."""
        self._running[entry_id] = Running(
            entry_id, self._keys.lease(request_id), self._ledger.owner(entry_id)
        )

    # --- reading ----------------------------------------------------------------------

    async def _read_loop(self) -> None:
        backoff = Backoff(0.05, 2.0)
        # The blocking read has a pipelined connection of its own (see ow_core.fastlane).
        lane = FastLane(self._redis_url, timeout=self._block_ms / 1000 + 5)
        try:
            await self._read(lane, backoff)
        finally:
            await lane.close()

    async def _read(self, lane: FastLane, backoff: Backoff) -> None:
        command = ("XREADGROUP", "GROUP", self._keys.group, self.name)
        tail = ("BLOCK", self._block_ms, "STREAMS", self._keys.intents, ">")
        while True:
            room = self._max_in_flight + self._read_ahead - len(self._inflight) - len(self._ready)
            if room <= 0:
                self._room.clear()
                await self._room.wait()
                continue
            try:
                reply = await lane.execute(*command, "COUNT", room, *tail)
            except redis.exceptions.ResponseError as error:
                if "NOGROUP" not in str(error):
                    raise
                log.warning("consumer group missing (Redis restarted empty?); creating it")
                await self._ensure_group()
                continue
            except REDIS_ERRORS as error:
                if not is_redis_down(error):
                    raise
                self._observer.redis_trouble("read")
                delay = backoff.next()
                log.warning("reading intents failed (%s); retrying in %.2f s", error, delay)
                await asyncio.sleep(delay)
                continue
            backoff.reset()
            self._observer.redis_ok()
            for _stream, entries in reply or ():
                for entry_id, flat in entries:
                    # Fields come as a flat [name, value, ...] list.
                    fields = dict(zip(flat[::2], flat[1::2], strict=True)) if flat else {}
                    self._admit(Entry(entry_id.decode(), fields))

    def _admit(self, entry: Entry) -> None:
        """Run a fresh entry now if the in-flight bound allows, else queue it for a slot."""
        if len(self._inflight) < self._max_in_flight:
            self._dispatch(entry)
        else:
            self._ready.append(entry)
            self._running[entry.entry_id] = Running(entry.entry_id, "", "")

    def _dispatch(self, entry: Entry, *, give_up: str | None = None) -> asyncio.Task[None] | None:
        if entry.entry_id in self._inflight:
            return None
        work = (
            self._executor.give_up(entry, give_up)
            if give_up is not None
            else self._executor.handle(entry)
        )
        task = asyncio.create_task(self._guard(entry, work))
        self._inflight[entry.entry_id] = task
        self._running[entry.entry_id] = Running(entry.entry_id, "", "")
        self.handled += 1
        self._observer.in_flight(len(self._inflight))

        def done(_: asyncio.Task[None]) -> None:
            self._inflight.pop(entry.entry_id, None)
            self._running.pop(entry.entry_id, None)
            if self._ready and not self._stopping:
                self._dispatch(self._ready.popleft())
            self._observer.in_flight(len(self._inflight))
            self._room.set()

        task.add_done_callback(done)
        return task

    async def _guard(self, entry: Entry, work: Awaitable[None]) -> None:
        """Run one entry; whatever goes wrong, the worker keeps serving the others."""
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.warning(
                "entry %s left pending for redelivery: %s: %s",
                entry.entry_id,
                type(error).__name__,
                error,
                exc_info=not is_redis_down(error),
            )

    # --- reclaiming -------------------------------------------------------------------

    async def _reclaim_loop(self) -> None:
        """The recovery lane: reclaimed entries run here, one at a time.

        An entry that was delivered before may be what killed its last worker. Claiming
        and running such entries one by one means a poison entry takes down only itself
        (and the fresh entries running beside it, once), not everything recovered with it,
        and its delivery count alone climbs to the dead-letter limit.
        """
        cursor = "0-0"
        backoff = Backoff(self._claim_interval, 10.0)
        own = await self._own_pending()
        while True:
            try:
                while True:
                    if own:
                        entry = await self._claim_own(own.pop(0))
                    else:
                        entry, cursor = await self._claim_idle(cursor)
                    if entry is None:
                        if cursor == "0-0":
                            break
                        continue
                    await self._run_reclaimed(entry)
            except REDIS_ERRORS as error:
                if not is_redis_down(error):
                    raise
                self._observer.redis_trouble("reclaim")
                delay = backoff.next()
                log.warning("reclaiming failed (%s); retrying in %.2f s", error, delay)
                await asyncio.sleep(delay)
                continue
            except redis.exceptions.ResponseError as error:
                if "NOGROUP" not in str(error):
                    raise
                await self._ensure_group()
                cursor = "0-0"
            backoff.reset()
            await asyncio.sleep(self._claim_interval)

    async def _own_pending(self) -> list[bytes]:
        """What this worker name had pending when it last stopped.

        With a stable ``WORKER_NAME`` a restarted worker resumes these at once instead of
        waiting for them to go idle; the ledger's history makes sure a place it may already
        have sent is looked up before anything is sent again.
        """
        rows = await self._redis.xpending_range(
            self._keys.intents,
            self._keys.group,
            min="-",
            max="+",
            count=10_000,
            consumername=self.name,
        )
        if rows:
            log.info("resuming %d entries this worker had pending before it stopped", len(rows))
        return [row["message_id"] for row in rows]

    async def _claim_own(self, entry_id: bytes) -> Entry | None:
        claimed = await self._redis.xclaim(
            self._keys.intents, self._keys.group, self.name, min_idle_time=0, message_ids=[entry_id]
        )
        return await self._reclaimed(claimed)

    async def _claim_idle(self, cursor: str) -> tuple[Entry | None, str]:
        """One XAUTOCLAIM of one entry idle past the limit, on any consumer."""
        next_cursor, claimed, deleted = await self._redis.xautoclaim(
            self._keys.intents,
            self._keys.group,
            self.name,
            min_idle_time=self._claim_idle_ms,
            start_id=cursor,
            count=1,
        )
        for entry_id in deleted or ():
            # Only MAXLEN trimming or XDEL can do this, and this project never uses them on
            # the intents stream; if someone did, the intent is gone and cannot be answered.
            log.error("entry %s was deleted while pending; its intent is lost", entry_id)
        cursor = next_cursor.decode() if isinstance(next_cursor, bytes) else str(next_cursor)
        return await self._reclaimed(claimed), cursor

    async def _reclaimed(
        self, claimed: list[tuple[bytes, dict[bytes, bytes] | None]]
    ) -> Entry | None:
        if not claimed:
            return None
        raw_id, fields = claimed[0]
        entry_id = raw_id.decode()
        if entry_id in self._inflight:
            return None  # still running here (its keepalive was late); leave it be
        rows = await self._redis.xpending_range(
            self._keys.intents, self._keys.group, min=entry_id, max=entry_id, count=1
        )
        deliveries = int(rows[0]["times_delivered"]) if rows else 1
        log.info("reclaimed %s (delivery %d)", entry_id, deliveries)
        self._observer.reclaimed(deliveries)
        return Entry(entry_id, fields or {}, deliveries)

    async def _run_reclaimed(self, entry: Entry) -> None:
        if entry.deliveries > self._max_deliveries:
            limit = self._max_deliveries
            reason = f"delivered {entry.deliveries} times without finishing (limit {limit})"
            task = self._dispatch(entry, give_up=reason)
        else:
            task = self._dispatch(entry)
        if task is not None:
            await asyncio.wait([task])

    # --- keeping alive ----------------------------------------------------------------

    async def _keepalive_loop(self) -> None:
        while True:
            await asyncio.sleep(self._keepalive_interval)
            try:
                lost = await self._ledger.keepalive(list(self._running.values()))
                await self._redis.set(
                    self._keys.worker(self.name), self._heartbeat(), px=self._heartbeat_ms
                )
            except REDIS_ERRORS as error:
                if not is_redis_down(error):
                    raise
                self._observer.redis_trouble("keepalive")
                log.warning("keepalive failed (%s)", error)
                continue
            for entry_id in lost:
                # Another worker took the request over (this one stalled past its lease).
                # The call in flight cannot be recalled; the ledger's finish step makes
                # sure only one result and one reply come of it.
                log.warning("lease of entry %s lost to another worker", entry_id)
                self._running.pop(entry_id, None)

    def _heartbeat(self) -> bytes:
        report = self._health() if self._health is not None else None
        return msgspec.json.encode(
            Heartbeat(
                healthy=report is None or report.healthy,
                problem="" if report is None else report.reason,
                name=self.name,
                host=socket.gethostname(),
                pid=os.getpid(),
                started_at=self._started_at,
                at=int(time.time() * 1000),
                in_flight=len(self._inflight),
                handled=self.handled,
            )
        )

    # --- plumbing ---------------------------------------------------------------------

    async def _ensure_group(self) -> None:
        """The group reads from the stream's start, so intents queued before any worker
        existed are picked up by the first one."""
        try:
            await self._redis.xgroup_create(
                self._keys.intents, self._keys.group, id="0", mkstream=True
            )
        except redis.exceptions.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    def _spawn(self, loop: Coroutine[Any, Any, None], what: str) -> asyncio.Task[None]:
        task = asyncio.create_task(loop, name=f"consumer-{what}")
        task.add_done_callback(_report_crash)
        return task


def _is_dead_local(data: bytes) -> bool:
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


def _report_crash(task: asyncio.Task[None]) -> None:
    """A worker that cannot read is no worker: stop the process so its supervisor restarts it
    (SIGTERM runs the normal shutdown, which drains what is in flight)."""
    if not task.cancelled() and task.exception() is not None:
        log.critical(
            "consumer loop %s crashed; stopping", task.get_name(), exc_info=task.exception()
        )
        os.kill(os.getpid(), signal.SIGTERM)
