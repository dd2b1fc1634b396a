"""``order-worker status``: what the fleet is doing, read from Redis.

Everything here is read-only: the intents stream and its consumer group, the dead-letter
stream, the workers' heartbeats, the kill switch and the rate-budget pause. ``gather``
takes a snapshot, ``render`` draws it as a table, ``command`` is what the CLI runs (once,
or again every few seconds with ``--watch``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import socket
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final, TextIO

import msgspec
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from ow_core.keys import Keys
from ow_core.redis_down import REDIS_ERRORS, is_redis_down
from ow_core.urls import mask_url
from worker.fleet import halt
from worker.fleet.halt import HaltRecord, Halts
from worker.heartbeat import Heartbeat
from worker.ops.args import redis_options, seconds, with_redis

# Per-entry idle times come from XPENDING's extended form, which lists entries one by one;
# a backlog of pending entries is a problem in itself, so looking at the first ones is
# enough to show which consumers hold stale work.
_PENDING_SAMPLE: Final = 1000
_CLEAR_SCREEN: Final = "\x1b[H\x1b[2J"


class ConsumerState(msgspec.Struct, frozen=True, kw_only=True):
    """One consumer of the workers' group."""

    name: str
    pending: int
    """Entries delivered to it and not acknowledged yet."""
    idle_ms: int
    """Since it last read or claimed anything."""
    oldest_pending_idle_ms: int | None
    """The longest any of its pending entries has gone untouched (a live worker keeps
    resetting this for the entries it runs; ``None`` without pending entries)."""
    alive: bool
    """A worker of this name has a live heartbeat."""


class IntentsState(msgspec.Struct, frozen=True, kw_only=True):
    """The intents stream and the workers' consumer group on it."""

    stream: str
    length: int
    group: str
    group_exists: bool
    lag: int | None
    """Entries not yet delivered to any worker (``None`` when Redis cannot tell, e.g.
    right after entries were deleted)."""
    entries_read: int | None
    last_delivered_id: str | None
    pending: int
    consumers: list[ConsumerState]


class DeadLettersState(msgspec.Struct, frozen=True, kw_only=True):
    """The dead-letter stream."""

    stream: str
    length: int


class WorkerState(msgspec.Struct, frozen=True, kw_only=True):
    """A worker with a live heartbeat."""

    name: str
    host: str
    pid: int
    started_at: int
    heartbeat_age_ms: int
    in_flight: int
    handled: int
    healthy: bool
    """The worker's own verdict: false once it lost Redis or the broker for too long."""
    problem: str


class Status(msgspec.Struct, frozen=True, kw_only=True):
    """One snapshot of the fleet (the ``--json`` output)."""

    at: int
    prefix: str
    intents: IntentsState
    dead_letters: DeadLettersState
    workers: list[WorkerState]
    halt: Halts
    budget_pause_ms: int | None
    """Time left of a fleet-wide pause after a 429 from the broker (the longest, of any
    login's windows); ``None``: not paused."""


async def gather(redis: Redis, keys: Keys) -> Status:
    """A snapshot of the fleet's state in Redis."""
    now = int(time.time() * 1000)
    workers = await _workers(redis, keys, now)
    alive = {worker.name for worker in workers}
    return Status(
        at=now,
        prefix=keys.prefix,
        intents=await _intents(redis, keys, alive),
        dead_letters=DeadLettersState(
            stream=keys.dead_letters, length=await redis.xlen(keys.dead_letters)
        ),
        workers=workers,
        halt=await halt.read(redis, keys),
        budget_pause_ms=await _budget_pause(redis, keys),
    )


