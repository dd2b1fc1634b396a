"""Stream mechanics: move intents from the stream to the executor, and nothing else.

- Read new entries through the consumer group (XREADGROUP with BLOCK), at most as many as
  there is room for under the in-flight bound, each run as its own task.
- Take over entries other workers left pending (``recovery.py``).
- Keep this worker's running entries alive: leases renewed, idle times reset, so a slow
  but live worker is not mistaken for a dead one; and a heartbeat (``heartbeat.py``).
- Stop within a bound and hand back what is left: on SIGTERM, stop reading, finish what
  is in flight and read ahead within the drain time, and offer the rest to the others.
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
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Final

import redis.exceptions
from redis.asyncio import Redis

from ow_core.aio import cancel_and_wait
from ow_core.backoff import Backoff
from ow_core.connect import RedisTarget
from ow_core.fastlane import FastLane
from ow_core.keys import Keys
from ow_core.redis_down import REDIS_ERRORS, is_redis_down
from worker.entries import Entry
from worker.executor import Executor
from worker.heartbeat import Beat
from worker.ledger import Ledger, Running
from worker.observe import Observer
from worker.ops.health import Health
from worker.recovery import Recovery

log = logging.getLogger("worker.consumer")

# How long stopping may spend handing entries back once the drain is over: with Redis
# gone it fails fast, with Redis stalled it gives up (the entries are reclaimed anyway).
_HAND_BACK_TIMEOUT_S: Final = 2.0


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
        redis_target: RedisTarget,
    ) -> None:
        self._redis = redis
        self._redis_target = redis_target
        self._observer = observer or Observer()
        self._keys = keys
        self._executor = executor
        self._ledger = ledger
        self.name = name
        self._max_in_flight = max_in_flight
        self._block_ms = block_ms
        self._keepalive_interval = lease_ms / 3000
        self._beat = Beat(
            redis, keys.worker(name), name, ttl_ms=max(lease_ms * 2, 3000), health=health
        )
        self._recovery = Recovery(
            redis,
            keys,
            self,
            name=name,
            claim_idle_ms=claim_idle_ms,
            claim_interval_ms=claim_interval_ms,
            max_deliveries=max_deliveries,
            observer=self._observer,
        )
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self._running: dict[str, Running] = {}
        self._room = asyncio.Event()
        # Entries read ahead, waiting for a slot: a slot that frees starts the next one at
        # once instead of after another read from Redis. They are pending on this worker
        # and kept alive with the running ones, so a crash loses none of them.
        self._ready: collections.deque[Entry] = collections.deque()
        self._read_ahead = max(1, max_in_flight // 4)
        self._loops: list[asyncio.Task[None]] = []
        self._abandoning = False
        self._started = False
        self._keeper: asyncio.Task[None] | None = None
        self.handled = 0
        """Entries handed to the executor so far."""

    # --- life cycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Create the group if needed, claim the worker name, start the loops."""
        await self._ensure_group()
        await self._beat.claim()
        self._loops = [
            self._spawn(self._read_loop(), "read"),
            self._spawn(self._recovery.run(self._ensure_group), "reclaim"),
        ]
        self._keeper = self._spawn(self._keepalive_loop(), "keepalive")
        self._started = True
        log.info(
            "consumer %s reading %s as group %s", self.name, self._keys.intents, self._keys.group
        )

    async def stop(self, drain_timeout: float) -> None:
        """Stop taking entries, finish what it holds (bounded), hand back the rest.

        Entries in flight and entries read ahead are finished while ``drain_timeout``
        lasts (a slot that frees starts the next read-ahead entry). Whatever is left is
        cancelled and handed back to the other workers, which take it at once (a place
        some worker started is looked up by its tag before anything is sent).
        """
        if not self._started:
            return  # stopped before it began (start-up failed or was cut short)
        await cancel_and_wait(self._loops)
        await self._drain(drain_timeout)
        self._abandoning = True
        left = len(self._inflight) + len(self._ready)
        self._ready.clear()
        await cancel_and_wait(list(self._inflight.values()))
        if self._keeper is not None:
            await cancel_and_wait([self._keeper])
        try:
            async with asyncio.timeout(_HAND_BACK_TIMEOUT_S):
                handed = await self._recovery.hand_back()
                await self._beat.end()
            if handed:
                log.info("handed %d entries back to the other workers", handed)
        except (*REDIS_ERRORS, TimeoutError) as error:
            if not isinstance(error, TimeoutError) and not is_redis_down(error):
                raise
            # Redis is away: what is left stays pending and is reclaimed once idle, and
            # the heartbeat expires by itself.
            log.warning("could not hand %d entries back (%s); they will be reclaimed", left, error)
        log.info("consumer %s stopped after %d intents", self.name, self.handled)

    async def _drain(self, drain_timeout: float) -> None:
        if not (self._inflight or self._ready):
            return
        log.info(
            "draining %d intents in flight and %d read ahead (up to %.1f s)",
            len(self._inflight),
            len(self._ready),
            drain_timeout,
        )
        deadline = time.monotonic() + drain_timeout
        while self._inflight and (left := deadline - time.monotonic()) > 0:
            # Each finished task starts a read-ahead entry in its slot (``_dispatch``).
            await asyncio.wait(
                list(self._inflight.values()), timeout=left, return_when=asyncio.FIRST_COMPLETED
            )

    @property
    def in_flight(self) -> int:
        """Entries being executed now."""
        return len(self._inflight)

    def is_running(self, entry_id: str) -> bool:
        """Whether this worker executes the entry now."""
        return entry_id in self._inflight

    def track(self, entry_id: str, request_id: str) -> None:
        """The executor took a request's lease: renew it with the entry from now on."""
        self._running[entry_id] = Running(
            entry_id, self._keys.lease(request_id), self._ledger.owner(entry_id)
        )

    # --- reading ----------------------------------------------------------------------

    async def _read_loop(self) -> None:
        backoff = Backoff(0.05, 2.0)
        # The blocking read has a pipelined connection of its own (see ow_core.fastlane).
        lane = self._redis_target.lane(timeout=self._block_ms / 1000 + 5)
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
                    self.admit(Entry(entry_id.decode(), fields))

    def admit(self, entry: Entry) -> None:
        """Run an entry now if the in-flight bound allows, else queue it for a slot."""
        if len(self._inflight) < self._max_in_flight:
            self.dispatch(entry)
        else:
            self._ready.append(entry)
            self._running[entry.entry_id] = Running(entry.entry_id, "", "")

    def dispatch(self, entry: Entry, *, give_up: str | None = None) -> asyncio.Task[None] | None:
        """Run an entry (or give it up, dead-lettering it) as a task of its own."""
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
            if self._ready and not self._abandoning:
                self.dispatch(self._ready.popleft())
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

    # --- keeping alive ----------------------------------------------------------------

    async def _keepalive_loop(self) -> None:
        while True:
            await asyncio.sleep(self._keepalive_interval)
            try:
                lost = await self._ledger.keepalive(list(self._running.values()))
                await self._beat.renew(len(self._inflight), self.handled)
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


def _report_crash(task: asyncio.Task[None]) -> None:
    """A worker that cannot read is no worker: stop the process so its supervisor restarts it
    (SIGTERM runs the normal shutdown, which drains what is in flight)."""
    if not task.cancelled() and task.exception() is not None:
        log.critical(
            "consumer loop %s crashed; stopping", task.get_name(), exc_info=task.exception()
        )
        os.kill(os.getpid(), signal.SIGTERM)
