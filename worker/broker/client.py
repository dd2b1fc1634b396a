"""The ProjectX Gateway's endpoints, on one persistent aiohttp session.

``GatewayClient`` is what the worker talks to: the order, position and account endpoints
here, on a ``Transport`` (HTTP, judging answers, retries), a ``SessionAuth`` (the token)
and ``Contracts`` (symbol to contract). It speaks HTTP and JSON and nothing more; what an
intent *means* (exactly-once, looking a place up by its tag when its outcome is unknown)
is the executor's business, which every ``BrokerUnavailable`` makes possible by saying
whether the request may have reached the broker.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from operator import attrgetter
from typing import Final

import aiohttp
import msgspec

from producer.contract import OrderType as IntentOrderType
from producer.market import MAX_HISTORY_BARS, Bar, Timeframe
from producer.validation import (
    check_account_id,
    check_custom_tag,
    check_modify,
    check_on_tick,
    check_order_id,
    check_order_type,
    check_place,
    check_price,
    check_quantity,
    check_side,
    check_ticks,
)
from worker.broker.auth import SessionAuth, TokenStore
from worker.broker.contracts import Contracts, ContractStore
from worker.broker.errors import BrokerProtocolError
from worker.broker.models import (
    Account,
    BarUnit,
    Bracket,
    CancelOrderRequest,
    CloseContractRequest,
    Envelope,
    ModifyOrderRequest,
    Order,
    OrderSide,
    OrderType,
    PartialCloseContractRequest,
    PlaceOrderRequest,
    PlaceOrderResponse,
    Position,
    RetrieveBarRequest,
    RetrieveBarResponse,
    SearchAccountRequest,
    SearchAccountResponse,
    SearchOpenOrderRequest,
    SearchOrderRequest,
    SearchOrderResponse,
    SearchPositionRequest,
    SearchPositionResponse,
    SearchTradeRequest,
    SearchTradeResponse,
    Trade,
    epoch_ms,
)
from worker.broker.retry import RetryPolicy, Sleep
from worker.broker.transport import Budget, CallStats, Transport, before_sending
from worker.observe import Observer

_BAR_UNITS: Final = {"s": BarUnit.SECOND, "m": BarUnit.MINUTE, "h": BarUnit.HOUR}
_START: Final = attrgetter("start")
_ORDER_TYPES: Final = {
    "market": OrderType.MARKET,
    "limit": OrderType.LIMIT,
    "stop": OrderType.STOP,
    "stop_limit": OrderType.STOP_LIMIT,
    "trailing_stop": OrderType.TRAILING_STOP,
    "join_bid": OrderType.JOIN_BID,
    "join_ask": OrderType.JOIN_ASK,
}


def signed_brackets(
    side: str, stop_loss_ticks: int | None, take_profit_ticks: int | None
) -> tuple[Bracket | None, Bracket | None]:
    """Bracket distances signed as the live gateway requires (docs/gateway.md §5.7).

    Users give distances as positive tick counts. Long: stop-loss below (negative),
    take-profit above (positive); short: the reverse. The gateway's docs example shows
    unsigned ticks, but the live service rejects them.
    """
    direction = 1 if side == "BUY" else -1
    stop_loss = (
        None
        if stop_loss_ticks is None
        else Bracket(ticks=-direction * stop_loss_ticks, type=OrderType.STOP)
    )
    take_profit = (
        None
        if take_profit_ticks is None
        else Bracket(ticks=direction * take_profit_ticks, type=OrderType.LIMIT)
    )
    return stop_loss, take_profit


def iso(moment: datetime) -> str:
    """The gateway's timestamp format: ISO 8601 with an explicit UTC offset (§8)."""
    return moment.astimezone(UTC).isoformat()


