"""``validate_intent`` rule by rule: each refusal names its rule, values come back normalised."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest

import producer.validation
from ow_core.tags import tag_room
from producer.contract import (
    CancelAll,
    CancelOrder,
    ClosePosition,
    Flatten,
    Intent,
    ModifyOrder,
    PlaceOrder,
)
from producer.errors import InvalidOrder, OrderError
from producer.validation import MAX_INT32, MAX_INT64, check_on_tick, validate_intent

COMMON: dict[str, Any] = {
    "request_id": "req-1",
    "reply_to": "ow:reply:client-1",
    "account_id": 7,
    "created_at": 1_700_000_000_000,
    "deadline": 1_700_000_010_000,
}


def place(**overrides: Any) -> PlaceOrder:
    fields: dict[str, Any] = {**COMMON, "symbol": "MNQ", "side": "BUY", "quantity": 1}
    return PlaceOrder(**{**fields, **overrides})


def modify(**overrides: Any) -> ModifyOrder:
    fields: dict[str, Any] = {**COMMON, "order_id": 42, "quantity": 2}
    return ModifyOrder(**{**fields, **overrides})


def cancel(**overrides: Any) -> CancelOrder:
    return CancelOrder(**{**COMMON, "order_id": 42, **overrides})


def close(**overrides: Any) -> ClosePosition:
    return ClosePosition(**{**COMMON, "symbol": "MNQ", **overrides})


REFUSED: list[tuple[str, Intent, str]] = [
    ("empty request id", place(request_id=""), "invalid_request_id"),
    ("non-text request id", cancel(request_id=5), "invalid_request_id"),
    ("a reserved separator in a request id", place(request_id="GTTX1:gtt"), "invalid_request_id"),
    ("a space in a request id", cancel(request_id="a b"), "invalid_request_id"),
    ("a request id too long", modify(request_id="r" * 129), "invalid_request_id"),
    (
        "a lifetime over a day",
        cancel(deadline=COMMON["created_at"] + 86_400_001),
        "invalid_timeout",
    ),
    ("account 0", place(account_id=0), "invalid_account"),
    ("negative account", cancel(account_id=-3), "invalid_account"),
    ("account as bool", modify(account_id=True), "invalid_account"),
    ("account as text", place(account_id="7"), "invalid_account"),
    ("account past int32", place(account_id=MAX_INT32 + 1), "invalid_account"),
    ("fractional account", place(account_id=7.5), "invalid_account"),
    ("unknown order type", place(order_type="iceberg"), "invalid_order_type"),
    ("order type not text", place(order_type=2), "invalid_order_type"),
    ("negative limit price", place(order_type="limit", limit_price=-1.0), "invalid_price"),
    ("zero limit price", place(order_type="limit", limit_price=0.0), "invalid_price"),
    ("NaN limit price", place(order_type="limit", limit_price=math.nan), "invalid_price"),
    ("infinite stop price", place(order_type="stop", stop_price=math.inf), "invalid_price"),
    ("price as text", place(order_type="limit", limit_price="21000"), "invalid_price"),
    ("price as bool", place(order_type="limit", limit_price=True), "invalid_price"),
    ("limit without price", place(order_type="limit"), "missing_limit_price"),
    ("stop without price", place(order_type="stop"), "missing_stop_price"),
    ("market with limit price", place(limit_price=100.0), "unexpected_limit_price"),
    (
        "stop with limit price",
        place(order_type="stop", stop_price=99.0, limit_price=100.0),
        "unexpected_limit_price",
    ),
    ("market with stop price", place(stop_price=99.0), "unexpected_stop_price"),
    (
        "limit with stop price",
        place(order_type="limit", limit_price=100.0, stop_price=99.0),
        "unexpected_stop_price",
    ),
    (
        "stop-limit without its stop",
        place(order_type="stop_limit", limit_price=1.0),
        "missing_stop_price",
    ),
    (
        "stop-limit without its limit",
        place(order_type="stop_limit", stop_price=1.0),
        "missing_limit_price",
    ),
    ("trailing stop without its trail", place(order_type="trailing_stop"), "missing_trail_ticks"),
    (
        "trailing stop with a stop price",
        place(order_type="trailing_stop", trail_ticks=8, stop_price=1.0),
        "unexpected_stop_price",
    ),
    (
        "trail on a limit",
        place(order_type="limit", limit_price=1.0, trail_ticks=8),
        "unexpected_trail_ticks",
    ),
    (
        "join-bid with a price",
        place(order_type="join_bid", limit_price=1.0),
        "unexpected_limit_price",
    ),
    ("a trail of 0 ticks", place(order_type="trailing_stop", trail_ticks=0), "invalid_ticks"),
    ("a close of 0 contracts", close(quantity=0), "invalid_quantity"),
    ("a close of no symbol", close(symbol=""), "invalid_symbol"),
    ("a flatten of a bad symbol", Flatten(**COMMON, symbol=" "), "invalid_symbol"),
    ("a cancel-all for account 0", CancelAll(**{**COMMON, "account_id": 0}), "invalid_account"),
    ("negative cancel_after", place(cancel_after=-5.0), "invalid_cancel_after"),
    ("zero cancel_after", place(cancel_after=0), "invalid_cancel_after"),
    ("cancel_after of 1e15 s", place(cancel_after=1e15), "invalid_cancel_after"),
    ("infinite cancel_after", place(cancel_after=math.inf), "invalid_cancel_after"),
    ("cancel_after over a week", place(cancel_after=7 * 86400 + 1), "invalid_cancel_after"),
    ("a tag the broker would cut", place(custom_tag="t" * 64), "invalid_custom_tag"),
    ("empty symbol", place(symbol=""), "invalid_symbol"),
    ("blank symbol", place(symbol="   "), "invalid_symbol"),
    ("symbol too long", place(symbol="M" * 33), "invalid_symbol"),
    ("symbol with a newline", place(symbol="MN\nQ"), "invalid_symbol"),
    ("symbol not text", place(symbol=5), "invalid_symbol"),
    ("unknown side", place(side="HOLD"), "invalid_side"),
    ("abbreviated side", place(side="B"), "invalid_side"),
    ("side not text", place(side=None), "invalid_side"),
    ("zero quantity", place(quantity=0), "invalid_quantity"),
    ("negative quantity", place(quantity=-2), "invalid_quantity"),
    ("fractional quantity", place(quantity=1.5), "invalid_quantity"),
    ("quantity as bool", place(quantity=True), "invalid_quantity"),
    ("quantity as text", place(quantity="1"), "invalid_quantity"),
    ("NaN quantity", place(quantity=math.nan), "invalid_quantity"),
    ("infinite quantity", place(quantity=math.inf), "invalid_quantity"),
    ("quantity past int32", place(quantity=MAX_INT32 + 1), "invalid_quantity"),
    ("zero stop-loss ticks", place(stop_loss_ticks=0), "invalid_ticks"),
    ("fractional stop-loss ticks", place(stop_loss_ticks=2.5), "invalid_ticks"),
    ("negative take-profit ticks", place(take_profit_ticks=-4), "invalid_ticks"),
    ("empty custom tag", place(custom_tag=""), "invalid_custom_tag"),
    ("custom tag too long", place(custom_tag="t" * 65), "invalid_custom_tag"),
    ("custom tag with a tab", place(custom_tag="a\tb"), "invalid_custom_tag"),
    ("custom tag not text", place(custom_tag=5), "invalid_custom_tag"),
    ("modify order id 0", modify(order_id=0), "invalid_order_id"),
    ("modify order id past int64", modify(order_id=MAX_INT64 + 1), "invalid_order_id"),
    ("cancel order id negative", cancel(order_id=-1), "invalid_order_id"),
    ("cancel order id as text", cancel(order_id="42"), "invalid_order_id"),
    ("modify changing nothing", modify(quantity=None), "empty_modify"),
    ("modify to quantity 0", modify(quantity=0), "invalid_quantity"),
    ("modify to negative limit", modify(limit_price=-1.0), "invalid_price"),
    ("modify to NaN stop", modify(stop_price=math.nan), "invalid_price"),
]


@pytest.mark.parametrize(
    ("intent", "code"), [(i, c) for _, i, c in REFUSED], ids=[n for n, *_ in REFUSED]
)
def test_each_rule_refuses_with_its_code(intent: Intent, code: str) -> None:
    with pytest.raises(InvalidOrder) as raised:
        validate_intent(intent)
    assert raised.value.code == code
    assert isinstance(raised.value, OrderError)
    assert str(raised.value).startswith(f"{code}: ")


def test_every_code_in_the_validation_module_is_exercised() -> None:
    source = Path(producer.validation.__file__).read_text()
    codes = set(re.findall(r'code="([a-z_]+)"', source))
    tested = {code for _, _, code in REFUSED} | {"price_off_tick"}
    assert codes, "no codes found: the pattern no longer matches validation.py"
    assert codes <= tested, f"untested rules: {sorted(codes - tested)}"


def test_the_message_names_the_field_and_value() -> None:
    with pytest.raises(InvalidOrder, match=r"take_profit_ticks must be greater than 0, got -4"):
        validate_intent(place(take_profit_ticks=-4))
    with pytest.raises(InvalidOrder, match=r"limit_price must be a finite number > 0, got nan"):
        validate_intent(place(order_type="limit", limit_price=math.nan))


def test_place_is_normalised() -> None:
    raw = place(
        account_id=7.0,
        symbol=" mnq ",
        side="sell",
        quantity=3.0,
        order_type="LIMIT",
        limit_price=21000,
        stop_loss_ticks=8.0,
        take_profit_ticks=16,
        custom_tag="alpha",
        cancel_after=30,
    )
    valid = validate_intent(raw)
    assert isinstance(valid, PlaceOrder)
    assert valid.account_id == 7
    assert type(valid.account_id) is int
    assert valid.symbol == "MNQ"
    assert valid.side == "SELL"
    assert valid.quantity == 3
    assert type(valid.quantity) is int
    assert valid.order_type == "limit"
    assert valid.limit_price == 21000.0
    assert type(valid.limit_price) is float
    assert valid.stop_loss_ticks == 8
    assert type(valid.stop_loss_ticks) is int
    assert valid.take_profit_ticks == 16
    assert valid.custom_tag == "alpha"
    assert valid.cancel_after == 30.0
    assert type(valid.cancel_after) is float
    # Everything the rules do not touch is carried over.
    assert (valid.request_id, valid.reply_to, valid.created_at, valid.deadline) == (
        raw.request_id,
        raw.reply_to,
        raw.created_at,
        raw.deadline,
    )


def test_a_valid_place_comes_back_equal() -> None:
    longest = "t" * tag_room(COMMON["request_id"])  # the longest tag the broker keeps whole
    intent = place(order_type="stop", stop_price=20990.5, custom_tag=longest, symbol="M" * 32)
    assert validate_intent(intent) == intent


def test_upper_bounds_are_inclusive() -> None:
    biggest = validate_intent(place(quantity=MAX_INT32, account_id=MAX_INT32))
    assert isinstance(biggest, PlaceOrder)
    assert (biggest.quantity, biggest.account_id) == (MAX_INT32, MAX_INT32)
    valid = validate_intent(cancel(order_id=MAX_INT64))
    assert isinstance(valid, CancelOrder)
    assert valid.order_id == MAX_INT64


def test_modify_is_normalised() -> None:
    valid = validate_intent(modify(order_id=42.0, quantity=2.0, limit_price=100, stop_price=None))
    assert isinstance(valid, ModifyOrder)
    assert valid.order_id == 42
    assert type(valid.order_id) is int
    assert valid.quantity == 2
    assert type(valid.quantity) is int
    assert valid.limit_price == 100.0
    assert type(valid.limit_price) is float


@pytest.mark.parametrize(
    "changes",
    [
        {"quantity": 5},
        {"quantity": None, "limit_price": 1.5},
        {"quantity": None, "stop_price": 2.0},
    ],
)
def test_a_modify_changing_any_one_value_is_valid(changes: dict[str, Any]) -> None:
    validate_intent(modify(**changes))


def test_cancel_is_normalised() -> None:
    valid = validate_intent(cancel(order_id=9.0, account_id=3.0))
    assert isinstance(valid, CancelOrder)
    assert (valid.order_id, valid.account_id) == (9, 3)
    assert type(valid.order_id) is int


def test_the_way_out_is_normalised() -> None:
    closing = validate_intent(close(symbol=" mnq ", quantity=2.0))
    assert isinstance(closing, ClosePosition)
    assert (closing.symbol, closing.quantity) == ("MNQ", 2)
    everything = validate_intent(Flatten(**COMMON))
    assert isinstance(everything, Flatten)
    assert everything.symbol is None
    one = validate_intent(CancelAll(**COMMON, symbol="es"))
    assert isinstance(one, CancelAll)
    assert one.symbol == "ES"


@pytest.mark.parametrize(
    ("fields"),
    [
        {"order_type": "stop_limit", "stop_price": 21010.0, "limit_price": 21011.0},
        {"order_type": "trailing_stop", "trail_ticks": 8},
        {"order_type": "join_bid"},
        {"order_type": "JOIN_ASK"},
    ],
)
def test_every_order_type_with_its_prices_is_valid(fields: dict[str, Any]) -> None:
    valid = validate_intent(place(**fields))
    assert isinstance(valid, PlaceOrder)
    assert valid.order_type == fields["order_type"].lower()


@pytest.mark.parametrize(
    ("price", "tick"),
    [(21000.25, 0.25), (0.3, 0.1), (71.23, 0.01), (100, 1), (1.0000001, 0.0000001)],
)
def test_prices_on_the_tick_grid_pass(price: float, tick: float) -> None:
    check_on_tick(price, tick, "limit_price")


@pytest.mark.parametrize(("price", "tick"), [(21000.1, 0.25), (0.35, 0.1), (100.5, 1)])
def test_prices_off_the_tick_grid_are_refused(price: float, tick: float) -> None:
    with pytest.raises(InvalidOrder, match="limit_price") as raised:
        check_on_tick(price, tick, "limit_price")
    assert raised.value.code == "price_off_tick"


def test_a_request_id_longer_than_the_contract_allows_is_refused() -> None:
    with pytest.raises(InvalidOrder) as raised:
        validate_intent(place(request_id="r" * 129))
    assert raised.value.code == "invalid_request_id"
