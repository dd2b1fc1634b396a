"""Validation rules for orders, shared by the producer (before it enqueues) and the worker
(after it decodes, and in the broker client before anything goes on the wire).

Pure functions: each returns the normalised value or raises ``InvalidOrder`` whose ``code``
names the rule. Tick alignment needs the contract's tick size, so it is checked where the
contract is known (the worker), with the same ``check_on_tick``.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation
from typing import Final, cast

import msgspec

from ow_core.tags import DEFAULT_TAG_MAX_LEN, tag_room
from producer.contract import (
    CancelAll,
    CancelOrder,
    ClosePosition,
    Flatten,
    Intent,
    ModifyOrder,
    OrderType,
    PlaceOrder,
    Side,
)
from producer.errors import InvalidOrder

SIDES: Final = ("BUY", "SELL")
ORDER_TYPES: Final = (
    "market", "limit", "stop", "stop_limit", "trailing_stop", "join_bid", "join_ask"
)  # fmt: skip
# The prices each order type carries: exactly these, no others.
_NEEDS_LIMIT: Final = frozenset({"limit", "stop_limit"})
_NEEDS_STOP: Final = frozenset({"stop", "stop_limit"})
# The gateway's size, account and order IDs are int32/int64 (docs/gateway.md §5).
MAX_INT32: Final = 2**31 - 1
MAX_INT64: Final = 2**63 - 1
MAX_TAG_LEN: Final = 64
MAX_REQUEST_ID: Final = 128  # the contract's limit (producer/contract.py)
MAX_SYMBOL_LEN: Final = 32
# Letters, digits and ._- only: the worker derives keys and its own request IDs from a
# request ID with separators outside this set (the good-til-time cancel is "<id>:gtt"),
# so no request ID a strategy sends can collide with one of them.
REQUEST_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9._-]+")
MAX_TIMEOUT_S: Final = 24 * 3600.0
"""The longest a call may wait, and so an intent may live (its deadline)."""
MAX_CANCEL_AFTER_S: Final = 7 * 24 * 3600.0
"""The longest good-til-time: a week (the gateway's sessions are daily)."""


def _whole_number(value: object, field: str, code: str, *, upper: int) -> int:
    """A positive whole number: an int, or a float with no fraction (2.0), never a bool."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidOrder(
            f"{field} must be a whole number, got {type(value).__name__} {value!r}", code=code
        )
    if isinstance(value, float) and (not math.isfinite(value) or not value.is_integer()):
        raise InvalidOrder(f"{field} must be a whole number, got {value!r}", code=code)
    number = int(value)
    if number <= 0:
        raise InvalidOrder(f"{field} must be greater than 0, got {value!r}", code=code)
    if number > upper:
        raise InvalidOrder(f"{field} is too large: {value!r}", code=code)
    return number


def check_quantity(value: object, field: str = "quantity") -> int:
    """Contracts to trade: a whole number > 0."""
    return _whole_number(value, field, "invalid_quantity", upper=MAX_INT32)


def check_ticks(value: object, field: str) -> int | None:
    """A bracket distance in ticks: absent, or a whole number > 0 (the client signs it)."""
    if value is None:
        return None
    return _whole_number(value, field, "invalid_ticks", upper=MAX_INT32)


def check_account_id(value: object) -> int:
    """A broker account ID (int32 on the wire)."""
    return _whole_number(value, "account_id", "invalid_account", upper=MAX_INT32)


def check_order_id(value: object) -> int:
    """A broker order ID (int64 on the wire)."""
    return _whole_number(value, "order_id", "invalid_order_id", upper=MAX_INT64)


def check_price(value: object, field: str) -> float | None:
    """A price: absent, or a finite number > 0."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidOrder(
            f"{field} must be a number, got {type(value).__name__} {value!r}",
            code="invalid_price",
        )
    if not math.isfinite(value) or value <= 0:
        raise InvalidOrder(
            f"{field} must be a finite number > 0, got {value!r}", code="invalid_price"
        )
    return float(value)


def check_side(value: object) -> Side:
    """BUY or SELL (any case)."""
    if isinstance(value, str) and value.upper() in SIDES:
        return cast(Side, value.upper())
    raise InvalidOrder(f"side must be BUY or SELL, got {value!r}", code="invalid_side")


