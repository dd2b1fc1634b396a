"""The order state machine: fills, resting orders, brackets, rejections, tags, modify, cancel."""

import random
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from simulator.accounts import PositionType
from simulator.book import Book
from simulator.contracts import is_on_tick
from simulator.orders import OrderRequest, OrderSide, OrderStatus, OrderType, Outcome, TagUniqueness
from tests.unit.simulator.helpers import (
    ACCOUNT,
    BUY,
    CL,
    LIMIT,
    MARKET,
    MNQ,
    NOW,
    OTHER_ACCOUNT,
    SELL,
    STOP,
    TICK,
    legs,
    make_book,
    place,
    request,
)


@pytest.fixture
def book() -> Book:
    return make_book()


# --- fills and positions ---------------------------------------------------------------


def test_market_order_fills_at_once_at_the_ask_of_the_reference_price(book: Book) -> None:
    order = place(book, request(size=3))
    assert order.id == 1001
    assert order.status == OrderStatus.FILLED
    assert order.fill_volume == 3
    # Nobody moved the price: MNQ sits at 21000 with a one-tick spread above it.
    assert order.filled_price == Decimal("21000.25")
    [position] = book.positions(ACCOUNT)
    assert (position.type, position.size, position.average_price) == (
        PositionType.LONG,
        3,
        order.filled_price,
    )
    assert book.working_orders(ACCOUNT) == []


def test_the_random_walk_stays_on_the_grid_and_follows_the_seed() -> None:
    # Prices move only when told; the demos' random walk is seeded.
    first, second = make_book(), make_book()
    rng_a, rng_b = random.Random(0), random.Random(0)
    prices = []
    for n in range(300):
        first.walk(rng_a, NOW + timedelta(seconds=n))
        second.walk(rng_b, NOW + timedelta(seconds=n))
        prices.append(place(first, request(contract_id=CL)).filled_price)
        assert place(second, request(contract_id=CL)).filled_price == prices[-1]
    assert all(p is not None and is_on_tick(p, Decimal("0.01")) and p > 0 for p in prices)
    assert len(set(prices)) > 10  # it does walk


def test_position_averages_reduces_flips_and_flattens(book: Book) -> None:
    a = place(book, request(size=2)).filled_price
    b = place(book, request(size=1)).filled_price
    assert a is not None
    assert b is not None
    [position] = book.positions(ACCOUNT)
    assert position.size == 3
    assert position.average_price == (a * 2 + b) / 3
    first_id = position.id

    place(book, request(side=SELL, size=1))
    [position] = book.positions(ACCOUNT)
    assert position.size == 2
    assert position.average_price == (a * 2 + b) / 3  # reducing keeps the average

    flip = place(book, request(side=SELL, size=5)).filled_price
    [position] = book.positions(ACCOUNT)
    assert (position.type, position.size, position.average_price) == (PositionType.SHORT, -3, flip)
    assert position.id != first_id

    place(book, request(side=BUY, size=3))
    assert book.positions(ACCOUNT) == []
    assert book.positions(OTHER_ACCOUNT) == []


@pytest.mark.parametrize(
    ("req", "prices"),
    [
        (request(LIMIT, limit_price="20990.25"), (Decimal("20990.25"), None)),
        (request(STOP, stop_price="21010.50"), (None, Decimal("21010.50"))),
    ],
)
def test_limit_and_stop_orders_rest_open(
    book: Book, req: OrderRequest, prices: tuple[Decimal | None, Decimal | None]
) -> None:
    order = place(book, req)
    assert order.status == OrderStatus.OPEN
    assert order.fill_volume == 0
    assert order.filled_price is None
    assert (order.limit_price, order.stop_price) == prices
    assert book.working_orders(ACCOUNT) == [order]
    assert book.positions(ACCOUNT) == []


def test_a_price_the_type_does_not_use_is_dropped(book: Book) -> None:
    order = place(book, request(LIMIT, limit_price="21000", stop_price="20000"))
    assert (order.limit_price, order.stop_price) == (Decimal("21000"), None)


# --- brackets --------------------------------------------------------------------------


def test_long_market_bracket_legs_are_open_around_the_fill(book: Book) -> None:
    entry = place(book, request(size=2, sl=-10, tp=20, tag="t1"))
    assert entry.filled_price is not None
    stop, target = legs(book, entry)
    assert (stop.id, target.id) == (entry.id + 1, entry.id + 2)
    assert (stop.type, stop.side, stop.size, stop.status) == (STOP, SELL, 2, OrderStatus.OPEN)
    assert stop.stop_price == entry.filled_price - 10 * TICK
    assert stop.limit_price is None
    assert (target.type, target.side, target.size, target.status) == (
        LIMIT,
        SELL,
        2,
        OrderStatus.OPEN,
    )
    assert target.limit_price == entry.filled_price + 20 * TICK
    assert stop.custom_tag is None
    assert target.custom_tag is None
    assert book.working_orders(ACCOUNT) == [stop, target]


