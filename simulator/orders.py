"""Orders as the gateway models them: enums, error codes, the order record, the checks of a
place request. Pure data and pure functions; the book (book.py) moves orders through them.

Enum values and error codes are the gateway's (docs/gateway.md §5.1, §6.1; OrderStatus 7
and 8 from the spec's newer snapshot, jaypatrick/TopstepApi OpenAPI/TopstepClient.json).
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import IntEnum, StrEnum

from simulator.contracts import is_on_tick


class OrderType(IntEnum):
    """Gateway OrderType (§5.1)."""

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

    @property
    def opposite(self) -> "OrderSide":
        """The other side."""
        return OrderSide.ASK if self is OrderSide.BID else OrderSide.BID

    @property
    def sign(self) -> int:
        """+1 for a buy, -1 for a sell: the sign of its effect on a position."""
        return 1 if self is OrderSide.BID else -1


class OrderStatus(IntEnum):
    """Gateway OrderStatus (§5.1 and the spec's newer enum, which adds 7 and 8)."""

    NONE = 0
    OPEN = 1
    FILLED = 2
    CANCELLED = 3
    EXPIRED = 4
    REJECTED = 5
    PENDING = 6
    # Never produced: a cancel here takes effect within its request.
    PENDING_CANCELLATION = 7
    # Bracket legs wait in this state until their entry fills.
    SUSPENDED = 8


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


class SearchErrorCode(IntEnum):
    """Gateway SearchOrderErrorCode (§5.1); SearchPositionErrorCode and SearchTradeErrorCode
    (§6.1, §6.4) have the same two values."""

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


class PartialClosePositionErrorCode(IntEnum):
    """Gateway PartialClosePositionErrorCode (§6.3)."""

    SUCCESS = 0
    ACCOUNT_NOT_FOUND = 1
    POSITION_NOT_FOUND = 2
    CONTRACT_NOT_FOUND = 3
    CONTRACT_NOT_ACTIVE = 4
    INVALID_CLOSE_SIZE = 5
    ORDER_REJECTED = 6
    ORDER_PENDING = 7
    UNKNOWN_ERROR = 8
    ACCOUNT_REJECTED = 9


class TagUniqueness(StrEnum):
    """How long a customTag stays taken within an account."""

    FOREVER = "forever"  # the gateway's rule (§5.8), rejected orders included
    OPEN = "open"  # only while the order holding it is Open or Pending, as many venues do
    OFF = "off"  # never checked


class StopThroughMarket(StrEnum):
    """What a stop placed on the wrong side of the market gets (a buy stop at or below the
    last price, a sell stop at or above it)."""

    REJECT = "reject"  # what CME Globex does; the gateway's own text is not known
    TRIGGER = "trigger"  # it triggers at once and fills at market


# Orders Order/searchOpen returns and the matcher works; Suspended legs are neither (§5.4).
WORKING = frozenset({OrderStatus.OPEN, OrderStatus.PENDING})
# Orders that can still be modified or cancelled.
LIVE = WORKING | {OrderStatus.SUSPENDED}
STOP_TYPES = frozenset({OrderType.STOP, OrderType.STOP_LIMIT, OrderType.TRAILING_STOP})
LIMIT_PRICED = frozenset(
    {OrderType.LIMIT, OrderType.STOP_LIMIT, OrderType.JOIN_BID, OrderType.JOIN_ASK}
)
STOP_PRICED = frozenset({OrderType.STOP, OrderType.STOP_LIMIT})
PLACEABLE = frozenset(OrderType) - {OrderType.UNKNOWN}
MIN_STOP_LOSS_TICKS = 4  # §5.7

ACCOUNT_NOT_FOUND = "Account not found"
TAG_IN_USE = "Specified custom tag is already in use"  # §5.8, verbatim
# §5.8: the live text for a price the venue will not take.
OUTSIDE_RANGE = "Invalid price. Price is outside allowed range."


@dataclass(slots=True)
class Order:
    """One order as Order/search reports it (§5.3), plus what the venue needs to work it."""

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
    stop_price: Decimal | None = None  # a trailing stop's current stop
    fill_volume: int = 0
    filled_price: Decimal | None = None  # the average price of its fills
    custom_tag: str | None = None
    # Simulator extension on the wire: the entry order a bracket leg belongs to.
    parent_order_id: int | None = None
    # Not on the wire (OrderModel has no trailPrice, §5.3):
    trail_price: Decimal | None = None  # a trailing stop's distance from the best price
    best_price: Decimal | None = None  # the best last price a trailing stop has seen
    triggered: bool = False  # a stop that triggered and now works as a market or limit order
    # A bracket leg's signed ticks from its entry's fill, until the client moves its price.
    bracket_ticks: int | None = None

    @property
    def remaining(self) -> int:
        """Contracts still to fill."""
        return self.size - self.fill_volume


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
    trail_price: Decimal | None = None
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
    """Why a limit, stop or trail price is unacceptable, or None. `kind` names it in the text."""
    if not price.is_finite() or price <= 0:
        return OUTSIDE_RANGE
    if not is_on_tick(price, tick_size):
        # Simulator choice: no live text is known for an off-tick price (§5.8, §9.4).
        return f"Invalid {kind} price. Price is not aligned to tick size"
    return None


def request_problem(request: OrderRequest, tick_size: Decimal) -> str | None:
    """Why a place request is unacceptable in itself (type, side, size, prices, brackets),
    or None; each is an OrderRejected (errorCode 2) with this text."""
    if request.type not in PLACEABLE:
        return f"Unsupported order type ({request.type})"
    if request.side not in (OrderSide.BID, OrderSide.ASK):
        return f"Invalid order side ({request.side})"
    if request.size < 1:
        return "Invalid order size"
    order_type = OrderType(request.type)
    for kind, value, needed in (
        ("limit", request.limit_price, order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT)),
        ("stop", request.stop_price, order_type in STOP_PRICED),
        ("trail", request.trail_price, order_type == OrderType.TRAILING_STOP),
    ):
        if not needed:
            continue
        if value is None:
            # §5.8: "Invalid limit price. Limit price not set."; the others are analogous.
            return f"Invalid {kind} price. {kind.capitalize()} price not set."
        problem = price_problem(kind, value, tick_size)
        if problem is not None:
            return problem
    return bracket_problem(OrderSide(request.side), request.stop_loss, request.take_profit)


