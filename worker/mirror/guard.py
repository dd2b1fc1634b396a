"""The daily loss guard: an account whose loss today reaches its limit is halted by the fleet
itself, before the venue's own limit liquidates it (the rule Topstep traders live by).

The day's loss is realized P&L less fees (the mirror counts it from today's trades) plus
the open positions' P&L at the last price the market hub gave. The halt is the kill
switch's, with a reason, and lasts until the next trading day (17:00 Chicago time) or an
operator's ``order-worker resume``: new orders are refused, the way out (modify, cancel,
close, flatten) never is.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

import msgspec
from redis.asyncio import Redis
from redis.typing import EncodableT, FieldT

from ow_core.keys import Keys
from producer.contract import encode_intent
from producer.events import AccountUpdate, Event, PositionUpdate
from producer.intents import Origin
from worker.fleet.halt import HaltRecord
from worker.mirror.reconcile import trading_day_start

log = logging.getLogger("worker.risk")

_FLATTEN_TIMEOUT_S: Final = 120.0


@dataclass(frozen=True, slots=True)
class Tick:
    """A contract's tick: its size in price, its value in dollars."""

    size: float
    value: float


def open_pnl(size: int, average: float, last: float, tick: Tick) -> float:
    """Dollars a signed position makes or loses at ``last``."""
    if not tick.size:
        return 0.0
    return (last - average) / tick.size * tick.value * size


@dataclass(slots=True)
class _Book:
    realized: float = 0.0
    positions: dict[str, tuple[int, float]] = field(default_factory=dict)
    halted_day: float = 0.0


class LossGuard:
    """Watches each account's day and halts it at its limit."""

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        *,
        limit_of: Callable[[int], float | None],
        tick_of: Callable[[str], Tick | None],
        holder: str,
        flatten: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._flatten = flatten
        self._limit_of = limit_of
        self._tick_of = tick_of
        self._holder = holder
        self._clock = clock
        self._books: dict[int, _Book] = {}
        self._last: dict[str, float] = {}

    def watched(self, account_id: int) -> bool:
        """Whether this account has a daily loss limit."""
        return self._limit_of(account_id) is not None

    def contracts(self) -> set[str]:
        """Contracts of open positions on watched accounts (their quotes are needed)."""
        return {c for book in self._books.values() for c in book.positions}

    async def on_event(self, event: Event) -> None:
        """A change of an account: its realized P&L or a position."""
        if not self.watched(event.account_id):
            return
        book = self._books.setdefault(event.account_id, _Book())
        if isinstance(event, AccountUpdate):
            book.realized = event.realized_pnl
        elif isinstance(event, PositionUpdate):
            if event.size:
                book.positions[event.contract_id] = (event.size, event.average_price)
            else:
                book.positions.pop(event.contract_id, None)
        else:
            return
        await self._check(event.account_id, book)

    async def on_quote(self, contract_id: str, last: float) -> None:
        """A new last price: every watched account holding the contract is checked."""
        self._last[contract_id] = last
        for account_id, book in self._books.items():
            if contract_id in book.positions:
                await self._check(account_id, book)

    def loss(self, account_id: int) -> float:
        """The account's loss today in dollars (negative when it is up)."""
        book = self._books.get(account_id)
        if book is None:
            return 0.0
        unrealized = 0.0
        for contract_id, (size, average) in book.positions.items():
            last, tick = self._last.get(contract_id), self._tick_of(contract_id)
            if last is not None and tick is not None:
                unrealized += open_pnl(size, average, last, tick)
        return -(book.realized + unrealized)

    async def _check(self, account_id: int, book: _Book) -> None:
        limit = self._limit_of(account_id)
        now = datetime.fromtimestamp(self._clock(), UTC)
        day = trading_day_start(now)
        if limit is None or book.halted_day == day.timestamp():
            return
        loss = self.loss(account_id)
        if loss < limit:
            return
        book.halted_day = day.timestamp()
        until = day + timedelta(days=1)
        record = HaltRecord(
            reason=f"daily loss limit of ${limit:,.2f} reached (loss ${loss:,.2f})",
            at=int(now.timestamp() * 1000),
            by=f"daily loss guard ({self._holder})",
        )
        # NX: an operator's own halt stays as it is. It lasts until the next trading day.
        await self._redis.set(
            self._keys.halt(account_id),
            msgspec.json.encode(record),
            nx=True,
            pxat=int(until.timestamp() * 1000),
        )
        log.error("account %d halted: %s", account_id, record.reason)
        if self._flatten:
            await self._submit_flatten(account_id)

    async def _submit_flatten(self, account_id: int) -> None:
        """``RISK_FLATTEN_ON_LOSS_LIMIT``: a flatten intent on the stream, like any other
        (it passes the halt); its result goes to the guard's own reply stream."""
        origin = Origin(self._keys.reply("loss-guard"), account_id, _FLATTEN_TIMEOUT_S)
        intent = origin.flatten()
        entry: dict[FieldT, EncodableT] = dict(encode_intent(intent).items())
        await self._redis.xadd(self._keys.intents, entry)
        log.error("account %d: flatten %s submitted", account_id, intent.request_id)
