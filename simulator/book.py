"""The venue's order book: it takes orders, works them against the market, and keeps the
accounts, positions and trades their fills make.

Pure state machine: no I/O and no clock reads; callers pass `now`. Each change is handed to
the Publisher as the user hub would push it (GatewayUserOrder, GatewayUserTrade,
GatewayUserPosition, GatewayUserAccount), synchronously, in the order it happened. The fill
rules are matching.py's, the money accounts.py's, the prices market.py's.
"""

import random
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from simulator.accounts import Account, Fill, Ledger, Position, Trade
from simulator.contracts import Contract, ContractTable
from simulator.market import Market, Quote
from simulator.matching import execution_price, follow, takes_quote, through_market, triggers
from simulator.orders import (
    ACCOUNT_NOT_FOUND,
    LIMIT_PRICED,
    LIVE,
    OUTSIDE_RANGE,
    STOP_PRICED,
    SUCCESS,
    TAG_IN_USE,
    WORKING,
    CancelOrderErrorCode,
    ClosePositionErrorCode,
    ModifyOrderErrorCode,
    Order,
    OrderRequest,
    OrderSide,
    OrderStatus,
    OrderType,
    Outcome,
    PartialClosePositionErrorCode,
    PlaceOrderErrorCode,
    StopThroughMarket,
    TagUniqueness,
    bracket_legs,
    new_order,
    price_leg,
    price_problem,
    request_problem,
    status_name,
)
from simulator.publish import NoPublisher, Publisher
from simulator.views import account_model, order_model, position_model, trade_model

# Order IDs are int64 on the wire; starting well above 1 makes them look like real ones.
FIRST_ORDER_ID = 1001
# Simulator choice: no live text is known for an account the daily loss limit stopped.
ACCOUNT_LOCKED = "Account cannot trade: the daily loss limit was reached"


def _created(order: Order) -> datetime:
    return order.creation_timestamp


