"""The simulated gateway's order book: accounts, orders, positions and custom tags.

Pure state machine: no I/O and no clock reads. Callers pass `now`; simulated market prices
come from the `random.Random` handed in, so a seed reproduces a run. Enum values and error
codes are the gateway's (docs/gateway.md §5.1, §6.1).
"""

import random
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import IntEnum, StrEnum

from simulator.contracts import Contract, ContractTable, is_on_tick


class OrderType(IntEnum):
    """Gateway OrderType (§5.1). The simulator supports LIMIT, MARKET and STOP."""

    UNKNOWN = 0
    LIMIT = 1
    MARKET = 2
    STOP_LIMIT = 3
    STOP = 4
    TRAILING_STOP = 5
    JOIN_BID = 6
    JOIN_ASK = 7


class OrderSide(IntEnum):
    """Gateway OrderSide (§5.1)."""

    BID = 0  # buy
    ASK = 1  # sell


class OrderStatus(IntEnum):
    """Gateway OrderStatus (§5.1)."""

    NONE = 0
    OPEN = 1
    FILLED = 2
    CANCELLED = 3
    EXPIRED = 4
    REJECTED = 5
    PENDING = 6


class PositionType(IntEnum):
    """Gateway PositionType (§6.1): positions carry an unsigned size plus this direction."""

    UNDEFINED = 0
    LONG = 1
    SHORT = 2


class PlaceOrderErrorCode(IntEnum):
    """Gateway PlaceOrderErrorCode (§5.1)."""

    SUCCESS = 0
    ACCOUNT_NOT_FOUND = 1
    ORDER_REJECTED = 2
    INSUFFICIENT_FUNDS = 3
    ACCOUNT_VIOLATION = 4
    OUTSIDE_TRADING_HOURS = 5
    ORDER_PENDING = 6
    UNKNOWN_ERROR = 7
    CONTRACT_NOT_FOUND = 8
    CONTRACT_NOT_ACTIVE = 9
    ACCOUNT_REJECTED = 10


class CancelOrderErrorCode(IntEnum):
    """Gateway CancelOrderErrorCode (§5.1)."""

    SUCCESS = 0
    ACCOUNT_NOT_FOUND = 1
    ORDER_NOT_FOUND = 2
    REJECTED = 3
    PENDING = 4
    UNKNOWN_ERROR = 5
    ACCOUNT_REJECTED = 6


class ModifyOrderErrorCode(IntEnum):
    """Gateway ModifyOrderErrorCode (§5.1)."""

    SUCCESS = 0
    ACCOUNT_NOT_FOUND = 1
    ORDER_NOT_FOUND = 2
    REJECTED = 3
    PENDING = 4
    UNKNOWN_ERROR = 5
    ACCOUNT_REJECTED = 6
    CONTRACT_NOT_FOUND = 7


class SearchOrderErrorCode(IntEnum):
    """Gateway SearchOrderErrorCode, shared by Order/search and Order/searchOpen (§5.1)."""

    SUCCESS = 0
    ACCOUNT_NOT_FOUND = 1


class ClosePositionErrorCode(IntEnum):
    """Gateway ClosePositionErrorCode (§6.2)."""

    SUCCESS = 0
    ACCOUNT_NOT_FOUND = 1
    POSITION_NOT_FOUND = 2
    CONTRACT_NOT_FOUND = 3
    CONTRACT_NOT_ACTIVE = 4
    ORDER_REJECTED = 5
    ORDER_PENDING = 6
    UNKNOWN_ERROR = 7
    ACCOUNT_REJECTED = 8


class TagUniqueness(StrEnum):
    """How long a customTag stays taken within an account."""

    FOREVER = "forever"  # the gateway's rule (§5.8), rejected orders included
    OPEN = "open"  # only while the order holding it is Open or Pending, as many venues do
    OFF = "off"  # never checked


WORKING = frozenset({OrderStatus.OPEN, OrderStatus.PENDING})
SUPPORTED_TYPES = frozenset({OrderType.LIMIT, OrderType.MARKET, OrderType.STOP})
MIN_STOP_LOSS_TICKS = 4  # §5.7
# Largest random-walk step of the simulated market between two fills.
MAX_PRICE_STEP_TICKS = 3
# Order IDs are int64 on the wire; starting well above 1 makes them look like real ones.
FIRST_ORDER_ID = 1001

ACCOUNT_NOT_FOUND = "Account not found"
TAG_IN_USE = "Specified custom tag is already in use"  # §5.8, verbatim


