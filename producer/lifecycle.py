"""Reading an account's lifecycle from Redis: its events as they come, and its mirror.

``OrderClient`` exposes these as ``events()``, ``wait_order()``, ``positions()``,
``open_orders()`` and ``account()``; none of them costs a broker request. The fleet's
leader writes what they read (``worker/mirror``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Awaitable, Iterable
from typing import Final, cast

import msgspec
from redis.asyncio import Redis

from ow_core.keys import Keys
from producer.errors import OrderError
from producer.events import (
    ACCOUNT_DECODER,
    EVENT_DECODER,
    ORDER_DECODER,
    POSITION_DECODER,
    AccountUpdate,
    Event,
    OrderUpdate,
    Position,
)

_BLOCK_MS: Final = 1000
_BATCH: Final = 200


class OrderEnded(OrderError):
    """The order reached a final state other than the ones waited for (``update`` says
    which: cancelled, rejected, expired, or filled when that was not waited for)."""

    code = "order_ended"

    def __init__(self, update: OrderUpdate) -> None:
        super().__init__(f"order {update.order_id} ended {update.state}")
        self.update = update


class WaitTimeout(OrderError):
    """The order did not reach any of the states waited for in time."""

    code = "wait_timeout"


class Lifecycle:
    """One client's reads of account mirrors and event streams."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys

    async def events(self, account_id: int, since: str | None) -> AsyncGenerator[Event, None]:
        """The account's events, after ``since`` (an event's ``event_id``) or from now."""
        stream = self._keys.events(account_id)
        cursor = since if since is not None else await self.last_id(account_id)
        while True:
            answer = await self._redis.xread({stream: cursor}, count=_BATCH, block=_BLOCK_MS)
            for _stream, entries in answer or ():
                for entry_id, fields in entries:
                    cursor = entry_id.decode()
                    event = _event(cursor, fields)
                    if event is not None:
                        yield event

    async def recent(self, account_id: int, count: int) -> list[Event]:
        """The last ``count`` events of an account, oldest first."""
        if count <= 0:
            return []
        entries = await self._redis.xrevrange(self._keys.events(account_id), count=count)
        found = (_event(entry_id.decode(), fields) for entry_id, fields in reversed(entries))
        return [event for event in found if event is not None]

    async def last_id(self, account_id: int) -> str:
        """The stream ID of the newest event of an account ('0-0' when there is none)."""
        last = await self._redis.xrevrange(self._keys.events(account_id), count=1)
        return last[0][0].decode() if last else "0-0"

    async def order(self, account_id: int, order_id: int) -> OrderUpdate | None:
        """An order as the mirror has it (today's orders, open or done)."""
        raw = await cast(
            Awaitable[bytes | None],
            self._redis.hget(self._keys.mirror_orders(account_id), str(order_id)),
        )
        return None if raw is None else ORDER_DECODER.decode(raw)

    async def wait_order(
        self, account_id: int, order_id: int, states: Iterable[str], timeout: float
    ) -> OrderUpdate:
        """The order's update once it is in one of ``states`` (at once if the mirror shows
        it already); ``OrderEnded`` if it ends otherwise, ``WaitTimeout`` if time runs out."""
        wanted = frozenset(states)
        # The cursor is taken before the mirror is read, so an event in between is seen.
        cursor = await self.last_id(account_id)
        deadline = time.monotonic() + timeout
        current = await self.order(account_id, order_id)
        while True:
            if current is not None and current.order_id == order_id:
                if current.state in wanted:
                    return current
                if current.final:
                    raise OrderEnded(current)
            left = deadline - time.monotonic()
            if left <= 0:
                state = current.state if current is not None else "not seen"
                raise WaitTimeout(
                    f"order {order_id} not {'/'.join(sorted(wanted))} within {timeout:g} s "
                    f"(last seen: {state})"
                )
            newer, cursor = await self._next_order(account_id, order_id, cursor, left)
            current = newer or current

    async def _next_order(
        self, account_id: int, order_id: int, cursor: str, left: float
    ) -> tuple[OrderUpdate | None, str]:
        """The next update of this order on the stream, within ``left`` seconds."""
        stream = self._keys.events(account_id)
        block = max(1, min(_BLOCK_MS, int(left * 1000)))
        answer = await self._redis.xread({stream: cursor}, count=_BATCH, block=block)
        found: OrderUpdate | None = None
        for _stream, entries in answer or ():
            for entry_id, fields in entries:
                cursor = entry_id.decode()
                event = _event(cursor, fields)
                if isinstance(event, OrderUpdate) and event.order_id == order_id:
                    found = event
                    if event.final:
                        return found, cursor
        return found, cursor

    async def positions(self, account_id: int) -> list[Position]:
        """The account's open positions."""
        raw = await cast(
            Awaitable[list[bytes]], self._redis.hvals(self._keys.mirror_positions(account_id))
        )
        updates = sorted((POSITION_DECODER.decode(r) for r in raw), key=lambda p: p.contract_id)
        return [
            Position(
                contract_id=p.contract_id,
                symbol=p.symbol,
                size=p.size,
                average_price=p.average_price,
            )
            for p in updates
            if p.size
        ]

    async def open_orders(self, account_id: int) -> list[OrderUpdate]:
        """The account's working orders (bracket legs waiting for their entry included)."""
        raw = await cast(
            Awaitable[list[bytes]], self._redis.hvals(self._keys.mirror_open(account_id))
        )
        orders = (ORDER_DECODER.decode(r) for r in raw)
        return sorted((o for o in orders if not o.final), key=lambda o: o.order_id)

    async def account(self, account_id: int) -> AccountUpdate | None:
        """The account's balance, right to trade and today's realized P&L, if mirrored."""
        raw = await cast(
            Awaitable[bytes | None], self._redis.hget(self._keys.mirror_account(account_id), "a")
        )
        return None if raw is None else ACCOUNT_DECODER.decode(raw)

    async def live(self, account_id: int) -> bool:
        """Whether a leader keeps the account's mirror live right now."""
        return bool(await self._redis.exists(self._keys.mirror_synced(account_id)))


def _event(entry_id: str, fields: dict[bytes, bytes]) -> Event | None:
    """A stream entry as its event, its ID set; None for an entry that is not one of ours
    (written by hand, or by a newer fleet)."""
    try:
        event = EVENT_DECODER.decode(fields[b"e"])
    except (KeyError, msgspec.DecodeError):
        return None
    return msgspec.structs.replace(event, event_id=entry_id)
