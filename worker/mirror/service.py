"""The hubs' listener as a process of its own, beside each worker: the user hub (orders,
positions, trades) and the market hub (the market-data feed), each under a lease of its own.

Each ``order-worker run`` starts one (``order-worker listen``) and stops it when it stops;
the listeners of a fleet compete for the leader leases, so one of them holds each hub
connection. Apart from its worker the listener's pushes, mirror writes and reconciliations
never share an event loop with the hot path: a burst of fills does not delay an order's
answer. It dies with its worker (SIGKILL included, by the kernel's parent-death signal),
so a lost host loses both, and another worker's listener takes over within the lease's
bound. ``order-worker listen`` can also run alone, for a fleet whose workers listen to
nothing (``PROJECTX_USER_HUB=off`` and ``PROJECTX_MARKET_HUB=off``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys
from typing import Final

from redis.asyncio import Redis

from ow_core.aio import cancel_and_wait
from worker.broker.client import GatewayClient
from worker.broker.transport import make_session
from worker.fleet.client import fleet_broker
from worker.hubs.leader import Leadership, Lease
from worker.market.feed import MarketHub
from worker.market.history import Historian
from worker.mirror.listener import UserHub
from worker.observe import Observers
from worker.ops.logs import LogObserver
from worker.settings import Settings

log = logging.getLogger("worker.mirror")

_PR_SET_PDEATHSIG: Final = 1
_STOP_S: Final = 3.0
_PARENT_CHECK_S: Final = 1.0


def leadership(settings: Settings, broker: GatewayClient, redis: Redis) -> Leadership:
    """The user hub's listener, run while this process holds the fleet's lease."""
    risk = settings.risk
    watches_loss = any(
        limits.daily_loss_limit is not None for limits in (risk.default, *risk.accounts.values())
    )
    hub = UserHub(
        broker,
        redis,
        settings.keys,
        hub_url=f"{settings.hubs_url}/user",
        market_url=f"{settings.hubs_url}/market",
        accounts=settings.accounts,
        ping_s=settings.hub_ping_s,
        retention_s=settings.events_retention_s,
        lane=settings.redis.lane(),
        loss_limit_of=(lambda a: risk.limits(a).daily_loss_limit) if watches_loss else None,
        flatten_on_loss_limit=settings.flatten_on_loss_limit,
        holder=settings.worker_name,
    )
    lease = Lease(
        redis, settings.keys.leader("user"), settings.worker_name, ttl_ms=settings.leader_ttl_ms
    )
    return Leadership(lease, hub.run, what="user hub", try_s=settings.leader_ttl_ms / 3000)


def market_leadership(settings: Settings, broker: GatewayClient, redis: Redis) -> Leadership:
    """The market-data feed, run while this process holds the market hub's own lease (so
    the two hubs may be held by two workers, and one hub's trouble is not the other's)."""
    hub = MarketHub(
        broker,
        redis,
        settings.keys,
        hub_url=f"{settings.hubs_url}/market",
        lane=settings.redis.lane(),
        quotes_maxlen=settings.market_quotes_maxlen,
        trades_maxlen=settings.market_trades_maxlen,
        bars_maxlen=settings.market_bars_maxlen,
        grace_ms=settings.market_bar_grace_ms,
        ping_s=settings.hub_ping_s,
    )
    lease = Lease(
        redis, settings.keys.leader("market"), settings.worker_name, ttl_ms=settings.leader_ttl_ms
    )
    return Leadership(lease, hub.run, what="market hub", try_s=settings.leader_ttl_ms / 3000)


async def listen(settings: Settings, *, parent: int | None = None) -> None:
    """Compete for the lease and listen while holding it, until SIGTERM or SIGINT (or,
    with ``parent``, until that process is gone)."""
    redis = settings.redis.client(socket_timeout=10, socket_connect_timeout=2)
    session = make_session(connections=20)
    broker = fleet_broker(settings, session, redis, Observers([LogObserver()]))
    leaders: list[Leadership] = []
    if settings.user_hub:
        leaders.append(leadership(settings, broker, redis))
    if settings.market_hub:
        leaders.append(market_leadership(settings, broker, redis))
    jobs = [asyncio.create_task(leader.run(), name="hub-leadership") for leader in leaders]
    if settings.market_hub:
        # Every listener answers history requests, leader or not.
        historian = Historian(broker, redis, settings.keys, consumer=settings.worker_name)
        jobs.append(asyncio.create_task(historian.run(), name="market-history"))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    watch = asyncio.create_task(_outlive(parent, stop), name="parent-watch")
    try:
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait([*jobs, stopped], return_when="FIRST_COMPLETED")
        for job in jobs:
            if job.done():
                job.result()  # an error of a leadership itself: surface it
    finally:
        await cancel_and_wait([*jobs, watch])
        for leader in leaders:
            await leader.stop()
        await session.close()
        await redis.aclose()


async def _outlive(parent: int | None, stop: asyncio.Event) -> None:
    """Where the parent-death signal is not available: stop when the worker is gone."""
    if parent is None:
        return
    while True:
        await asyncio.sleep(_PARENT_CHECK_S)
        if os.getppid() != parent:
            break
    log.warning("user hub listener: the worker is gone; stopping")
    stop.set()


def _die_with_parent() -> None:
    """In the child, before exec: the kernel kills it when the worker dies (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class ListenerProcess:
    """The worker's own listener child (``python -m worker listen``)."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process

    @classmethod
    async def start(cls) -> ListenerProcess:
        """Start it with the worker's environment; its log lines join the worker's."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "worker",
            "listen",
            "--parent",
            str(os.getpid()),
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        log.info("user hub listener started (pid %d)", process.pid)
        return cls(process)

    async def stop(self) -> None:
        """SIGTERM, so it gives the lease back; SIGKILL if it does not go in time."""
        if self._process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self._process.terminate()
        try:
            await asyncio.wait_for(self._process.wait(), _STOP_S)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self._process.kill()
            await self._process.wait()