class Book:
    """Orders of every account, worked against `market`; the single source of truth.

    `fee_per_contract` (None: each contract's own fee) is charged per contract on every
    fill. `daily_loss_limit` (dollars, None: none) is the venue's own: an account that loses
    that much in a trading day is flattened, its working orders are cancelled and it may
    not place orders again that day. `max_fill_size` (None: whole) caps what one order fills
    at one price event, so fills come in steps; the app sets it from the fault settings.
    """

    def __init__(
        self,
        accounts: Iterable[Account],
        contracts: ContractTable,
        market: Market,
        publisher: Publisher | None = None,
        *,
        tag_uniqueness: TagUniqueness = TagUniqueness.FOREVER,
        duplicate_tag_code: int = PlaceOrderErrorCode.ORDER_REJECTED,
        stop_through_market: StopThroughMarket = StopThroughMarket.REJECT,
        fee_per_contract: Decimal | None = None,
        daily_loss_limit: Decimal | None = None,
    ) -> None:
        self._contracts = contracts
        self.market = market
        # None when nobody listens, so no payload is built for nothing.
        self._publisher = None if isinstance(publisher, NoPublisher | None) else publisher
        self._tag_uniqueness = tag_uniqueness
        self._duplicate_tag_code = duplicate_tag_code
        self._stop_through_market = stop_through_market
        self._daily_loss_limit = daily_loss_limit
        self.ledger = Ledger(
            accounts,
            contracts,
            lambda c: c.fee if fee_per_contract is None else fee_per_contract,
        )
        self.max_fill_size: int | None = None
        self._next_order_id = FIRST_ORDER_ID
        self._reset_orders()

    def clear(self) -> None:
        """Forget every order and trade, restore balances and prices; IDs keep counting up.

        Simulator choice: IDs are never reused, so a client that survives a reset cannot
        mistake a new order for one it placed before.
        """
        self._reset_orders()
        self.ledger.clear()
        self.market.clear()
        for account in self.ledger.accounts():
            self._account_changed(account)

    def _reset_orders(self) -> None:
        accounts = [a.id for a in self.ledger.accounts()]
        self._orders: dict[int, Order] = {}
        self._by_account: dict[int, list[Order]] = {a: [] for a in accounts}
        self._working: dict[int, dict[int, Order]] = {a: {} for a in accounts}
        self._working_in: dict[str, dict[int, Order]] = {}
        self._children: dict[int, list[Order]] = {}
        self._tags: dict[tuple[int, str], Order] = {}

    # --- queries -------------------------------------------------------------------------

    def has_account(self, account_id: int) -> bool:
        """Whether the account exists."""
        return self.ledger.account(account_id) is not None

    def accounts(self, now: datetime) -> list[Account]:
        """Every account, as of `now` (a new trading day may have let one trade again)."""
        self._roll(now)
        return self.ledger.accounts()

    def orders(self) -> list[Order]:
        """Every order ever recorded, rejected ones included, in ID order."""
        return list(self._orders.values())

    def order(self, order_id: int) -> Order | None:
        """The order with this ID, or None."""
        return self._orders.get(order_id)

    def search(self, account_id: int, start: datetime, end: datetime) -> list[Order]:
        """Orders of an account created in [start, end] (§5.3); no tag filter, by design."""
        orders = self._by_account.get(account_id, [])
        return orders[
            bisect_left(orders, start, key=_created) : bisect_right(orders, end, key=_created)
        ]

    def working_orders(self, account_id: int) -> list[Order]:
        """Orders of an account that are working (§5.4); Suspended bracket legs are not."""
        return list(self._working.get(account_id, {}).values())

    def positions(self, account_id: int) -> list[Position]:
        """Open positions of an account."""
        return self.ledger.positions(account_id)

    def trades(self, account_id: int, start: datetime | None, end: datetime) -> list[Trade]:
        """Trades of an account made in [start, end], newest first."""
        return self.ledger.trades(account_id, start, end)

    # --- commands ------------------------------------------------------------------------

    def place(self, request: OrderRequest, now: datetime) -> Outcome:
        """Order/place (§5.2): validate, record, and work the order against the market."""
        self._roll(now)
        account = self.ledger.account(request.account_id)
        if account is None:
            return Outcome(PlaceOrderErrorCode.ACCOUNT_NOT_FOUND, ACCOUNT_NOT_FOUND)
        # Simulator choice: an empty tag is no tag.
        tag = request.custom_tag or None
        if tag is not None and self._tag_taken(request.account_id, tag):
            return Outcome(self._duplicate_tag_code, TAG_IN_USE)
        checked = self._check(request, account)
        if isinstance(checked, Outcome):
            if tag is not None:
                # §5.8: "TopStep reserves tags even for orders that themselves got rejected",
                # so the rejected order is recorded (it then shows in Order/search).
                self._order_changed(
                    self._record(self._new_order(request, OrderStatus.REJECTED, now))
                )
            return checked
        contract = checked
        order = self._new_order(request, OrderStatus.OPEN, now)
        quote = self.market.quote(contract.id)
        if order.type == OrderType.JOIN_BID:
            order.limit_price = quote.bid
        elif order.type == OrderType.JOIN_ASK:
            order.limit_price = quote.ask
        elif order.type == OrderType.TRAILING_STOP:
            follow(order, quote.last)
        self._order_changed(self._record(order))
        self._add_bracket_legs(order, request, quote, now)
        self._work(order, now, arriving=True)
        return Outcome(order_id=order.id)

    def modify(
        self,
        account_id: int,
        order_id: int,
        now: datetime,
        *,
        size: int | None = None,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
        trail_price: Decimal | None = None,
    ) -> Outcome:
        """Order/modify (§5.6): change size or prices of a working or Suspended order.

        Fields left None are unchanged; asking for the values the order already has is a
        successful no-op. A change that makes the order marketable fills it at once.
        """
        found = self._owned_order(account_id, order_id)
        if isinstance(found, Outcome):
            return found
        order = found
        rejected = ModifyOrderErrorCode.REJECTED
        if order.status not in LIVE:
            return Outcome(rejected, f"Order is not open (status {status_name(order.status)})")
        if size is not None and size <= order.fill_volume:
            return Outcome(rejected, "Invalid order size")
        tick_size = self._contracts[order.contract_id].tick_size
        for kind, value, types, type_name in (
            ("limit", limit_price, LIMIT_PRICED, "limit"),
            ("stop", stop_price, STOP_PRICED, "stop"),
            ("trail", trail_price, {OrderType.TRAILING_STOP}, "trailing stop"),
        ):
            if value is None:
                continue
            if order.type not in types:
                return Outcome(
                    rejected,
                    f"{kind.capitalize()} price can only be modified on a {type_name} order",
                )
            problem = price_problem(kind, value, tick_size)
            if problem is not None:
                return Outcome(rejected, problem)
        last = self.market.quote(order.contract_id).last
        if stop_price is not None and self._refuses_stop(order, stop_price, last):
            return Outcome(rejected, OUTSIDE_RANGE)
        changed = False
        if size is not None and size != order.size:
            order.size, changed = size, True
        if limit_price is not None and limit_price != order.limit_price:
            order.limit_price, changed = limit_price, True
        if stop_price is not None and stop_price != order.stop_price:
            order.stop_price, changed = stop_price, True
        if trail_price is not None and trail_price != order.trail_price:
            order.trail_price, changed = trail_price, True
            follow(order, last)
        if not changed:
            return SUCCESS
        if limit_price is not None or stop_price is not None:
            order.bracket_ticks = None  # the client placed this leg itself now
        order.update_timestamp = now
        self._order_changed(order)
        self._work(order, now, arriving=True)
        return SUCCESS

    def cancel(self, account_id: int, order_id: int, now: datetime) -> Outcome:
        """Order/cancel (§5.5): cancel a working or Suspended order.

        An entry cancelled before anything filled takes its bracket legs with it; once part
        of it filled, the legs stay to protect that part.
        """
        found = self._owned_order(account_id, order_id)
        if isinstance(found, Outcome):
            return found
        order = found
        rejected = CancelOrderErrorCode.REJECTED
        if order.status == OrderStatus.FILLED:
            return Outcome(rejected, "Order is already filled")
        if order.status == OrderStatus.CANCELLED:
            return Outcome(rejected, "Order is already cancelled")
        if order.status not in LIVE:
            return Outcome(rejected, f"Order is not open (status {status_name(order.status)})")
        self._cancel(order, now)
        if order.fill_volume == 0:
            for leg in self._children.get(order.id, []):
                if leg.status in LIVE:
                    self._cancel(leg, now)
        return SUCCESS

    def close_position(
        self, account_id: int, contract_id: str, now: datetime, size: int | None = None
    ) -> Outcome:
        """Position/closeContract (§6.2), or partialCloseContract (§6.3) with a `size`: trade
        it off with a market order.

        §5.8: a market close does not cancel working bracket legs; neither does this.
        """
        self._roll(now)
        codes = ClosePositionErrorCode if size is None else PartialClosePositionErrorCode
        if not self.has_account(account_id):
            return Outcome(codes.ACCOUNT_NOT_FOUND, ACCOUNT_NOT_FOUND)
        contract = self._contracts.get(contract_id)
        if contract is None:
            return Outcome(codes.CONTRACT_NOT_FOUND, "Contract not found")
        if not contract.active_contract:
            return Outcome(codes.CONTRACT_NOT_ACTIVE, "Contract is not active")
        position = self.ledger.position(account_id, contract_id)
        if position is None:
            return Outcome(codes.POSITION_NOT_FOUND, "Position not found")
        if size is not None and not 0 < size <= abs(position.size):
            # Simulator choice: closing all of it is a valid partial close too.
            return Outcome(PartialClosePositionErrorCode.INVALID_CLOSE_SIZE, "Invalid close size")
        self._trade_off(position, abs(position.size) if size is None else size, now)
        return SUCCESS

    def set_price(self, contract_id: str, last: Decimal, now: datetime, volume: int = 1) -> Quote:
        """A trade printed at `last`: every working order of the contract meets the market."""
        self._roll(now)
        quote = self.market.set_price(contract_id, last, now, volume)
        self._match(contract_id, now)
        return quote

    def walk(self, rng: random.Random, now: datetime) -> None:
        """One step of the market's random walk; the contracts it moved meet their orders."""
        self._roll(now)
        for contract_id in self.market.walk(rng, now):
            self._match(contract_id, now)

    # --- working orders ------------------------------------------------------------------

    def _match(self, contract_id: str, now: datetime) -> None:
        # A snapshot: fills activate legs and cancel siblings while this runs.
        for order in list(self._working_in.get(contract_id, {}).values()):
            self._work(order, now, arriving=False)
        for account_id in self.ledger.holders(contract_id):
            self._check_loss(account_id, now)

    def _work(self, order: Order, now: datetime, *, arriving: bool) -> None:
        """Trigger, trail or fill one working order at the current market."""
        if order.status not in WORKING:
            return
        quote = self.market.quote(order.contract_id)
        trailing = order.type == OrderType.TRAILING_STOP and not order.triggered
        if trailing and follow(order, quote.last):
            order.update_timestamp = now
            self._order_changed(order)
        if triggers(order, quote.last):
            order.triggered = True
            arriving = True  # a triggered stop meets the market now
        at = execution_price(order, quote, arriving=arriving)
        if at is None:
            return
        size = (
            order.remaining
            if self.max_fill_size is None
            else min(order.remaining, self.max_fill_size)
        )
        self._fill(order, size, at, now, taker=takes_quote(order, arriving=arriving))

    def _fill(self, order: Order, size: int, at: Decimal, now: datetime, *, taker: bool) -> None:
        total = (order.filled_price or Decimal(0)) * order.fill_volume + at * size
        order.fill_volume += size
        order.filled_price = total / order.fill_volume
        order.update_timestamp = now
        if order.remaining == 0:
            self._set_status(order, OrderStatus.FILLED, now)
        self._order_changed(order)
        side = OrderSide(order.side)
        contract = self._contracts[order.contract_id]
        self._filled(self.ledger.fill(contract, order.account_id, order.id, side, size, at, now))
        self.market.print_fill(contract.id, at, size, side if taker else side.opposite, now)
        if order.id in self._children:
            self._protect(order, now)
        elif order.parent_order_id is not None:
            self._leg_filled(order, now)
        self._check_loss(order.account_id, now)

    # --- brackets ------------------------------------------------------------------------

    def _add_bracket_legs(
        self, entry: Order, request: OrderRequest, quote: Quote, now: datetime
    ) -> None:
        """Record the bracket legs of an entry, Suspended, priced from where it should fill."""
        expected: Decimal | None
        if entry.type == OrderType.MARKET:
            expected = quote.ask if entry.side == OrderSide.BID else quote.bid
        else:
            expected = entry.limit_price if entry.type in LIMIT_PRICED else entry.stop_price
        assert expected is not None  # _check guarantees the entry's price
        tick_size = self._contracts[entry.contract_id].tick_size
        for leg in bracket_legs(entry, request, self._next_order_id, now):
            price_leg(leg, expected, tick_size)
            self._next_order_id += 1
            self._children.setdefault(entry.id, []).append(self._record(leg))
            self._order_changed(leg)

    def _protect(self, entry: Order, now: datetime) -> None:
        """Fit the legs to what the entry filled and they have not closed: Suspended legs
        become Open at the first fill, working ones grow or shrink."""
        tick_size = self._contracts[entry.contract_id].tick_size
        legs = self._children[entry.id]
        for leg in legs:
            if leg.status not in LIVE:
                continue  # an earlier leg's fill may have cancelled it (OCO)
            uncovered = entry.fill_volume - sum(other.fill_volume for other in legs)
            size = leg.fill_volume + uncovered
            if leg.status == OrderStatus.SUSPENDED:
                assert entry.filled_price is not None
                if leg.bracket_ticks is not None:
                    price_leg(leg, entry.filled_price, tick_size)
                leg.size, leg.status, leg.update_timestamp = size, OrderStatus.OPEN, now
                self._index(leg)
                self._order_changed(leg)
                self._work(leg, now, arriving=True)
            elif size != leg.size and size > leg.fill_volume:
                leg.size, leg.update_timestamp = size, now
                self._order_changed(leg)

    def _leg_filled(self, leg: Order, now: datetime) -> None:
        """One-cancels-other: a leg that filled cancels its siblings; part of a fill shrinks
        them to what is still open."""
        assert leg.parent_order_id is not None
        entry = self._orders[leg.parent_order_id]
        if leg.status != OrderStatus.FILLED:
            self._protect(entry, now)
            return
        for sibling in self._children[entry.id]:
            if sibling is not leg and sibling.status in LIVE:
                self._cancel(sibling, now)

    # --- positions and the daily loss limit ----------------------------------------------

    def _trade_off(self, position: Position, size: int, now: datetime) -> None:
        """A market order of the venue's that reduces a position by `size`."""
        side = OrderSide.ASK if position.size > 0 else OrderSide.BID
        request = OrderRequest(
            position.account_id, position.contract_id, OrderType.MARKET, side, size
        )
        order = self._record(self._new_order(request, OrderStatus.OPEN, now))
        self._order_changed(order)
        self._work(order, now, arriving=True)

    def _check_loss(self, account_id: int, now: datetime) -> None:
        limit = self._daily_loss_limit
        account = self.ledger.account(account_id)
        if limit is None or account is None or not account.can_trade:
            return
        if self.ledger.day_loss(account_id, lambda c: self.market.quote(c).last) < limit:
            return
        # What TopstepX does at its daily loss limit: no more trading, nothing working,
        # nothing open. Locked first, so the fills below do not start this again.
        self._account_changed(self.ledger.lock(account_id))
        for order in list(self._by_account[account_id]):
            if order.status in LIVE:
                self._cancel(order, now)
        for position in self.ledger.positions(account_id):
            self._trade_off(position, abs(position.size), now)

    # --- records -------------------------------------------------------------------------

    def _roll(self, now: datetime) -> None:
        for account in self.ledger.roll(now):
            self._account_changed(account)

    def _tag_taken(self, account_id: int, tag: str) -> bool:
        if self._tag_uniqueness is TagUniqueness.OFF:
            return False
        holder = self._tags.get((account_id, tag))
        if holder is None:
            return False
        return self._tag_uniqueness is TagUniqueness.FOREVER or holder.status in WORKING

    def _refuses_stop(self, order: Order | OrderRequest, stop: Decimal, last: Decimal) -> bool:
        """Whether the stop through-market rule refuses this stop price.

        Simulator choice: it applies to the stops clients place; a bracket's stop loss is the
        venue's own, and it triggers at once when its entry fills through it.
        """
        if self._stop_through_market is StopThroughMarket.TRIGGER:
            return False
        if isinstance(order, Order) and (order.parent_order_id is not None or order.triggered):
            return False
        return through_market(order.side, stop, last)

    def _check(self, request: OrderRequest, account: Account) -> Contract | Outcome:
        """The contract of a valid place request, or the rejection."""
        contract = self._contracts.get(request.contract_id)
        if contract is None:
            return Outcome(PlaceOrderErrorCode.CONTRACT_NOT_FOUND, "Contract not found")
        if not contract.active_contract:
            return Outcome(PlaceOrderErrorCode.CONTRACT_NOT_ACTIVE, "Contract is not active")
        if not account.can_trade:
            return Outcome(PlaceOrderErrorCode.ACCOUNT_VIOLATION, ACCOUNT_LOCKED)
        problem = request_problem(request, contract.tick_size)
        if problem is None and request.type in STOP_PRICED and request.stop_price is not None:
            last = self.market.quote(contract.id).last
            if self._refuses_stop(request, request.stop_price, last):
                problem = OUTSIDE_RANGE  # the live text of a stop the venue would not take
        if problem is not None:
            return Outcome(PlaceOrderErrorCode.ORDER_REJECTED, problem)
        return contract

    def _new_order(self, request: OrderRequest, status: OrderStatus, now: datetime) -> Order:
        contract = self._contracts.get(request.contract_id)
        symbol_id = "" if contract is None else contract.symbol_id
        order = new_order(self._next_order_id, request, symbol_id, status, now)
        self._next_order_id += 1
        return order

    def _record(self, order: Order) -> Order:
        self._orders[order.id] = order
        # insort, not append: keeps the per-account list sorted even if the clock steps back.
        insort(self._by_account[order.account_id], order, key=_created)
        self._index(order)
        if order.custom_tag is not None:
            self._tags[(order.account_id, order.custom_tag)] = order
        return order

    def _index(self, order: Order) -> None:
        if order.status in WORKING:
            self._working[order.account_id][order.id] = order
            self._working_in.setdefault(order.contract_id, {})[order.id] = order

    def _set_status(self, order: Order, status: OrderStatus, now: datetime) -> None:
        order.status = status
        order.update_timestamp = now
        if status not in WORKING:
            self._working[order.account_id].pop(order.id, None)
            self._working_in.get(order.contract_id, {}).pop(order.id, None)

    def _cancel(self, order: Order, now: datetime) -> None:
        self._set_status(order, OrderStatus.CANCELLED, now)
        self._order_changed(order)

    def _owned_order(self, account_id: int, order_id: int) -> Order | Outcome:
        """The order if it exists and belongs to the account; codes shared by cancel and modify."""
        if not self.has_account(account_id):
            return Outcome(ModifyOrderErrorCode.ACCOUNT_NOT_FOUND, ACCOUNT_NOT_FOUND)
        order = self._orders.get(order_id)
        if order is None:
            return Outcome(ModifyOrderErrorCode.ORDER_NOT_FOUND, "Order not found")
        if order.account_id != account_id:
            # Simulator choice: an order of another account is reported as an account mismatch.
            return Outcome(
                ModifyOrderErrorCode.ACCOUNT_NOT_FOUND,
                f"Order {order_id} does not belong to account {account_id}",
            )
        return order

    # --- publishing ----------------------------------------------------------------------

    def _order_changed(self, order: Order) -> None:
        if self._publisher is not None:
            self._publisher.user(order.account_id, "GatewayUserOrder", order_model(order))

    def _account_changed(self, account: Account) -> None:
        if self._publisher is not None:
            self._publisher.user(account.id, "GatewayUserAccount", account_model(account))

    def _filled(self, fill: Fill) -> None:
        publisher = self._publisher
        if publisher is None:
            return
        account_id = fill.account.id
        publisher.user(account_id, "GatewayUserTrade", trade_model(fill.trade))
        for position in fill.positions:
            publisher.user(account_id, "GatewayUserPosition", position_model(position))
        self._account_changed(fill.account)