def test_short_market_bracket_legs_are_mirrored(book: Book) -> None:
    entry = place(book, request(side=SELL, sl=8, tp=-16))
    assert entry.filled_price is not None
    stop, target = legs(book, entry)
    assert stop.side == target.side == BUY
    assert stop.stop_price == entry.filled_price + 8 * TICK
    assert target.limit_price == entry.filled_price - 16 * TICK


def test_a_single_bracket_makes_a_single_leg(book: Book) -> None:
    entry = place(book, request(tp=12))
    [target] = legs(book, entry)
    assert target.type == LIMIT


def test_resting_entry_legs_are_suspended_at_its_price_and_cancel_with_it(book: Book) -> None:
    entry = place(book, request(LIMIT, limit_price="20900", sl=-40, tp=80))
    stop, target = legs(book, entry)
    # Suspended (8), not the Pending (6) of before: the spec's status for a waiting leg.
    assert stop.status == target.status == OrderStatus.SUSPENDED
    assert stop.stop_price == Decimal("20890")
    assert target.limit_price == Decimal("20920")
    # Order/searchOpen leaves Suspended legs out.
    assert book.working_orders(ACCOUNT) == [entry]

    assert book.cancel(ACCOUNT, entry.id, NOW) == Outcome()
    assert [o.status for o in (entry, stop, target)] == [OrderStatus.CANCELLED] * 3
    assert book.working_orders(ACCOUNT) == []


def test_stop_entry_legs_use_the_stop_price(book: Book) -> None:
    entry = place(book, request(STOP, side=SELL, stop_price="20950", sl=4, tp=-4))
    stop, target = legs(book, entry)
    assert stop.stop_price == Decimal("20951")
    assert target.limit_price == Decimal("20949")


@pytest.mark.parametrize(
    ("side", "sl", "tp", "message"),
    [
        # docs/gateway.md §5.7, verbatim live texts:
        (
            BUY,
            50,
            None,
            "Invalid stop loss ticks (50). Ticks should be less than zero when longing.",
        ),
        (
            SELL,
            None,
            426,
            "Invalid take profit ticks (426). Ticks should be less than zero when going short.",
        ),
        (
            SELL,
            -50,
            None,
            "Invalid stop loss ticks (-50). Stop loss tick value should be at least 4 ticks.",
        ),
        (BUY, -1, None, "Invalid stop loss ticks (-1). Price should be at least 4 ticks away."),
        # The long take-profit text is constructed by analogy.
        (
            BUY,
            None,
            -20,
            "Invalid take profit ticks (-20). Ticks should be greater than zero when longing.",
        ),
        (BUY, 0, None, "Invalid stop loss ticks (0). Ticks should be less than zero when longing."),
        (SELL, 3, None, "Invalid stop loss ticks (3). Price should be at least 4 ticks away."),
        (
            BUY,
            None,
            0,
            "Invalid take profit ticks (0). Ticks should be greater than zero when longing.",
        ),
        (
            BUY,
            -10,
            -10,
            "Invalid take profit ticks (-10). Ticks should be greater than zero when longing.",
        ),
    ],
)
def test_bracket_tick_rules(
    book: Book, side: OrderSide, sl: int | None, tp: int | None, message: str
) -> None:
    assert book.place(request(side=side, sl=sl, tp=tp), NOW) == Outcome(2, message)
    assert book.orders() == []
    assert book.positions(ACCOUNT) == []


def test_four_tick_stop_is_allowed(book: Book) -> None:
    assert book.place(request(sl=-4), NOW).success
    assert book.place(request(side=SELL, sl=4), NOW).success


