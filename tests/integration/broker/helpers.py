"""Shared helpers of the broker client's contract tests."""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from worker.broker.client import GatewayClient
from worker.broker.transport import CallStats
from worker.local.pytest_plugin import BrokerSim

ACCOUNT = 12345678
OTHER_ACCOUNT = 12345679
UNKNOWN_ACCOUNT = 99999999
# Distinctive, so a leak is unmistakable when searched for in logs and exception texts.
API_KEY = "sk-contract-test-API-KEY-5f0e1d2c"
USERNAME = "contract-tester"
DEFAULT_WAITS = [0.75, 1.5, 3.0]

LOGIN = "/api/Auth/loginKey"
VALIDATE = "/api/Auth/validate"
ACCOUNTS = "/api/Account/search"
CONTRACT_SEARCH = "/api/Contract/search"
CONTRACT_BY_ID = "/api/Contract/searchById"
PLACE = "/api/Order/place"
MODIFY = "/api/Order/modify"
CANCEL = "/api/Order/cancel"
SEARCH = "/api/Order/search"
SEARCH_OPEN = "/api/Order/searchOpen"

# Gateway enums as the simulator reports them (docs/gateway.md §5.1).
LIMIT, MARKET, STOP = 1, 2, 4
BID, ASK = 0, 1
OPEN, FILLED, CANCELLED, REJECTED, SUSPENDED = 1, 2, 3, 5, 8


class FakeClock:
    """Wall-clock time as the client sees it: real time plus an offset a test controls."""

    def __init__(self, offset: float = 0.0) -> None:
        self.offset = offset

    def __call__(self) -> float:
        return time.time() + self.offset


DAY = 24 * 3600.0
# The clock each client of the ``make_client`` fixture reads (so a test can move it on).
CLOCKS: weakref.WeakKeyDictionary[GatewayClient, FakeClock] = weakref.WeakKeyDictionary()


async def renew(client: GatewayClient, stats: CallStats | None = None) -> None:
    """Renew the client's token as the worker's cron does once it is due: 23.5 hours on
    (by the client's clock) the token is inside the renewal margin."""
    clock = CLOCKS[client]
    saved = clock.offset
    clock.offset = saved + DAY - 1800
    try:
        await client.auth.ensure_token(stats)
    finally:
        clock.offset = saved


class RecordingSleep:
    """A fake ``sleep`` for GatewayClient: records each wait and returns at once.

    ``then`` runs after each recorded wait (e.g. to lift a fault "while" the client waits).
    """

    def __init__(self, then: Callable[[float], Awaitable[None]] | None = None) -> None:
        self.waits: list[float] = []
        self._then = then

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        if self._then is not None:
            await self._then(seconds)


def counts(sim: BrokerSim) -> dict[str, int]:
    """Requests the simulator received so far, per endpoint, plus ``"*"`` for all of them."""
    stats = sim.stats()
    found: dict[str, int] = dict(stats["endpoints"])
    found["*"] = stats["requests"]
    return found


def sent_since(sim: BrokerSim, before: dict[str, int], path: str = "*") -> int:
    """How many requests to ``path`` (``"*"``: any) arrived since ``before = counts(sim)``."""
    return counts(sim).get(path, 0) - before.get(path, 0)


def sim_order(sim: BrokerSim, order_id: int) -> dict[str, Any]:
    """One order as the simulator recorded it."""
    found = [o for o in sim.orders() if o["id"] == order_id]
    assert len(found) == 1, (order_id, sim.orders())
    return found[0]


def legs_of(sim: BrokerSim, order_id: int) -> dict[int, dict[str, Any]]:
    """The bracket legs of an entry order, by order type (STOP: stop loss, LIMIT: take profit)."""
    legs = [o for o in sim.orders() if o.get("parentOrderId") == order_id]
    return {leg["type"]: leg for leg in legs}


def an_hour_ago() -> datetime:
    """A search window start that covers everything a test placed."""
    return datetime.now(UTC) - timedelta(hours=1)


async def in_thread(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a blocking introspection call without stalling the event loop."""
    return await asyncio.to_thread(function, *args, **kwargs)