async def command(
    redis: Redis,
    keys: Keys,
    *,
    where: str,
    as_json: bool = False,
    watch: float | None = None,
    out: TextIO | None = None,
) -> int:
    """Print the status once, or every ``watch`` seconds until interrupted.

    Once, an unreachable Redis is an error for the caller; while watching (from the first
    snapshot on), an outage is shown and the watch goes on, so an operator sees Redis
    come back.
    """
    out = out if out is not None else sys.stdout
    clear = watch is not None and not as_json and out.isatty()
    stop = asyncio.Event()
    if watch is not None:
        # Ctrl-C ends a watch between refreshes. Left to asyncio.run it would cancel a
        # Redis command mid-flight, and redis-py on Python 3.11 can absorb that cancel.
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
    # Once, Redis must answer; while watching, an outage is shown and the watch goes on.
    snapshot: Status | str = (
        await gather(redis, keys) if watch is None else await _snapshot(redis, keys, where, watch)
    )
    while True:
        if clear:
            out.write(_CLEAR_SCREEN)
        if isinstance(snapshot, str):
            print(snapshot, file=out if not as_json else sys.stderr, flush=True)
        elif as_json:
            print(msgspec.json.encode(snapshot).decode(), file=out, flush=True)
        else:
            print(render(snapshot, where=where, watch=watch), file=out, flush=True)
        if watch is None:
            return 0
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), watch)
        if stop.is_set():
            return 0
        if not clear and not as_json:
            print(file=out)
        snapshot = await _snapshot(redis, keys, where, watch)


async def _snapshot(redis: Redis, keys: Keys, where: str, watch: float = 0.0) -> Status | str:
    """A snapshot, or a line saying Redis is unreachable (a watch shows it and goes on)."""
    try:
        return await gather(redis, keys)
    except REDIS_ERRORS as error:
        if not is_redis_down(error):
            raise
        now = utc_time(int(time.time() * 1000))
        return f"{now}  Redis unreachable at {where}: {error} (trying every {watch:g} s)"


def render(status: Status, *, where: str = "", watch: float | None = None) -> str:
    """The snapshot as a compact table for a terminal."""
    refresh = f"  (every {watch:g} s, Ctrl-C to stop)" if watch is not None else ""
    lines = [
        f"order-worker status  {where}  prefix {status.prefix}  {utc_time(status.at)}{refresh}",
        *_summary(status),
        "",
        *_worker_rows(status),
        *_consumer_rows(status),
    ]
    return "\n".join(lines)


def _summary(status: Status) -> list[str]:
    """The stream, the dead letters, the kill switch and the budget, a line or so each."""
    intents = status.intents
    if intents.group_exists:
        lag = "?" if intents.lag is None else str(intents.lag)
        lines = [
            f"intents   {intents.stream}: {intents.length} on stream, {lag} not yet delivered, "
            f"{intents.pending} pending (last delivered {intents.last_delivered_id})"
        ]
    else:
        lines = [
            f"intents   {intents.stream}: {intents.length} on stream, "
            f"no consumer group yet (no worker has started)"
        ]
    dead = status.dead_letters
    hint = "  (order-worker dead-letters list)" if dead.length else ""
    plural = "" if dead.length == 1 else "s"
    lines.append(f"dead      {dead.stream}: {dead.length} dead letter{plural}{hint}")
    lines += [f"{'halt' if i == 0 else '':<10}{text}" for i, text in enumerate(_halts(status))]
    pause = status.budget_pause_ms
    lines.append(
        "budget    "
        + ("not paused" if pause is None else f"PAUSED for {duration(pause)} (the broker sent 429)")
    )
    return lines


def _worker_rows(status: Status) -> list[str]:
    lines = [f"workers alive: {len(status.workers)}"]
    if status.workers:
        rows = [("name", "host", "pid", "up", "heartbeat", "in flight", "handled", "health")]
        rows += [
            (
                w.name,
                w.host,
                str(w.pid),
                duration(status.at - w.started_at),
                f"{duration(w.heartbeat_age_ms)} ago",
                str(w.in_flight),
                str(w.handled),
                "ok" if w.healthy else f"UNHEALTHY: {w.problem}",
            )
            for w in status.workers
        ]
        lines += table(rows, right=frozenset({2, 5, 6}))
    return lines