# --- validation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("req", "code", "message"),
    [
        (request(account_id=99), 1, "Account not found"),
        (request(contract_id="CON.F.US.MNQ.H25"), 8, "Contract not found"),
        (request(size=0), 2, "Invalid order size"),
        (request(size=-1), 2, "Invalid order size"),
        (request(LIMIT), 2, "Invalid limit price. Limit price not set."),
        (request(STOP), 2, "Invalid stop price. Stop price not set."),
        (
            request(LIMIT, limit_price="21000.1"),
            2,
            "Invalid limit price. Price is not aligned to tick size",
        ),
        (
            request(STOP, stop_price="21000.30"),
            2,
            "Invalid stop price. Price is not aligned to tick size",
        ),
        (request(LIMIT, limit_price="0"), 2, "Invalid price. Price is outside allowed range."),
        (request(STOP, stop_price="-5"), 2, "Invalid price. Price is outside allowed range."),
        (request(LIMIT, limit_price="NaN"), 2, "Invalid price. Price is outside allowed range."),
        (request(OrderType.STOP_LIMIT), 2, "Invalid limit price. Limit price not set."),
        (
            request(OrderType.STOP_LIMIT, limit_price="21010"),
            2,
            "Invalid stop price. Stop price not set.",
        ),
        (request(OrderType.TRAILING_STOP), 2, "Invalid trail price. Trail price not set."),
        (request(0), 2, "Unsupported order type (0)"),
        (request(8), 2, "Unsupported order type (8)"),
        (request(contract_id="CON.F.US.MNQ.U25"), 9, "Contract is not active"),
        # A buy stop at or below the last price (21000) is on the wrong side.
        (request(STOP, stop_price="21000"), 2, "Invalid price. Price is outside allowed range."),
        (
            request(STOP, side=SELL, stop_price="21000.25"),
            2,
            "Invalid price. Price is outside allowed range.",
        ),
        (request(side=2), 2, "Invalid order side (2)"),
    ],
)
def test_place_rejections(book: Book, req: OrderRequest, code: int, message: str) -> None:
    assert book.place(req, NOW) == Outcome(code, message)
    assert book.orders() == []  # no tag: nothing recorded


def test_off_tick_check_is_exact_for_decimal_ticks(book: Book) -> None:
    # 0.1 and 0.01 ticks are where float modulo goes wrong.
    m2k = "CON.F.US.M2K.Z25"
    assert book.place(request(LIMIT, contract_id=m2k, limit_price="2300.3"), NOW).success
    assert book.place(request(LIMIT, contract_id=CL, limit_price="70.07"), NOW).success
    assert not book.place(request(LIMIT, contract_id=CL, limit_price="70.075"), NOW).success


# --- custom tags -----------------------------------------------------------------------

DUPLICATE = Outcome(2, "Specified custom tag is already in use")


def test_tag_is_unique_per_account_forever(book: Book) -> None:
    first = place(book, request(tag="alpha"))
    assert first.status == OrderStatus.FILLED
    assert book.place(request(tag="alpha"), NOW) == DUPLICATE
    assert book.place(request(LIMIT, limit_price="20000", tag="alpha"), NOW) == DUPLICATE
    assert len(book.orders()) == 1  # the duplicates created nothing
    assert book.place(request(tag="alpha", account_id=OTHER_ACCOUNT), NOW).success
    assert book.place(request(tag="beta"), NOW).success


def test_a_rejected_order_still_reserves_its_tag(book: Book) -> None:
    rejected = book.place(request(size=0, tag="gamma"), NOW)
    assert rejected == Outcome(2, "Invalid order size")
    [record] = book.orders()
    assert (record.status, record.custom_tag, record.size) == (OrderStatus.REJECTED, "gamma", 0)
    assert book.search(ACCOUNT, NOW, NOW) == [record]
    assert book.place(request(tag="gamma"), NOW) == DUPLICATE


def test_a_rejection_for_an_unknown_contract_is_recorded_too(book: Book) -> None:
    assert book.place(request(contract_id="CON.F.US.XYZ.Z25", tag="d"), NOW).error_code == 8
    [record] = book.orders()
    assert (record.status, record.contract_id, record.symbol_id) == (
        OrderStatus.REJECTED,
        "CON.F.US.XYZ.Z25",
        "",
    )


def test_unknown_account_reserves_nothing(book: Book) -> None:
    assert book.place(request(account_id=99, tag="e"), NOW).error_code == 1
    assert book.orders() == []


def test_duplicate_tag_code_is_configurable() -> None:
    book = make_book(duplicate_tag_code=7)
    place(book, request(tag="x"))
    assert book.place(request(tag="x"), NOW) == Outcome(7, DUPLICATE.error_message)


def test_open_mode_frees_a_tag_once_its_order_is_done() -> None:
    book = make_book(tag_uniqueness=TagUniqueness.OPEN)
    resting = place(book, request(LIMIT, limit_price="20000", tag="t"))
    assert book.place(request(tag="t"), NOW) == DUPLICATE
    assert book.cancel(ACCOUNT, resting.id, NOW).success
    filled = place(book, request(tag="t"))  # free again; a market order is done at once
    place(book, request(tag="t"))
    assert book.place(request(size=0, tag="t"), NOW).error_message == "Invalid order size"
    place(book, request(tag="t"))  # a rejected order does not hold the tag either
    assert [o.custom_tag for o in book.orders()].count("t") == 5
    assert filled.status == OrderStatus.FILLED