def new_order(
    order_id: int, request: OrderRequest, symbol_id: str, status: OrderStatus, now: datetime
) -> Order:
    """The record of a place request. Simulator choice: a price its type does not use is
    dropped (JoinBid and JoinAsk get theirs from the market)."""
    return Order(
        id=order_id,
        account_id=request.account_id,
        contract_id=request.contract_id,
        symbol_id=symbol_id,
        creation_timestamp=now,
        update_timestamp=now,
        status=status,
        type=request.type,
        side=request.side,
        size=request.size,
        limit_price=request.limit_price
        if request.type in (OrderType.LIMIT, OrderType.STOP_LIMIT)
        else None,
        stop_price=request.stop_price if request.type in STOP_PRICED else None,
        trail_price=request.trail_price if request.type == OrderType.TRAILING_STOP else None,
        custom_tag=request.custom_tag or None,
    )


def status_name(status: OrderStatus) -> str:
    """A status as rejection messages name it ("Filled")."""
    return status.name.capitalize()


def bracket_legs(entry: Order, request: OrderRequest, first_id: int, now: datetime) -> list[Order]:
    """The stop-loss and take-profit legs of a bracketed entry, Suspended and not priced yet.

    Simulator choice: the bracket's `type` is not used; legs are always a Stop (stop loss)
    and a Limit (take profit), the types clients send (§5.2), on the entry's other side.
    """
    legs: list[Order] = []
    for bracket, leg_type in (
        (request.stop_loss, OrderType.STOP),
        (request.take_profit, OrderType.LIMIT),
    ):
        if bracket is None:
            continue
        legs.append(
            Order(
                id=first_id + len(legs),
                account_id=entry.account_id,
                contract_id=entry.contract_id,
                symbol_id=entry.symbol_id,
                creation_timestamp=now,
                update_timestamp=now,
                status=OrderStatus.SUSPENDED,
                type=leg_type,
                side=OrderSide(entry.side).opposite,
                size=entry.size,
                parent_order_id=entry.id,
                bracket_ticks=bracket.ticks,
            )
        )
    return legs


def price_leg(leg: Order, base: Decimal, tick_size: Decimal) -> None:
    """Put a bracket leg its ticks away from the entry's price `base`."""
    assert leg.bracket_ticks is not None
    at = base + leg.bracket_ticks * tick_size
    if leg.type == OrderType.STOP:
        leg.stop_price = at
    else:
        leg.limit_price = at