@dataclass(frozen=True, slots=True)
class Account:
    """A trading account (§3 TradingAccountModel)."""

    id: int
    name: str
    balance: Decimal
    can_trade: bool = True
    is_visible: bool = True
    simulated: bool = True


@dataclass(slots=True)
class Order:
    """One order as Order/search reports it (§5.3), plus `parent_order_id` for bracket legs."""

    id: int
    account_id: int
    contract_id: str
    symbol_id: str
    creation_timestamp: datetime
    update_timestamp: datetime
    status: OrderStatus
    type: int  # int, not OrderType: a rejected order keeps whatever type the client sent
    side: int
    size: int
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    fill_volume: int = 0
    filled_price: Decimal | None = None
    custom_tag: str | None = None
    # Simulator extension: the entry order a bracket leg belongs to.
    parent_order_id: int | None = None


@dataclass(slots=True)
class Position:
    """Net position of one account in one contract."""

    id: int
    account_id: int
    contract_id: str
    creation_timestamp: datetime
    size: int  # signed: > 0 long, < 0 short; never 0 (flat positions are removed)
    average_price: Decimal

    @property
    def type(self) -> PositionType:
        """Direction as the gateway reports it."""
        return PositionType.LONG if self.size > 0 else PositionType.SHORT


@dataclass(frozen=True, slots=True)
class Bracket:
    """A stop-loss or take-profit bracket: ticks are signed, relative to the entry price."""

    ticks: int
    type: int


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """What Order/place asks for (§5.2)."""

    account_id: int
    contract_id: str
    type: int
    side: int
    size: int
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    custom_tag: str | None = None
    stop_loss: Bracket | None = None
    take_profit: Bracket | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """Result of a book operation: error code 0 is success; order_id is set by a place."""

    error_code: int = 0
    error_message: str | None = None
    order_id: int | None = None

    @property
    def success(self) -> bool:
        """Whether the operation succeeded."""
        return self.error_code == 0


SUCCESS = Outcome()


def bracket_problem(
    side: OrderSide, stop_loss: Bracket | None, take_profit: Bracket | None
) -> str | None:
    """Why the live service would reject these bracket ticks, or None (§5.7).

    Ticks point the way price must move from the entry: a long's stop is below it (< 0) and
    its target above (> 0); a short's the reverse. Messages are the observed live texts where
    one exists; the long take-profit text is constructed by analogy.
    """
    long = side == OrderSide.BID
    reason: str | None = None
    if stop_loss is not None:
        ticks = stop_loss.ticks
        if long and ticks >= 0:
            reason = "Ticks should be less than zero when longing."
        elif not long and ticks <= 0:
            # §5.7: the live text for a SELL with a negative stop loss.
            reason = "Stop loss tick value should be at least 4 ticks."
        elif abs(ticks) < MIN_STOP_LOSS_TICKS:
            reason = "Price should be at least 4 ticks away."
        if reason is not None:
            return f"Invalid stop loss ticks ({ticks}). {reason}"
    if take_profit is not None:
        ticks = take_profit.ticks
        if long and ticks <= 0:
            reason = "Ticks should be greater than zero when longing."
        elif not long and ticks >= 0:
            reason = "Ticks should be less than zero when going short."
        if reason is not None:
            return f"Invalid take profit ticks ({ticks}). {reason}"
    return None


def price_problem(kind: str, price: Decimal, tick_size: Decimal) -> str | None:
    """Why a given limit or stop price is unacceptable, or None. `kind` is "limit" or "stop"."""
    if not price.is_finite() or price <= 0:
        # §5.8: the live text for a price the venue will not take.
        return "Invalid price. Price is outside allowed range."
    if not is_on_tick(price, tick_size):
        # Simulator choice: no live text is known for an off-tick price (§5.8, §9.4).
        return f"Invalid {kind} price. Price is not aligned to tick size"
    return None


def _created(order: Order) -> datetime:
    return order.creation_timestamp