def test_off_mode_never_checks_tags() -> None:
    book = make_book(tag_uniqueness=TagUniqueness.OFF)
    place(book, request(LIMIT, limit_price="20000", tag="t"))
    place(book, request(LIMIT, limit_price="20000", tag="t"))
    assert len(book.working_orders(ACCOUNT)) == 2


def test_empty_tag_is_no_tag(book: Book) -> None:
    place(book, request(tag=""))
    order = place(book, request(tag=""))
    assert order.custom_tag is None


# --- modify ----------------------------------------------------------------------------


def test_modify_size_and_limit_price(book: Book) -> None:
    order = place(book, request(LIMIT, limit_price="20000"))
    later = NOW + timedelta(seconds=1)
    outcome = book.modify(ACCOUNT, order.id, later, size=3, limit_price=Decimal("20000.25"))
    assert outcome == Outcome()
    assert (order.size, order.limit_price, order.update_timestamp) == (
        3,
        Decimal("20000.25"),
        later,
    )


def test_modify_to_the_same_values_is_a_no_op_success(book: Book) -> None:
    order = place(book, request(STOP, stop_price="21010"))
    later = NOW + timedelta(seconds=1)
    assert book.modify(ACCOUNT, order.id, later, size=1, stop_price=Decimal("21010.00")).success
    assert book.modify(ACCOUNT, order.id, later).success
    assert order.update_timestamp == NOW


def test_modify_a_pending_bracket_leg(book: Book) -> None:
    entry = place(book, request(LIMIT, limit_price="20000", sl=-8))
    [stop] = legs(book, entry)
    assert book.modify(ACCOUNT, stop.id, NOW, stop_price=Decimal("19990")).success
    assert stop.stop_price == Decimal("19990")


@pytest.mark.parametrize(
    ("account_id", "order_id", "code", "message"),
    [
        (99, 1001, 1, "Account not found"),
        (ACCOUNT, 5, 2, "Order not found"),
        (OTHER_ACCOUNT, 1001, 1, "Order 1001 does not belong to account 2"),
    ],
)
def test_modify_and_cancel_need_an_order_of_the_account(
    book: Book, account_id: int, order_id: int, code: int, message: str
) -> None:
    place(book, request(LIMIT, limit_price="20000"))
    assert book.modify(account_id, order_id, NOW, size=2) == Outcome(code, message)
    assert book.cancel(account_id, order_id, NOW) == Outcome(code, message)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"size": 0}, "Invalid order size"),
        ({"stop_price": Decimal("20000")}, "Stop price can only be modified on a stop order"),
        (
            {"limit_price": Decimal("20000.1")},
            "Invalid limit price. Price is not aligned to tick size",
        ),
        ({"limit_price": Decimal("-1")}, "Invalid price. Price is outside allowed range."),
        (
            {"trail_price": Decimal("5")},
            "Trail price can only be modified on a trailing stop order",
        ),
    ],
)
def test_modify_rejections_on_a_limit_order(
    book: Book, changes: dict[str, Any], message: str
) -> None:
    order = place(book, request(LIMIT, limit_price="20000"))
    assert book.modify(ACCOUNT, order.id, NOW, **changes) == Outcome(3, message)
    assert (order.size, order.limit_price) == (1, Decimal("20000"))


def test_modify_rejections_on_a_stop_order(book: Book) -> None:
    order = place(book, request(STOP, stop_price="21010"))
    assert book.modify(ACCOUNT, order.id, NOW, limit_price=Decimal("21000")) == Outcome(
        3, "Limit price can only be modified on a limit order"
    )
    assert book.modify(ACCOUNT, order.id, NOW, stop_price=Decimal("21000.2")) == Outcome(
        3, "Invalid stop price. Price is not aligned to tick size"
    )
    # Moving a buy stop to or below the last price puts it on the wrong side.
    assert book.modify(ACCOUNT, order.id, NOW, stop_price=Decimal("20990")) == Outcome(
        3, "Invalid price. Price is outside allowed range."
    )
    assert order.stop_price == Decimal("21010")


def test_modify_needs_a_working_order(book: Book) -> None:
    filled = place(book, request())
    assert book.modify(ACCOUNT, filled.id, NOW, size=2) == Outcome(
        3, "Order is not open (status Filled)"
    )
    resting = place(book, request(LIMIT, limit_price="20000"))
    book.cancel(ACCOUNT, resting.id, NOW)
    assert book.modify(ACCOUNT, resting.id, NOW, size=2) == Outcome(
        3, "Order is not open (status Cancelled)"
    )