def check_order_type(value: object) -> OrderType:
    """One of ``ORDER_TYPES`` (any case)."""
    if isinstance(value, str) and value.lower() in ORDER_TYPES:
        return cast(OrderType, value.lower())
    raise InvalidOrder(
        f"order_type must be one of {', '.join(ORDER_TYPES)}; got {value!r}",
        code="invalid_order_type",
    )


def check_symbol(value: object) -> str:
    """A contract symbol such as MNQ (upper-cased)."""
    if (
        not isinstance(value, str)
        or not value.strip()
        or len(value) > MAX_SYMBOL_LEN
        or not value.isprintable()
    ):
        raise InvalidOrder(
            f"symbol must be a non-empty name like 'MNQ', got {value!r}", code="invalid_symbol"
        )
    return value.strip().upper()


def check_request_id(value: object) -> str:
    """A request ID: 1 to 128 letters, digits, dots, underscores or hyphens."""
    if (
        not isinstance(value, str)
        or not 0 < len(value) <= MAX_REQUEST_ID
        or not REQUEST_ID_PATTERN.fullmatch(value)
    ):
        raise InvalidOrder(
            f"request_id must be 1 to {MAX_REQUEST_ID} letters, digits, '.', '_' or '-', "
            f"got {value!r}",
            code="invalid_request_id",
        )
    return value


def check_timeout(value: object) -> float:
    """How long a call waits for its result (seconds): finite, > 0, at most a day."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 < value <= MAX_TIMEOUT_S
    ):
        raise InvalidOrder(
            f"timeout must be a number of seconds > 0 and <= {MAX_TIMEOUT_S:g}, got {value!r}",
            code="invalid_timeout",
        )
    return float(value)


def check_lifetime(created_at: int, deadline: int) -> None:
    """An intent's deadline is at most ``MAX_TIMEOUT_S`` after its creation (one before
    its creation is simply passed: the worker answers it ``expired``)."""
    if deadline - created_at > MAX_TIMEOUT_S * 1000:
        raise InvalidOrder(
            f"deadline must be at most {MAX_TIMEOUT_S:g} s after created_at, "
            f"got {(deadline - created_at) / 1000:g} s",
            code="invalid_timeout",
        )


def check_cancel_after(value: object) -> float | None:
    """Good-til-time seconds: absent, or finite, > 0 and at most a week."""
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 < value <= MAX_CANCEL_AFTER_S
    ):
        raise InvalidOrder(
            f"cancel_after must be seconds > 0 and <= {MAX_CANCEL_AFTER_S:g} (a week), "
            f"got {value!r}",
            code="invalid_cancel_after",
        )
    return float(value)


def check_custom_tag(value: object) -> str | None:
    """A strategy's own tag: absent, or printable text of at most MAX_TAG_LEN characters."""
    if value is None:
        return None
    if (
        not isinstance(value, str)
        or not value
        or len(value) > MAX_TAG_LEN
        or not value.isprintable()
    ):
        raise InvalidOrder(
            f"custom_tag must be printable text of 1 to {MAX_TAG_LEN} characters, got {value!r}",
            code="invalid_custom_tag",
        )
    return value


def check_tag_fits(
    custom_tag: str | None, request_id: str, max_len: int = DEFAULT_TAG_MAX_LEN
) -> None:
    """The broker's ``customTag`` is the strategy's tag and the request key (``ow_core.tags``)
    within the gateway's length: a tag that would be cut is refused, not cut."""
    if custom_tag is None:
        return
    room = tag_room(request_id, max_len)
    if len(custom_tag) > room:
        raise InvalidOrder(
            f"custom_tag is {len(custom_tag)} characters; {room} fit in the broker's tag "
            f"beside this request's key ({max_len} in all)",
            code="invalid_custom_tag",
        )


def check_place(
    order_type: OrderType,
    limit_price: float | None,
    stop_price: float | None,
    trail_ticks: int | None = None,
) -> None:
    """Cross-field rules of a new order: each type carries exactly the prices it needs
    (a stop-limit both, a trailing stop its trail in ticks, the joins none: they take the
    best bid or ask)."""
    if order_type in _NEEDS_LIMIT and limit_price is None:
        raise InvalidOrder(f"a {order_type} order needs limit_price", code="missing_limit_price")
    if order_type in _NEEDS_STOP and stop_price is None:
        raise InvalidOrder(f"a {order_type} order needs stop_price", code="missing_stop_price")
    if order_type == "trailing_stop" and trail_ticks is None:
        raise InvalidOrder("a trailing_stop order needs trail_ticks", code="missing_trail_ticks")
    # A price on the wrong type is almost always a strategy bug (a "market" order the
    # author believes is a limit); refusing it is safer than silently dropping it.
    if order_type not in _NEEDS_LIMIT and limit_price is not None:
        raise InvalidOrder(
            f"limit_price is only for limit and stop_limit orders (order_type is {order_type})",
            code="unexpected_limit_price",
        )
    if order_type not in _NEEDS_STOP and stop_price is not None:
        raise InvalidOrder(
            f"stop_price is only for stop and stop_limit orders (order_type is {order_type})",
            code="unexpected_stop_price",
        )
    if order_type != "trailing_stop" and trail_ticks is not None:
        raise InvalidOrder(
            f"trail_ticks is only for trailing_stop orders (order_type is {order_type})",
            code="unexpected_trail_ticks",
        )