def _consumer_rows(status: Status) -> list[str]:
    intents = status.intents
    # A consumer that left nothing pending and has no heartbeat is a worker that stopped
    # cleanly (housekeeping forgets it after an hour): not worth a row.
    shown = [c for c in intents.consumers if c.alive or c.pending]
    hidden = len(intents.consumers) - len(shown)
    lines = []
    if shown:
        lines += ["", f"consumers of {intents.group}"]
        held = [("name", "pending", "idle", "oldest pending", "heartbeat")]
        held += [
            (
                c.name,
                str(c.pending),
                duration(c.idle_ms),
                "-" if c.oldest_pending_idle_ms is None else duration(c.oldest_pending_idle_ms),
                "alive" if c.alive else "NONE: its pending entries will be reclaimed",
            )
            for c in shown
        ]
        lines += table(held, right=frozenset({1}))
    if hidden:
        lines.append(f"({hidden} stopped consumers with nothing pending not shown)")
    return lines


# --- gathering ---------------------------------------------------------------------------


async def _workers(redis: Redis, keys: Keys, now: int) -> list[WorkerState]:
    names = sorted([key async for key in redis.scan_iter(match=keys.worker("*"), count=1000)])
    beats = await redis.mget(names) if names else []
    workers = []
    for data in beats:
        if data is None:
            continue  # expired between the scan and the read: that worker just stopped
        try:
            beat = msgspec.json.decode(data, type=Heartbeat)
        except msgspec.DecodeError:
            continue
        workers.append(
            WorkerState(
                name=beat.name,
                host=beat.host,
                pid=beat.pid,
                started_at=beat.started_at,
                heartbeat_age_ms=max(0, now - beat.at),
                in_flight=beat.in_flight,
                handled=beat.handled,
                healthy=beat.healthy,
                problem=beat.problem,
            )
        )
    return workers


async def _intents(redis: Redis, keys: Keys, alive: set[str]) -> IntentsState:
    length = await redis.xlen(keys.intents)
    try:
        groups: list[dict[str, Any]] = await redis.xinfo_groups(keys.intents)
    except ResponseError:
        groups = []  # no stream yet
    group = next((g for g in groups if _text(g["name"]) == keys.group), None)
    if group is None:
        return IntentsState(
            stream=keys.intents,
            length=length,
            group=keys.group,
            group_exists=False,
            lag=None,
            entries_read=None,
            last_delivered_id=None,
            pending=0,
            consumers=[],
        )
    consumers: list[dict[str, Any]] = await redis.xinfo_consumers(keys.intents, keys.group)
    oldest: dict[str, int] = {}
    if group["pending"]:
        for entry in await redis.xpending_range(
            keys.intents, keys.group, min="-", max="+", count=_PENDING_SAMPLE
        ):
            name = _text(entry["consumer"])
            oldest[name] = max(oldest.get(name, 0), int(entry["time_since_delivered"]))
    return IntentsState(
        stream=keys.intents,
        length=length,
        group=keys.group,
        group_exists=True,
        lag=group.get("lag"),
        entries_read=group.get("entries-read"),
        last_delivered_id=_text(group["last-delivered-id"]),
        pending=int(group["pending"]),
        consumers=[
            ConsumerState(
                name=_text(c["name"]),
                pending=int(c["pending"]),
                idle_ms=int(c["idle"]),
                oldest_pending_idle_ms=oldest.get(_text(c["name"])) if c["pending"] else None,
                alive=_text(c["name"]) in alive,
            )
            for c in consumers
        ],
    )


async def _budget_pause(redis: Redis, keys: Keys) -> int | None:
    pauses = [
        pause
        async for key in redis.scan_iter(match=keys.budget_pause("*", "*"), count=1000)
        if (pause := _pause(await redis.pttl(key))) is not None
    ]
    return max(pauses, default=None)


def _pause(pttl: int) -> int | None:
    # -2: no key. -1 (no expiry) is not written by the fleet but would pause it for ever.
    return None if pttl == -2 else max(pttl, 0)


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


# --- rendering ---------------------------------------------------------------------------