# --- cancel ----------------------------------------------------------------------------


def test_cancel_rules(book: Book) -> None:
    filled = place(book, request())
    assert book.cancel(ACCOUNT, filled.id, NOW) == Outcome(3, "Order is already filled")
    resting = place(book, request(LIMIT, limit_price="20000"))
    later = NOW + timedelta(seconds=2)
    assert book.cancel(ACCOUNT, resting.id, later) == Outcome()
    assert (resting.status, resting.update_timestamp) == (OrderStatus.CANCELLED, later)
    assert book.cancel(ACCOUNT, resting.id, later) == Outcome(3, "Order is already cancelled")
    book.place(request(size=0, tag="r"), NOW)
    rejected = book.orders()[-1]
    assert book.cancel(ACCOUNT, rejected.id, NOW) == Outcome(
        3, "Order is not open (status Rejected)"
    )


def test_cancelling_a_leg_leaves_its_parent_and_sibling(book: Book) -> None:
    entry = place(book, request(sl=-8, tp=8))
    stop, target = legs(book, entry)
    assert book.cancel(ACCOUNT, stop.id, NOW).success
    assert (stop.status, target.status) == (OrderStatus.CANCELLED, OrderStatus.OPEN)


# --- search ----------------------------------------------------------------------------


def test_search_returns_the_window_inclusive_and_per_account(book: Book) -> None:
    times = [NOW + timedelta(seconds=s) for s in (0, 10, 20)]
    ids = [place(book, request(LIMIT, limit_price="20000"), t).id for t in times]
    place(book, request(account_id=OTHER_ACCOUNT), times[1])

    def found(start: datetime, end: datetime) -> list[int]:
        return [o.id for o in book.search(ACCOUNT, start, end)]

    assert found(times[0], times[2]) == ids
    assert found(times[1], times[2]) == ids[1:]
    assert found(times[0], times[0]) == ids[:1]
    assert found(times[2] + timedelta(microseconds=1), times[2] + timedelta(days=1)) == []
    assert book.search(99, times[0], times[2]) == []


def test_search_stays_correct_when_the_clock_steps_back(book: Book) -> None:
    late = place(book, request(), NOW + timedelta(seconds=5))
    early = place(book, request(), NOW)
    assert book.search(ACCOUNT, NOW, NOW) == [early]
    assert book.search(ACCOUNT, NOW, NOW + timedelta(seconds=5)) == [early, late]


def test_working_orders_leave_out_done_orders_and_suspended_legs(book: Book) -> None:
    place(book, request())
    resting = place(book, request(LIMIT, limit_price="20000", sl=-8))
    [stop] = legs(book, resting)
    cancelled = place(book, request(STOP, stop_price="21010"))
    book.cancel(ACCOUNT, cancelled.id, NOW)
    assert stop.status == OrderStatus.SUSPENDED
    assert book.working_orders(ACCOUNT) == [resting]
    assert book.working_orders(OTHER_ACCOUNT) == []


# --- close position --------------------------------------------------------------------


def test_close_position_flattens_with_a_market_order(book: Book) -> None:
    entry = place(book, request(size=2, sl=-8))
    assert book.close_position(ACCOUNT, MNQ, NOW) == Outcome()
    assert book.positions(ACCOUNT) == []
    close = book.orders()[-1]
    assert (close.type, close.side, close.size, close.status) == (
        MARKET,
        SELL,
        2,
        OrderStatus.FILLED,
    )
    # docs/gateway.md §5.8: closing does not cancel working bracket legs.
    [stop] = legs(book, entry)
    assert stop.status == OrderStatus.OPEN


@pytest.mark.parametrize(
    ("account_id", "contract_id", "expected"),
    [
        (99, MNQ, Outcome(1, "Account not found")),
        (ACCOUNT, "CON.F.US.NOPE.Z25", Outcome(3, "Contract not found")),
        (ACCOUNT, MNQ, Outcome(2, "Position not found")),
    ],
)
def test_close_position_rejections(
    book: Book, account_id: int, contract_id: str, expected: Outcome
) -> None:
    assert book.close_position(account_id, contract_id, NOW) == expected


# --- clear -----------------------------------------------------------------------------


def test_clear_forgets_everything_but_keeps_counting_ids(book: Book) -> None:
    place(book, request(tag="x"))
    book.clear()
    assert book.orders() == []
    assert book.positions(ACCOUNT) == []
    assert place(book, request(tag="x")).id == 1002