class Book:
    """Orders, positions and custom tags of every account; the single source of truth."""

    def __init__(
        self,
        accounts: Iterable[Account],
        contracts: ContractTable,
        rng: random.Random,
        *,
        tag_uniqueness: TagUniqueness = TagUniqueness.FOREVER,
        duplicate_tag_code: int = PlaceOrderErrorCode.ORDER_REJECTED,
    ) -> None:
        self._accounts = {a.id: a for a in accounts}
        self._contracts = contracts
        self._rng = rng
        self._tag_uniqueness = tag_uniqueness
        self._duplicate_tag_code = duplicate_tag_code
        self._next_order_id = FIRST_ORDER_ID
        self._next_position_id = 1
        self.clear()

    def clear(self) -> None:
        """Forget every order, position, tag and market move; IDs keep counting up.

        Simulator choice: IDs are never reused, so a client that survives a reset cannot
        mistake a new order for one it placed before.
        """
        self._orders: dict[int, Order] = {}
        self._by_account: dict[int, list[Order]] = {a: [] for a in self._accounts}
        self._working: dict[int, dict[int, Order]] = {a: {} for a in self._accounts}
        self._children: dict[int, list[Order]] = {}
        self._tags: dict[tuple[int, str], Order] = {}
        self._positions: dict[tuple[int, str], Position] = {}
        self._prices: dict[str, Decimal] = {}

    # --- queries -------------------------------------------------------------------------

    def has_account(self, account_id: int) -> bool:
        """Whether the account exists."""
        return account_id in self._accounts

    def accounts(self) -> list[Account]:
        """Every account."""
        return list(self._accounts.values())

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
        """Orders of an account that are Open or Pending (§5.4)."""
        return list(self._working.get(account_id, {}).values())

    def positions(self, account_id: int) -> list[Position]:
        """Open positions of an account."""
        return [p for p in self._positions.values() if p.account_id == account_id]

    # --- commands ------------------------------------------------------------------------

    def place(self, request: OrderRequest, now: datetime) -> Outcome:
        """Order/place (§5.2): validate, then fill a market order or rest a limit/stop one."""
        if request.account_id not in self._accounts:
            return Outcome(PlaceOrderErrorCode.ACCOUNT_NOT_FOUND, ACCOUNT_NOT_FOUND)
        # Simulator choice: an empty tag is no tag.
        tag = request.custom_tag or None
        if tag is not None and self._tag_taken(request.account_id, tag):
            return Outcome(self._duplicate_tag_code, TAG_IN_USE)
        checked = self._check(request)
        if isinstance(checked, Outcome):
            if tag is not None:
                # §5.8: "TopStep reserves tags even for orders that themselves got rejected",
                # so the rejected order is recorded (it then shows in Order/search).
                self._record(self._new_order(request, OrderStatus.REJECTED, now))
            return checked
        contract = checked
        order = self._record(self._new_order(request, OrderStatus.OPEN, now))
        entry_price: Decimal | None
        if order.type == OrderType.MARKET:
            entry_price = self._fill(order, contract, now)
            leg_status = OrderStatus.OPEN
        else:
            entry_price = order.limit_price if order.type == OrderType.LIMIT else order.stop_price
            # Legs of a resting entry wait, "suspended", until the entry fills.
            leg_status = OrderStatus.PENDING
        assert entry_price is not None  # _check guarantees the entry's price
        self._add_bracket_legs(order, request, contract, entry_price, leg_status, now)
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
        """Order/modify (§5.6): change size or price of an Open or Pending order.

        Fields left None are unchanged; asking for the values the order already has is a
        successful no-op.
        """
        found = self._owned_order(account_id, order_id)
        if isinstance(found, Outcome):
            return found
        order = found
        rejected = ModifyOrderErrorCode.REJECTED
        if order.status not in WORKING:
            return Outcome(rejected, f"Order is not open (status {_status_name(order.status)})")
        if size is not None and size < 1:
            return Outcome(rejected, "Invalid order size")
        tick_size = self._contracts[order.contract_id].tick_size
        if limit_price is not None:
            if order.type != OrderType.LIMIT:
                return Outcome(rejected, "Limit price can only be modified on a limit order")
            problem = price_problem("limit", limit_price, tick_size)
            if problem is not None:
                return Outcome(rejected, problem)
        if stop_price is not None:
            if order.type != OrderType.STOP:
                return Outcome(rejected, "Stop price can only be modified on a stop order")
            problem = price_problem("stop", stop_price, tick_size)
            if problem is not None:
                return Outcome(rejected, problem)
        if trail_price is not None:
            return Outcome(rejected, "Trail price can only be modified on a trailing stop order")
        changed = False
        if size is not None and size != order.size:
            order.size, changed = size, True
        if limit_price is not None and limit_price != order.limit_price:
            order.limit_price, changed = limit_price, True
        if stop_price is not None and stop_price != order.stop_price:
            order.stop_price, changed = stop_price, True
        if changed:
            order.update_timestamp = now
        return SUCCESS

    def cancel(self, account_id: int, order_id: int, now: datetime) -> Outcome:
        """Order/cancel (§5.5): cancel an Open or Pending order and its bracket legs."""
        found = self._owned_order(account_id, order_id)
        if isinstance(found, Outcome):
            return found
        order = found
        rejected = CancelOrderErrorCode.REJECTED
        if order.status == OrderStatus.FILLED:
            return Outcome(rejected, "Order is already filled")
        if order.status == OrderStatus.CANCELLED:
            return Outcome(rejected, "Order is already cancelled")
        if order.status not in WORKING:
            return Outcome(rejected, f"Order is not open (status {_status_name(order.status)})")
        self._set_status(order, OrderStatus.CANCELLED, now)
        for leg in self._children.get(order.id, []):
            if leg.status in WORKING:
                self._set_status(leg, OrderStatus.CANCELLED, now)
        return SUCCESS

    def close_position(self, account_id: int, contract_id: str, now: datetime) -> Outcome:
        """Position/closeContract (§6.2): flatten with a market order.

        §5.8: a market close does not cancel working bracket legs; neither does this.
        """
        if account_id not in self._accounts:
            return Outcome(ClosePositionErrorCode.ACCOUNT_NOT_FOUND, ACCOUNT_NOT_FOUND)
        contract = self._contracts.get(contract_id)
        if contract is None:
            return Outcome(ClosePositionErrorCode.CONTRACT_NOT_FOUND, "Contract not found")
        position = self._positions.get((account_id, contract_id))
        if position is None:
            return Outcome(ClosePositionErrorCode.POSITION_NOT_FOUND, "Position not found")
        side = OrderSide.ASK if position.size > 0 else OrderSide.BID
        request = OrderRequest(account_id, contract_id, OrderType.MARKET, side, abs(position.size))
        self._fill(self._record(self._new_order(request, OrderStatus.OPEN, now)), contract, now)
        return SUCCESS

    # --- internals -----------------------------------------------------------------------

    def _tag_taken(self, account_id: int, tag: str) -> bool:
        if self._tag_uniqueness is TagUniqueness.OFF:
            return False
        holder = self._tags.get((account_id, tag))
        if holder is None:
            return False
        return self._tag_uniqueness is TagUniqueness.FOREVER or holder.status in WORKING

    def _check(self, request: OrderRequest) -> Contract | Outcome:
        """The contract of a valid place request, or the rejection."""
        contract = self._contracts.get(request.contract_id)
        if contract is None:
            return Outcome(PlaceOrderErrorCode.CONTRACT_NOT_FOUND, "Contract not found")
        rejected = PlaceOrderErrorCode.ORDER_REJECTED
        if request.type not in SUPPORTED_TYPES:
            # Simulator choice: types the simulator does not model are business rejections.
            return Outcome(rejected, f"Unsupported order type ({request.type})")
        if request.side not in (OrderSide.BID, OrderSide.ASK):
            return Outcome(rejected, f"Invalid order side ({request.side})")
        if request.size < 1:
            return Outcome(rejected, "Invalid order size")
        for kind, price, needed in (
            ("limit", request.limit_price, request.type == OrderType.LIMIT),
            ("stop", request.stop_price, request.type == OrderType.STOP),
        ):
            if not needed:
                continue
            if price is None:
                # §5.8: "Invalid limit price. Limit price not set."; the stop text is analogous.
                return Outcome(
                    rejected, f"Invalid {kind} price. {kind.capitalize()} price not set."
                )
            problem = price_problem(kind, price, contract.tick_size)
            if problem is not None:
                return Outcome(rejected, problem)
        problem = bracket_problem(OrderSide(request.side), request.stop_loss, request.take_profit)
        if problem is not None:
            return Outcome(rejected, problem)
        return contract

    def _new_order(self, request: OrderRequest, status: OrderStatus, now: datetime) -> Order:
        contract = self._contracts.get(request.contract_id)
        order = Order(
            id=self._next_order_id,
            account_id=request.account_id,
            contract_id=request.contract_id,
            symbol_id=contract.symbol_id if contract is not None else "",
            creation_timestamp=now,
            update_timestamp=now,
            status=status,
            type=request.type,
            side=request.side,
            size=request.size,
            # Simulator choice: a price the order type does not use is dropped.
            limit_price=request.limit_price if request.type == OrderType.LIMIT else None,
            stop_price=request.stop_price if request.type == OrderType.STOP else None,
            custom_tag=request.custom_tag or None,
        )
        self._next_order_id += 1
        return order

    def _record(self, order: Order) -> Order:
        self._orders[order.id] = order
        # insort, not append: keeps the per-account list sorted even if the clock steps back.
        insort(self._by_account[order.account_id], order, key=_created)
        if order.status in WORKING:
            self._working[order.account_id][order.id] = order
        if order.custom_tag is not None:
            self._tags[(order.account_id, order.custom_tag)] = order
        return order

    def _set_status(self, order: Order, status: OrderStatus, now: datetime) -> None:
        order.status = status
        order.update_timestamp = now
        if status not in WORKING:
            self._working[order.account_id].pop(order.id, None)

    def _add_bracket_legs(
        self,
        entry: Order,
        request: OrderRequest,
        contract: Contract,
        entry_price: Decimal,
        status: OrderStatus,
        now: datetime,
    ) -> None:
        """Record the stop-loss (Stop) and take-profit (Limit) legs of a bracketed entry.

        Simulator choice: the bracket's `type` is not used; legs are always Stop and Limit,
        the types clients send (§5.2). They are separate orders on the opposite side, same size.
        """
        exit_side = OrderSide.ASK if entry.side == OrderSide.BID else OrderSide.BID
        legs: list[tuple[OrderType, Decimal | None, Decimal | None]] = []
        if request.stop_loss is not None:
            stop = entry_price + request.stop_loss.ticks * contract.tick_size
            legs.append((OrderType.STOP, None, stop))
        if request.take_profit is not None:
            limit = entry_price + request.take_profit.ticks * contract.tick_size
            legs.append((OrderType.LIMIT, limit, None))
        for leg_type, limit_price, stop_price in legs:
            leg = Order(
                id=self._next_order_id,
                account_id=entry.account_id,
                contract_id=entry.contract_id,
                symbol_id=entry.symbol_id,
                creation_timestamp=now,
                update_timestamp=now,
                status=status,
                type=leg_type,
                side=exit_side,
                size=entry.size,
                limit_price=limit_price,
                stop_price=stop_price,
                parent_order_id=entry.id,
            )
            self._next_order_id += 1
            self._children.setdefault(entry.id, []).append(self._record(leg))

    def _fill(self, order: Order, contract: Contract, now: datetime) -> Decimal:
        """Fill a market order completely at the next simulated price; returns that price."""
        price = self._next_price(contract)
        order.fill_volume = order.size
        order.filled_price = price
        self._set_status(order, OrderStatus.FILLED, now)
        signed_size = order.size if order.side == OrderSide.BID else -order.size
        self._apply_fill(order.account_id, contract.id, signed_size, price, now)
        return price

    def _next_price(self, contract: Contract) -> Decimal:
        """Random-walk the contract's market a few whole ticks, never below one tick."""
        step = self._rng.randint(-MAX_PRICE_STEP_TICKS, MAX_PRICE_STEP_TICKS)
        last = self._prices.get(contract.id, contract.reference_price)
        price = max(last + step * contract.tick_size, contract.tick_size)
        self._prices[contract.id] = price
        return price

    def _apply_fill(
        self, account_id: int, contract_id: str, signed_size: int, price: Decimal, now: datetime
    ) -> None:
        key = (account_id, contract_id)
        position = self._positions.get(key)
        old_size = position.size if position is not None else 0
        new_size = old_size + signed_size
        if new_size == 0:
            self._positions.pop(key, None)
        elif position is None or old_size * new_size < 0:
            # Opened, or flipped through flat: the new net position starts at this fill.
            self._positions[key] = Position(
                self._next_position_id, account_id, contract_id, now, new_size, price
            )
            self._next_position_id += 1
        else:
            if abs(new_size) > abs(old_size):
                # Added to: volume-weighted average. Reducing leaves the average alone.
                total = position.average_price * abs(old_size) + price * abs(signed_size)
                position.average_price = total / abs(new_size)
            position.size = new_size

    def _owned_order(self, account_id: int, order_id: int) -> Order | Outcome:
        """The order if it exists and belongs to the account; codes shared by cancel and modify."""
        if account_id not in self._accounts:
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


def _status_name(status: OrderStatus) -> str:
    return status.name.capitalize()