def _halts(status: Status) -> list[str]:
    halt = status.halt
    lines = []
    if halt.all_accounts is not None:
        lines.append(f"ALL ACCOUNTS HALTED: {_halt_reason(halt.all_accounts, status.at)}")
    lines += [
        f"account {account} HALTED: {_halt_reason(record, status.at)}"
        for account, record in halt.accounts.items()
    ]
    return lines or ["off (new orders allowed)"]


def _halt_reason(record: HaltRecord, now: int) -> str:
    since = f", {duration(now - record.at)} ago" if record.at else ""
    return f"{record.reason!r} by {record.by}{since}"


def table(rows: Sequence[Sequence[str]], right: frozenset[int] = frozenset()) -> list[str]:
    """Rows as aligned text columns, indented; columns in ``right`` are right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  "
        + "  ".join(
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ).rstrip()
        for row in rows
    ]


def duration(ms: int) -> str:
    """A duration for humans: 0.3s, 42s, 5m03s, 2h05m, 3d04h."""
    seconds = ms / 1000
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def utc_time(ms: int) -> str:
    """An epoch-milliseconds time as ``YYYY-MM-DD HH:MM:SS UTC``."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# --- the commands --------------------------------------------------------------------


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``status`` and ``health`` commands."""
    status = commands.add_parser(
        "status",
        help="show the fleet: stream, backlog, pending entries, workers, dead letters, halt",
        description="Show, from Redis: the intents stream's length, the consumer group's lag "
        "(entries not yet delivered) and pending entries (per consumer, with how long they "
        "have gone untouched), the dead letters, the workers alive (from their heartbeats: "
        "host, pid, uptime, last heartbeat, intents in flight and handled), the kill switch "
        "and a rate-budget pause. Read-only.",
    )
    redis_options(status)
    status.add_argument(
        "--json", action="store_true", help="print one JSON object (one per refresh with --watch)"
    )
    status.add_argument(
        "--watch",
        nargs="?",
        const=2.0,
        type=seconds,
        metavar="SECONDS",
        help="refresh every SECONDS (default 2) until Ctrl-C",
    )
    status.set_defaults(handler=_status)

    health = commands.add_parser(
        "health",
        help="exit 0 if this host's workers are alive and healthy (for HEALTHCHECK)",
        description="Check the workers' own health verdicts in their Redis heartbeats: alive "
        "(heartbeat not expired) and healthy (not cut off from Redis or the broker for "
        "HEALTH_MAX_OUTAGE_S). By default the workers of this host (one container, one "
        "worker); --name checks one worker, --all every worker. Exit 0 when at least one "
        "is checked and all are healthy, 1 otherwise, 2 when Redis cannot be reached.",
    )
    redis_options(health)
    which = health.add_mutually_exclusive_group()
    which.add_argument("--name", help="the worker (its WORKER_NAME) to check")
    which.add_argument("--all", action="store_true", help="every worker of the fleet")
    health.set_defaults(handler=_health)


def _status(args: argparse.Namespace) -> int:
    async def work(client: Redis, keys: Keys) -> int:
        return await command(
            client, keys, where=mask_url(args.redis_url), as_json=args.json, watch=args.watch
        )

    try:
        # A watch rides out an outage, even one it starts in.
        return with_redis(args, work, ping=args.watch is None)
    except KeyboardInterrupt:
        if args.watch is None:
            raise
        return 0  # Ctrl-C is how a watch ends


def _health(args: argparse.Namespace) -> int:
    async def work(client: Redis, keys: Keys) -> int:
        workers = (await gather(client, keys)).workers
        if args.name:
            checked = [w for w in workers if w.name == args.name]
        elif args.all:
            checked = workers
        else:
            checked = [w for w in workers if w.host == socket.gethostname()]
        for worker in checked:
            verdict = "healthy" if worker.healthy else f"UNHEALTHY: {worker.problem}"
            print(f"{worker.name}: {verdict}")
        if not checked:
            print("no live worker to check", file=sys.stderr)
        return 0 if checked and all(w.healthy for w in checked) else 1

    return with_redis(args, work)
