"""Taking over work other workers left: nothing pending on the stream is left behind.

- At start, this worker name's own pending entries (a restart under a stable name).
- Entries a worker that stopped cleanly handed back (``hand_back``): taken at once and run
  side by side, since a clean stop says nothing bad of them.
- Entries idle past ``claim_idle_ms`` on any consumer (a dead or stalled worker): claimed
  and run one at a time, since such an entry may be what killed its last worker; an entry
  delivered more than ``max_deliveries`` times is given up (dead-lettered).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Final, Protocol, cast

import redis.exceptions
from redis.asyncio import Redis

from ow_core.backoff import Backoff
from ow_core.keys import Keys
from ow_core.redis_down import REDIS_ERRORS, is_redis_down
from worker.entries import Entry
from worker.observe import Observer

log = logging.getLogger("worker.consumer")

_HANDED_BACK_BATCH: Final = 64
_OWN_PENDING_MAX: Final = 10_000


class Dispatcher(Protocol):
    """What recovery needs of the consumer."""

    def is_running(self, entry_id: str) -> bool:
        """Whether this worker runs the entry now."""

    def admit(self, entry: Entry) -> None:
        """Run an entry beside the others, under the in-flight bound."""

    def dispatch(self, entry: Entry, *, give_up: str | None = None) -> asyncio.Task[None] | None:
        """Run an entry now (or give it up); its task."""


class Recovery:
    """One worker's lane for entries other workers (or its earlier self) left pending."""

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        dispatcher: Dispatcher,
        *,
        name: str,
        claim_idle_ms: int,
        claim_interval_ms: int,
        max_deliveries: int,
        observer: Observer,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._dispatcher = dispatcher
        self._name = name
        self._claim_idle_ms = claim_idle_ms
        self._claim_interval = claim_interval_ms / 1000
        self._max_deliveries = max_deliveries
        self._observer = observer

    async def run(self, ensure_group: Callable[[], Awaitable[None]]) -> None:
        """The recovery loop, until cancelled; rides out Redis outages."""
        cursor = "0-0"
        backoff = Backoff(self._claim_interval, 10.0)
        own = await self._own_pending()
        while True:
            try:
                await self._take_handed_back()
                while True:
                    if own:
                        entry = await self._claim(own.pop(0), min_idle_ms=0)
                    else:
                        entry, cursor = await self._claim_idle(cursor)
                    if entry is None:
                        if cursor == "0-0":
                            break
                        continue
                    await self._run_one(entry)
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
                await ensure_group()
                cursor = "0-0"
            backoff.reset()
            await asyncio.sleep(self._claim_interval)

    async def hand_back(self) -> int:
        """At a clean stop: offer every entry still pending on this worker (read ahead and
        never started, or cancelled past the drain time) to the others, at once.

        Each is marked idle past the reclaim limit, so any worker's next reclaim takes it,
        and listed as handed back, so workers of this version take it on their next tick
        and run it beside their others. Returns how many were handed back.
        """
        rows = await self._redis.xpending_range(
            self._keys.intents,
            self._keys.group,
            min="-",
            max="+",
            count=_OWN_PENDING_MAX,
            consumername=self._name,
        )
        ids = [row["message_id"] for row in rows]
        if not ids:
            return 0
        async with self._redis.pipeline(transaction=True) as pipe:
            # IDLE sets how long the entry has gone untouched; JUSTID leaves its delivery
            # count alone (it was not delivered again).
            pipe.xclaim(
                self._keys.intents,
                self._keys.group,
                self._name,
                min_idle_time=0,
                message_ids=ids,
                idle=self._claim_idle_ms + 1,
                justid=True,
            )
            pipe.sadd(self._keys.handed_back, *ids)
            pipe.expire(self._keys.handed_back, 3600)
            await pipe.execute()
        return len(ids)

    # --- claiming ---------------------------------------------------------------------

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
            count=_OWN_PENDING_MAX,
            consumername=self._name,
        )
        if rows:
            log.info("resuming %d entries this worker had pending before it stopped", len(rows))
        return [row["message_id"] for row in rows]

    async def _take_handed_back(self) -> None:
        """Entries a worker that stopped cleanly handed back: claimed (each by one worker:
        SPOP takes an ID out for one taker) and run beside the others."""
        while True:
            ids = await cast(
                Awaitable[list[bytes] | None],
                self._redis.spop(self._keys.handed_back, _HANDED_BACK_BATCH),
            )
            if not ids:
                return
            for entry_id in ids:
                entry = await self._claim(entry_id, min_idle_ms=0)
                if entry is None:
                    continue  # finished meanwhile, or already taken by an idle reclaim
                if entry.deliveries > self._max_deliveries:
                    await self._run_one(entry)
                else:
                    self._dispatcher.admit(entry)

    async def _claim(self, entry_id: bytes, *, min_idle_ms: int) -> Entry | None:
        claimed = await self._redis.xclaim(
            self._keys.intents,
            self._keys.group,
            self._name,
            min_idle_time=min_idle_ms,
            message_ids=[entry_id],
        )
        return await self._reclaimed(claimed)

    async def _claim_idle(self, cursor: str) -> tuple[Entry | None, str]:
        """One XAUTOCLAIM of one entry idle past the limit, on any consumer."""
        next_cursor, claimed, deleted = await self._redis.xautoclaim(
            self._keys.intents,
            self._keys.group,
            self._name,
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
        if self._dispatcher.is_running(entry_id):
            return None  # still running here (its keepalive was late); leave it be
        rows = await self._redis.xpending_range(
            self._keys.intents, self._keys.group, min=entry_id, max=entry_id, count=1
        )
        deliveries = int(rows[0]["times_delivered"]) if rows else 1
        log.info("reclaimed %s (delivery %d)", entry_id, deliveries)
        self._observer.reclaimed(deliveries)
        return Entry(entry_id, fields or {}, deliveries)

    async def _run_one(self, entry: Entry) -> None:
        """Run a reclaimed entry to its end before the next (see the module docstring)."""
        if entry.deliveries > self._max_deliveries:
            limit = self._max_deliveries
            reason = f"delivered {entry.deliveries} times without finishing (limit {limit})"
            task = self._dispatcher.dispatch(entry, give_up=reason)
        else:
            task = self._dispatcher.dispatch(entry)
        if task is not None:
            await asyncio.wait([task])