class GatewayClient:
    """ProjectX Gateway client. One per worker process, on the process's one session.

    ``auth`` holds the session token, ``contracts`` resolves symbols; the endpoints are
    methods here. ``set_token``/``get_token`` and ``set_contract_id``/``get_contract_id``
    keep the predecessor's API. Every method that talks to the broker takes an optional
    ``stats`` (requests and time are added to it) and ``deadline`` (a ``time.monotonic()``
    time after which no retry starts).
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        *,
        username: str,
        api_key: str,
        retry: RetryPolicy | None = None,
        request_timeout: float = 3.0,
        connect_timeout: float = 1.0,
        token_lifetime: float = 24 * 3600.0,
        renew_margin: float = 3600.0,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.time,
        budget: Budget | None = None,
        tokens: TokenStore | None = None,
        contracts: ContractStore | None = None,
        contract_refresh_s: float = 60.0,
        observer: Observer | None = None,
    ) -> None:
        self.transport = Transport(
            session,
            base_url,
            retry=retry,
            request_timeout=request_timeout,
            connect_timeout=connect_timeout,
            sleep=sleep,
            budget=budget,
            observer=observer,
        )
        self.auth = SessionAuth(
            self.transport,
            username=username,
            api_key=api_key,
            token_lifetime=token_lifetime,
            renew_margin=renew_margin,
            clock=clock,
            tokens=tokens,
            observer=observer,
        )
        self.transport.auth = self.auth
        self.contracts = Contracts(self.transport, store=contracts, refresh_s=contract_refresh_s)
        self._username = username

    def __repr__(self) -> str:
        return f"GatewayClient(base_url={self.transport.base_url!r}, username={self._username!r})"

    # --- the predecessor's API ----------------------------------------------------------

    def set_token(self, token: str, expires_at: float | None = None) -> None:
        """Use this session token (expiry read from the JWT unless given, epoch seconds)."""
        self.auth.set_token(token, expires_at)

    def get_token(self) -> str | None:
        """The current session token, if any."""
        return self.auth.get_token()

    def set_contract_id(
        self,
        symbol: str,
        contract_id: str,
        tick_size: float | None = None,
        tick_value: float | None = None,
    ) -> None:
        """Pin a symbol to a contract ID (e.g. to trade a month other than the front)."""
        self.contracts.pin(symbol, contract_id, tick_size, tick_value)

    def get_contract_id(self, symbol: str) -> str | None:
        """The cached contract ID of a symbol, if any."""
        return self.contracts.cached_id(symbol)

    # --- accounts -----------------------------------------------------------------------

    async def search_accounts(
        self, only_active: bool = True, *, stats: CallStats | None = None
    ) -> list[Account]:
        """POST /api/Account/search (§3)."""
        answer = await self.transport.call(
            "/api/Account/search",
            SearchAccountRequest(only_active_accounts=only_active),
            SearchAccountResponse,
            idempotent=True,
            stats=stats,
        )
        return answer.accounts or []

    # --- orders and positions -----------------------------------------------------------

    async def place_order(
        self,
        *,
        account_id: int,
        symbol: str,
        side: str,
        quantity: int,
        order_type: IntentOrderType | str = "market",
        limit_price: float | None = None,
        stop_price: float | None = None,
        stop_loss_ticks: int | None = None,
        take_profit_ticks: int | None = None,
        trail_ticks: int | None = None,
        custom_tag: str | None = None,
        stats: CallStats | None = None,
        deadline: float | None = None,
    ) -> int:
        """POST /api/Order/place; returns the order ID.

        ``trail_ticks`` (a trailing stop's distance) goes as ``trailPrice``: a price
        distance, ticks times the contract's tick size (as project-x-py sends it).

        Validated before anything is sent. Sent once: a timeout, dropped connection or
        5xx raises ``BrokerUnavailable`` with ``sent=True`` (the order may exist), and only
        errors that prove the request never ran (refused connection, 429) are retried here.
        """
        account = check_account_id(account_id)
        kind = check_order_type(order_type)
        direction = check_side(side)
        size = check_quantity(quantity)
        limit = check_price(limit_price, "limit_price")
        stop = check_price(stop_price, "stop_price")
        trail = check_ticks(trail_ticks, "trail_ticks")
        check_place(kind, limit, stop, trail)
        stop_loss, take_profit = signed_brackets(
            direction,
            check_ticks(stop_loss_ticks, "stop_loss_ticks"),
            check_ticks(take_profit_ticks, "take_profit_ticks"),
        )
        tag = check_custom_tag(custom_tag)
        # The look-ups before the place (contract, login) stop retrying at the deadline too,
        # or an order could reach the broker long after the intent's deadline.
        with before_sending("/api/Order/place"):
            contract = await self.contracts.resolve(symbol, stats=stats, deadline=deadline)
        if contract.tick_size:
            for value, field in ((limit, "limit_price"), (stop, "stop_price")):
                if value is not None:
                    check_on_tick(value, contract.tick_size, field)
        trail_price = None
        if trail is not None:
            tick_size = contract.tick_size
            if not tick_size:
                tick_size = (await self.contracts.by_id(contract.contract_id)).tick_size
            # Decimal arithmetic, so 7 ticks of 0.1 is 0.7, not 0.7000000000000001.
            trail_price = float(Decimal(repr(tick_size)) * trail)
        request = PlaceOrderRequest(
            account_id=account,
            contract_id=contract.contract_id,
            type=_ORDER_TYPES[kind],
            side=OrderSide.BID if direction == "BUY" else OrderSide.ASK,
            size=size,
            limit_price=limit,
            stop_price=stop,
            trail_price=trail_price,
            custom_tag=tag,
            stop_loss_bracket=stop_loss,
            take_profit_bracket=take_profit,
        )
        answer = await self.transport.call(
            "/api/Order/place",
            request,
            PlaceOrderResponse,
            idempotent=False,
            stats=stats,
            deadline=deadline,
        )
        if answer.order_id is None:
            raise BrokerProtocolError(
                "place answered success without an orderId", endpoint="/api/Order/place", sent=True
            )
        return answer.order_id

    async def modify_order(
        self,
        *,
        account_id: int,
        order_id: int,
        quantity: int | None = None,
        limit_price: float | None = None,
        stop_price: float | None = None,
        stats: CallStats | None = None,
        deadline: float | None = None,
    ) -> None:
        """POST /api/Order/modify. Absolute values, so a repeat is harmless and retried."""
        size = None if quantity is None else check_quantity(quantity)
        limit = check_price(limit_price, "limit_price")
        stop = check_price(stop_price, "stop_price")
        check_modify(size, limit, stop)
        request = ModifyOrderRequest(
            account_id=check_account_id(account_id),
            order_id=check_order_id(order_id),
            size=size,
            limit_price=limit,
            stop_price=stop,
        )
        await self.transport.call(
            "/api/Order/modify", request, Envelope, idempotent=True, stats=stats, deadline=deadline
        )

    async def cancel_order(
        self,
        *,
        account_id: int,
        order_id: int,
        stats: CallStats | None = None,
        deadline: float | None = None,
    ) -> None:
        """POST /api/Order/cancel. A repeat is refused as already cancelled, never harmful."""
        request = CancelOrderRequest(
            account_id=check_account_id(account_id), order_id=check_order_id(order_id)
        )
        await self.transport.call(
            "/api/Order/cancel", request, Envelope, idempotent=True, stats=stats, deadline=deadline
        )

    async def close_position(
        self,
        *,
        account_id: int,
        contract_id: str,
        quantity: int | None = None,
        stats: CallStats | None = None,
        deadline: float | None = None,
    ) -> None:
        """POST /api/Position/closeContract (the whole position) or, with ``quantity``,
        partialCloseContract (§6.2, §6.3): a market order of the gateway's that trades the
        position down. Not idempotent (a repeat closes again): sent once, like a place."""
        account = check_account_id(account_id)
        endpoint = "/api/Position/closeContract"
        request: msgspec.Struct = CloseContractRequest(account_id=account, contract_id=contract_id)
        if quantity is not None:
            endpoint = "/api/Position/partialCloseContract"
            request = PartialCloseContractRequest(
                account_id=account, contract_id=contract_id, size=check_quantity(quantity)
            )
        await self.transport.call(
            endpoint, request, Envelope, idempotent=False, stats=stats, deadline=deadline
        )

    async def search_orders(
        self,
        account_id: int,
        start: datetime,
        end: datetime | None = None,
        *,
        stats: CallStats | None = None,
        deadline: float | None = None,
    ) -> list[Order]:
        """POST /api/Order/search: the account's orders created in [start, end or now]."""
        request = SearchOrderRequest(
            account_id=check_account_id(account_id),
            start_timestamp=iso(start),
            end_timestamp=None if end is None else iso(end),
        )
        answer = await self.transport.call(
            "/api/Order/search",
            request,
            SearchOrderResponse,
            idempotent=True,
            stats=stats,
            deadline=deadline,
        )
        return answer.orders or []

    async def search_open_orders(
        self, account_id: int, *, stats: CallStats | None = None, deadline: float | None = None
    ) -> list[Order]:
        """POST /api/Order/searchOpen: the account's working orders."""
        answer = await self.transport.call(
            "/api/Order/searchOpen",
            SearchOpenOrderRequest(account_id=check_account_id(account_id)),
            SearchOrderResponse,
            idempotent=True,
            stats=stats,
            deadline=deadline,
        )
        return answer.orders or []

    async def search_trades(
        self,
        account_id: int,
        start: datetime,
        end: datetime | None = None,
        *,
        stats: CallStats | None = None,
        deadline: float | None = None,
    ) -> list[Trade]:
        """POST /api/Trade/search (§6.4): the account's fills in [start, end or now]."""
        request = SearchTradeRequest(
            account_id=check_account_id(account_id),
            start_timestamp=iso(start),
            end_timestamp=None if end is None else iso(end),
        )
        answer = await self.transport.call(
            "/api/Trade/search",
            request,
            SearchTradeResponse,
            idempotent=True,
            stats=stats,
            deadline=deadline,
        )
        return answer.trades or []

    async def search_open_positions(
        self, account_id: int, *, stats: CallStats | None = None, deadline: float | None = None
    ) -> list[Position]:
        """POST /api/Position/searchOpen: the account's open positions."""
        answer = await self.transport.call(
            "/api/Position/searchOpen",
            SearchPositionRequest(account_id=check_account_id(account_id)),
            SearchPositionResponse,
            idempotent=True,
            stats=stats,
            deadline=deadline,
        )
        return answer.positions or []

    async def find_order(
        self,
        account_id: int,
        *,
        custom_tag: str | None = None,
        order_id: int | None = None,
        since: datetime,
        stats: CallStats | None = None,
        deadline: float | None = None,
    ) -> Order | None:
        """The account's order with this tag or ID, created since ``since``.

        No gateway search filters by tag (docs/gateway.md §5.3), so this searches a time
        window and filters. The window opens a few minutes early to absorb clock skew
        between this host and the broker.
        """
        orders = await self.search_orders(
            account_id, since - timedelta(minutes=5), stats=stats, deadline=deadline
        )
        for order in orders:
            if (custom_tag is not None and order.custom_tag == custom_tag) or (
                order_id is not None and order.id == order_id
            ):
                return order
        return None

    # --- market data ------------------------------------------------------------------

    async def retrieve_bars(
        self,
        contract_id: str,
        timeframe: Timeframe,
        start: datetime,
        end: datetime,
        *,
        limit: int,
        partial: bool = False,
        stats: CallStats | None = None,
        deadline: float | None = None,
    ) -> list[Bar]:
        """POST /api/History/retrieveBars (§6.5): the bars of ``timeframe`` that start in
        ``[start, end]``, oldest first, at most the newest ``limit`` (at most 20,000), the
        bar in progress only if ``partial``. Each is final unless it ends after now."""
        request = RetrieveBarRequest(
            contract_id=contract_id,
            start_time=iso(start),
            end_time=iso(end),
            unit=_BAR_UNITS[timeframe.unit],
            unit_number=timeframe.count,
            limit=min(limit, MAX_HISTORY_BARS),
            include_partial_bar=partial,
        )
        # The fleet's budget counts retrieveBars in a window of its own (§7: 50 / 30 s).
        answer = await self.transport.call(
            "/api/History/retrieveBars",
            request,
            RetrieveBarResponse,
            idempotent=True,
            stats=stats,
            deadline=deadline,
        )
        now = int(time.time() * 1000)
        name = timeframe.name
        bars = [
            Bar(
                symbol=contract_id,
                timeframe=name,
                start=(at := epoch_ms(bar.t)),
                open=bar.o,
                high=bar.h,
                low=bar.l,
                close=bar.c,
                volume=bar.v,
                final=at + timeframe.ms <= now,
            )
            for bar in answer.bars or ()
        ]
        bars.sort(key=_START)
        return bars

    # --- transport --------------------------------------------------------------------
