"""Helpers of the lifecycle scenarios: what the strategy saw (its events), what the venue
holds (over REST), and the audit that compares the two."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from ow_core.aio import cancel_and_wait
from producer import OrderClient
from producer.events import Event, OrderUpdate, PositionUpdate, TradeUpdate
from worker.local.pytest_plugin import DEMO_ACCOUNT
from worker.mirror.normalize import identity

TICK = 0.25
STATES = {1: "open", 2: "filled", 3: "cancelled", 4: "expired", 5: "rejected", 6: "pending",
          7: "pending_cancel", 8: "suspended"}  # fmt: skip


async def eventually(check: Callable[[], Awaitable[None] | None], timeout: float = 15.0) -> None:
    """Run ``check`` until it stops raising AssertionError (its last error if time runs out)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            outcome = check()
            if outcome is not None:
                await outcome
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.05)


class Seen:
    """Every event ``client.events()`` yields, from when it is made."""

    def __init__(self, client: OrderClient) -> None:
        self.events: list[Event] = []
        self._task = asyncio.create_task(self._collect(client))

    async def _collect(self, client: OrderClient) -> None:
        async for event in client.events():
            self.events.append(event)

    async def close(self) -> None:
        await cancel_and_wait([self._task])

    def orders(self, order_id: int) -> list[OrderUpdate]:
        return [e for e in self.events if isinstance(e, OrderUpdate) and e.order_id == order_id]

    def states(self, order_id: int) -> list[str]:
        return [e.state for e in self.orders(order_id)]

    def trades(self, order_id: int | None = None) -> list[TradeUpdate]:
        return [
            e for e in self.events
            if isinstance(e, TradeUpdate) and (order_id is None or e.order_id == order_id)
        ]  # fmt: skip

    def sizes(self) -> list[int]:
        return [e.size for e in self.events if isinstance(e, PositionUpdate)]


async def live(client: OrderClient, timeout: float = 20.0) -> None:
    """Wait until a leader keeps the account's mirror live (connected and reconciled)."""

    async def check() -> None:
        assert await client.mirror_live()

    await eventually(check, timeout)


class Rest:
    """The venue's own view over its REST API (what the audit compares with)."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def _call(self, session: aiohttp.ClientSession, path: str, body: Any) -> Any:
        async with session.post(f"{self.url}/api/{path}", json=body) as response:
            return await response.json()

    async def state(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Today's trades and the open positions of the demo account."""
        async with aiohttp.ClientSession() as session:
            login = await self._call(
                session, "Auth/loginKey", {"userName": "demo", "apiKey": "demo-key"}
            )
            session.headers["Authorization"] = f"Bearer {login['token']}"
            trades = await self._call(
                session, "Trade/search",
                {"accountId": DEMO_ACCOUNT, "startTimestamp": "2000-01-01T00:00:00Z"},
            )  # fmt: skip
            positions = await self._call(
                session, "Position/searchOpen", {"accountId": DEMO_ACCOUNT}
            )
        return trades["trades"], positions["positions"]


async def audit(
    client: OrderClient, seen: Seen, sim_orders: list[dict[str, Any]], rest: Rest
) -> None:
    """Every order, trade and position at the venue is in the events, none twice; and the
    events ``events()`` yielded are the stream's own."""
    stream = await client._lifecycle().recent(DEMO_ACCOUNT, 1_000_000)
    first = stream_id(seen.events[0]) if seen.events else None
    tail = [e for e in stream if first is not None and stream_id(e) >= first]
    assert [e.event_id for e in seen.events] == [e.event_id for e in tail]
    latest: dict[int, OrderUpdate] = {}
    for event in stream:
        if isinstance(event, OrderUpdate):
            latest[event.order_id] = event
    for order in sim_orders:
        if order["accountId"] != DEMO_ACCOUNT or order["status"] == 5:
            continue  # refused at the door: never an order at the venue
        mirrored = latest.get(order["id"])
        assert mirrored is not None, f"order {order['id']} never reached the events"
        assert (mirrored.state, mirrored.filled_quantity) == (
            STATES[order["status"]],
            order["fillVolume"],
        ), order
    trades, positions = await rest.state()
    counted = Counter(e.trade_id for e in stream if isinstance(e, TradeUpdate))
    assert set(counted) == {t["id"] for t in trades}, "trades missing or invented"
    assert all(n == 1 for n in counted.values()), f"trades seen twice: {counted}"
    # A thing may come back to a state it had (flat, then long again at the same price),
    # but the same change never follows itself.
    last: dict[tuple[str, str], str] = {}
    for event in stream:
        thing = (type(event).__name__, key_of(event))
        assert last.get(thing) != identity(event), f"the same change seen twice: {event}"
        last[thing] = identity(event)
    held = {p.contract_id: p.size for p in await client.positions()}
    venue = {p["contractId"]: p["size"] * (1 if p["type"] == 1 else -1) for p in positions}
    assert held == {c: s for c, s in venue.items() if s}


def stream_id(event: Event) -> tuple[int, int]:
    milliseconds, _, sequence = (event.event_id or "0-0").partition("-")
    return int(milliseconds), int(sequence)


def key_of(event: Event) -> str:
    if isinstance(event, OrderUpdate):
        return str(event.order_id)
    if isinstance(event, TradeUpdate):
        return str(event.trade_id)
    if isinstance(event, PositionUpdate):
        return event.contract_id
    return "account"