def check_modify(quantity: int | None, limit_price: float | None, stop_price: float | None) -> None:
    """A modify must change something."""
    if quantity is None and limit_price is None and stop_price is None:
        raise InvalidOrder(
            "a modify needs at least one of quantity, limit_price, stop_price", code="empty_modify"
        )


def check_on_tick(price: float, tick_size: float, field: str) -> None:
    """The price must sit on the contract's tick grid (decimal arithmetic, not float modulo)."""
    try:
        aligned = Decimal(repr(price)) % Decimal(repr(tick_size)) == 0
    except InvalidOperation:
        aligned = False
    if not aligned:
        raise InvalidOrder(
            f"{field} {price!r} is not a multiple of the tick size {tick_size!r}",
            code="price_off_tick",
        )


def validate_intent(intent: Intent, *, tag_max_len: int | None = DEFAULT_TAG_MAX_LEN) -> Intent:
    """Every rule that needs no broker data, applied to a whole intent.

    Returns the intent normalised (side upper-cased, whole-number floats made ints, ...).
    Raises ``InvalidOrder`` naming the first rule that failed.
    """
    check_request_id(intent.request_id)
    check_lifetime(intent.created_at, intent.deadline)
    account_id = check_account_id(intent.account_id)
    if isinstance(intent, PlaceOrder):
        order_type = check_order_type(intent.order_type)
        limit_price = check_price(intent.limit_price, "limit_price")
        stop_price = check_price(intent.stop_price, "stop_price")
        trail_ticks = check_ticks(intent.trail_ticks, "trail_ticks")
        check_place(order_type, limit_price, stop_price, trail_ticks)
        cancel_after = check_cancel_after(intent.cancel_after)
        custom_tag = check_custom_tag(intent.custom_tag)
        if tag_max_len is not None:
            check_tag_fits(custom_tag, intent.request_id, tag_max_len)
        return msgspec.structs.replace(
            intent,
            account_id=account_id,
            symbol=check_symbol(intent.symbol),
            side=check_side(intent.side),
            quantity=check_quantity(intent.quantity),
            order_type=order_type,
            limit_price=limit_price,
            stop_price=stop_price,
            stop_loss_ticks=check_ticks(intent.stop_loss_ticks, "stop_loss_ticks"),
            take_profit_ticks=check_ticks(intent.take_profit_ticks, "take_profit_ticks"),
            trail_ticks=trail_ticks,
            custom_tag=custom_tag,
            cancel_after=cancel_after,
        )
    if isinstance(intent, ClosePosition):
        quantity = None if intent.quantity is None else check_quantity(intent.quantity)
        return msgspec.structs.replace(
            intent, account_id=account_id, symbol=check_symbol(intent.symbol), quantity=quantity
        )
    if isinstance(intent, CancelAll | Flatten):
        symbol = None if intent.symbol is None else check_symbol(intent.symbol)
        return msgspec.structs.replace(intent, account_id=account_id, symbol=symbol)
    order_id = check_order_id(intent.order_id)
    if isinstance(intent, ModifyOrder):
        quantity = None if intent.quantity is None else check_quantity(intent.quantity)
        limit_price = check_price(intent.limit_price, "limit_price")
        stop_price = check_price(intent.stop_price, "stop_price")
        check_modify(quantity, limit_price, stop_price)
        return msgspec.structs.replace(
            intent,
            account_id=account_id,
            order_id=order_id,
            quantity=quantity,
            limit_price=limit_price,
            stop_price=stop_price,
        )
    assert isinstance(intent, CancelOrder)
    return msgspec.structs.replace(intent, account_id=account_id, order_id=order_id)
