"""Slow upkeep of the intents stream, run on arq's cron by one worker of the fleet at a time.

Trimming never loses work: the stream is cut with MINID at or below the oldest entry that
is still pending or not yet delivered to every group, never with MAXLEN (Redis drops a
pending entry's body when MAXLEN passes it, and that order is silently lost).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from ow_core.keys import Keys

log = logging.getLogger("worker.housekeeping")


def _after(entry_id: str) -> str:
    """The smallest stream ID greater than ``entry_id``."""
    ms, _, seq = entry_id.partition("-")
    return f"{ms}-{int(seq or 0) + 1}"


def _older(a: str, b: str) -> str:
    def order(entry_id: str) -> tuple[int, int]:
        ms, _, seq = entry_id.partition("-")
        return int(ms), int(seq or 0)

    return a if order(a) <= order(b) else b


async def trim_floor(redis: Redis, keys: Keys, retention_s: int) -> str | None:
    """The MINID below which every entry is acknowledged by every group and older than
    the retention; None when nothing may be trimmed yet."""
    try:
        groups: list[dict[str, Any]] = await redis.xinfo_groups(keys.intents)
    except ResponseError:
        return None  # no stream yet
    if not groups:
        return None  # without a group nothing was ever delivered
    floor = f"{int((time.time() - retention_s) * 1000)}-0"
    for group in groups:
        name = group["name"]
        last_delivered = group["last-delivered-id"]
        last = last_delivered.decode() if isinstance(last_delivered, bytes) else str(last_delivered)
        floor = _older(floor, _after(last))
        summary = await redis.xpending(keys.intents, name)
        if summary["pending"]:
            oldest = summary["min"]
            floor = _older(floor, oldest.decode() if isinstance(oldest, bytes) else str(oldest))
    return floor


async def trim_intents(redis: Redis, keys: Keys, retention_s: int) -> int:
    """Trim acknowledged history from the intents stream; returns entries removed."""
    floor = await trim_floor(redis, keys, retention_s)
    if floor is None:
        return 0
    # Exact MINID: an approximate one could only keep more, but exact keeps the figure honest.
    removed: int = await redis.xtrim(keys.intents, minid=floor, approximate=False)
    if removed:
        log.info("trimmed %d acknowledged intents below %s", removed, floor)
    return removed


async def forget_idle_consumers(redis: Redis, keys: Keys, idle_ms: int = 3_600_000) -> int:
    """Remove group consumers with nothing pending that were idle for ``idle_ms``.

    Each restart under a fresh name (the default name has the pid in it) leaves one behind.
    """
    removed = 0
    try:
        consumers: list[dict[str, Any]] = await redis.xinfo_consumers(keys.intents, keys.group)
    except ResponseError:
        return 0
    for consumer in consumers:
        if consumer["pending"] == 0 and consumer["idle"] >= idle_ms:
            await redis.xgroup_delconsumer(keys.intents, keys.group, consumer["name"])
            removed += 1
    return removed
