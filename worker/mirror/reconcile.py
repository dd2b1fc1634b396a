"""Push, then prove: after every gap the mirror is compared with REST and what the gap hid
becomes events (marked ``reconciled``).

A gap is the start of a leader's watch, every reconnect, and a leader change: a fill that
happened while nobody listened still reaches the strategies, once (the mirror drops what
it has seen already, by identity). Per account it costs five requests: open orders,
today's orders, today's trades, open positions, and the accounts (once for all).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Final, cast
from zoneinfo import ZoneInfo

from redis.asyncio import Redis

from ow_core.keys import Keys
from producer.events import POSITION_DECODER, TRADE_DECODER, Event, TradeUpdate
from worker.broker.client import GatewayClient
from worker.broker.models import Account, Order
from worker.mirror import normalize
from worker.mirror.normalize import Symbols, epoch_ms
from worker.mirror.store import MirrorStore

log = logging.getLogger("worker.mirror")

_CHICAGO: Final = ZoneInfo("America/Chicago")
RequestIdOf = Callable[[Order], Awaitable[str | None]]


def trading_day_start(now: datetime) -> datetime:
    """When the CME trading day that ``now`` belongs to began: 17:00 Chicago time."""
    local = now.astimezone(_CHICAGO)
    start = local.replace(hour=17, minute=0, second=0, microsecond=0)
    if local < start:
        start -= timedelta(days=1)
    return start.astimezone(UTC)


def realized_today(trades: Iterable[TradeUpdate], since_ms: int) -> float:
    """Today's realized P&L less fees, from the trades seen (voided ones left out)."""
    return round(
        sum((t.pnl or 0.0) - t.fees for t in trades if t.at >= since_ms and not t.voided), 2
    )


def day_start_ms(now: datetime | None = None) -> int:
    """``trading_day_start`` of now (or ``now``) in epoch milliseconds."""
    return int(trading_day_start(now or datetime.now(UTC)).timestamp() * 1000)


class RealizedToday:
    """Each account's realized P&L today, kept as trades arrive rather than summed over
    every trade of the day at each account push (a busy day has thousands).

    It is set from the mirror's trades by each reconciliation (and on first need), then
    moved by each new trade; a new trading day starts it at zero.
    """

    def __init__(self) -> None:
        self._days: dict[int, tuple[int, float]] = {}

    def value(self, account_id: int, day_ms: int) -> float | None:
        """Today's figure, or None when it has not been set from the mirror yet."""
        known = self._days.get(account_id)
        if known is None:
            return None
        start, total = known
        return total if start == day_ms else 0.0

    def reset(self, account_id: int, trades: Iterable[TradeUpdate], day_ms: int) -> float:
        """Set it from the trades the mirror holds; the figure."""
        total = realized_today(trades, day_ms)
        self._days[account_id] = (day_ms, total)
        return total

    def add(self, trade: TradeUpdate, day_ms: int) -> None:
        """A trade the mirror had not seen (a voided one takes its amount back)."""
        known = self._days.get(trade.account_id)
        if known is None or trade.at < day_ms:
            return  # set later from the mirror, which has this trade already
        start, total = known
        if start != day_ms:
            total = 0.0
        amount = (trade.pnl or 0.0) - trade.fees
        self._days[trade.account_id] = (
            day_ms,
            round(total - amount if trade.voided else total + amount, 2),
        )


class Reconciler:
    """Compares an account's mirror with REST and applies what differs."""

    def __init__(
        self,
        broker: GatewayClient,
        store: MirrorStore,
        redis: Redis,
        keys: Keys,
        *,
        symbols: Symbols,
        known: Callable[[str], Awaitable[None]],
        request_id_of: RequestIdOf,
        realized: RealizedToday,
    ) -> None:
        self._broker = broker
        self._store = store
        self._redis = redis
        self._keys = keys
        self._symbols = symbols
        self._known = known
        self._request_id_of = request_id_of
        self._realized = realized

    async def accounts(self, account_ids: Iterable[int]) -> int:
        """Reconcile these accounts; the number of events the gap had hidden."""
        wanted = set(account_ids)
        listed = {a.id: a for a in await self._broker.search_accounts()}
        found = 0
        for account_id in sorted(wanted):
            found += await self.account(account_id, listed.get(account_id))
        if found:
            log.info("reconciliation found %d changes the hub had not pushed", found)
        return found

    async def account(self, account_id: int, account: Account | None) -> int:
        """One account: orders, trades, positions, then the account itself."""
        now = datetime.now(UTC)
        day = trading_day_start(now)
        seen_at = int(time.time() * 1000)
        found = 0
        orders = {o.id: o for o in await self._broker.search_orders(account_id, day)}
        for order in await self._broker.search_open_orders(account_id):
            orders[order.id] = order
        for order in sorted(orders.values(), key=lambda o: epoch_ms(o.update_timestamp)):
            await self._known(order.contract_id)
            event = normalize.order_update(
                order, self._symbols, request_id=await self._request_id_of(order), reconciled=True
            )
            found += await self._apply(event)
        for trade in await self._broker.search_trades(account_id, day):
            await self._known(trade.contract_id)
            found += await self._apply(
                normalize.trade_update(trade, self._symbols, reconciled=True)
            )
        found += await self._positions(account_id, seen_at)
        realized = self._realized.reset(
            account_id, await self.trades(account_id), int(day.timestamp() * 1000)
        )
        if account is not None:
            found += await self._apply(
                normalize.account_update(
                    account, realized_pnl=realized, at=seen_at, reconciled=True
                )
            )
        return found

    async def trades(self, account_id: int) -> list[TradeUpdate]:
        """The trades the mirror holds for an account."""
        raw = await cast(
            Awaitable[list[bytes]], self._redis.hvals(self._keys.mirror_trades(account_id))
        )
        return [TRADE_DECODER.decode(value) for value in raw]

    async def _positions(self, account_id: int, at: int) -> int:
        found = 0
        live = set()
        for position in await self._broker.search_open_positions(account_id):
            await self._known(position.contract_id)
            live.add(position.contract_id)
            event = normalize.position_update(position, self._symbols, at=at, reconciled=True)
            found += await self._apply(event)
        mirrored = await cast(
            Awaitable[list[bytes]], self._redis.hvals(self._keys.mirror_positions(account_id))
        )
        for raw in mirrored:
            contract_id = POSITION_DECODER.decode(raw).contract_id
            if contract_id not in live:
                found += await self._apply(
                    normalize.flat(account_id, contract_id, self._symbols, at=at)
                )
        return found

    async def _apply(self, event: Event) -> int:
        return 1 if await self._store.apply(event) is not None else 0
