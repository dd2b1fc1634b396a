"""Bracket legs: Suspended until the entry fills, then Open and one-cancels-other."""

from decimal import Decimal

import pytest

from simulator.book import Book
from simulator.orders import OrderStatus
from tests.unit.simulator.helpers import (
    ACCOUNT,
    LIMIT,
    NOW,
    STOP,
    legs,
    make_book,
    place,
    request,
    set_price,
)

SUSPENDED, OPEN = OrderStatus.SUSPENDED, OrderStatus.OPEN
FILLED, CANCELLED = OrderStatus.FILLED, OrderStatus.CANCELLED


@pytest.fixture
def book() -> Book:
    return make_book()


def test_legs_wait_suspended_then_open_then_one_cancels_the_other(book: Book) -> None:
    entry = place(book, request(LIMIT, limit_price="20990", size=2, sl=-8, tp=16))
    stop, target = legs(book, entry)
    assert (stop.status, target.status) == (SUSPENDED, SUSPENDED)
    assert (stop.stop_price, target.limit_price) == (Decimal("20988"), Decimal("20994"))
    assert book.working_orders(ACCOUNT) == [entry]

    set_price(book, "20989.75")  # the entry fills at 20990
    assert entry.status == FILLED
    assert (stop.status, stop.size, target.status, target.size) == (OPEN, 2, OPEN, 2)
    assert book.working_orders(ACCOUNT) == [stop, target]

    set_price(book, "20994")  # the target's price: it fills, and cancels the stop
    assert (target.status, target.filled_price) == (FILLED, Decimal("20994"))
    assert stop.status == CANCELLED
    assert book.positions(ACCOUNT) == []
    closing, opening = book.trades(ACCOUNT, None, NOW)
    assert (opening.order_id, opening.profit_and_loss) == (entry.id, None)
    # 4 points on 2 contracts at $2 a point.
    assert (closing.order_id, closing.profit_and_loss) == (target.id, Decimal("16.00"))


def test_the_stop_loss_closes_at_market_and_cancels_the_target(book: Book) -> None:
    entry = place(book, request(sl=-8, tp=8))  # fills at 21000.25
    stop, target = legs(book, entry)
    assert (stop.stop_price, target.limit_price) == (Decimal("20998.25"), Decimal("21002.25"))
    set_price(book, "20998.25")
    assert (stop.status, stop.filled_price, target.status) == (
        FILLED,
        Decimal("20998.25"),
        CANCELLED,
    )
    assert book.trades(ACCOUNT, None, NOW)[0].profit_and_loss == Decimal("-4.00")


def test_legs_are_priced_again_from_where_the_entry_filled(book: Book) -> None:
    entry = place(book, request(STOP, stop_price="21010", sl=-8, tp=8))
    stop, target = legs(book, entry)
    assert (stop.stop_price, target.limit_price) == (Decimal("21008"), Decimal("21012"))
    set_price(book, "21011")  # triggers; fills at the ask, 21011.25
    assert entry.filled_price == Decimal("21011.25")
    assert (stop.stop_price, target.limit_price) == (Decimal("21009.25"), Decimal("21013.25"))


def test_a_leg_the_client_moved_keeps_its_price(book: Book) -> None:
    entry = place(book, request(LIMIT, limit_price="20990", sl=-8))
    [stop] = legs(book, entry)
    assert book.modify(ACCOUNT, stop.id, NOW, stop_price=Decimal("20980")).success
    set_price(book, "20900")  # the entry fills at 20990; the stop is already through
    # Activated below its stop: a leg triggers at once rather than be refused.
    assert (stop.stop_price, stop.status, stop.filled_price) == (
        Decimal("20980"),
        FILLED,
        Decimal("20900"),
    )


def test_a_partial_entry_fill_sizes_the_legs_to_what_filled(book: Book) -> None:
    book.max_fill_size = 1
    entry = place(book, request(LIMIT, limit_price="20990", size=3, sl=-8, tp=8))
    stop, target = legs(book, entry)
    set_price(book, "20989.75")
    assert (entry.fill_volume, stop.status, stop.size, target.size) == (1, OPEN, 1, 1)
    set_price(book, "20989.75")
    assert (entry.fill_volume, stop.size, target.size) == (2, 2, 2)
    set_price(book, "20989.75")
    assert (entry.status, stop.size, target.size) == (FILLED, 3, 3)


def test_a_leg_that_fills_in_part_shrinks_its_sibling(book: Book) -> None:
    entry = place(book, request(size=2, sl=-8, tp=8))
    stop, target = legs(book, entry)
    book.max_fill_size = 1
    set_price(book, "21002.25")
    assert (target.status, target.fill_volume, stop.size) == (OPEN, 1, 1)
    set_price(book, "21002.25")
    assert (target.status, stop.status) == (FILLED, CANCELLED)
    assert book.positions(ACCOUNT) == []


def test_an_entry_cancelled_before_it_fills_takes_its_legs(book: Book) -> None:
    entry = place(book, request(LIMIT, limit_price="20990", sl=-8, tp=8))
    assert book.cancel(ACCOUNT, entry.id, NOW).success
    assert [leg.status for leg in legs(book, entry)] == [CANCELLED, CANCELLED]


def test_an_entry_cancelled_after_a_partial_fill_leaves_its_legs(book: Book) -> None:
    book.max_fill_size = 1
    entry = place(book, request(LIMIT, limit_price="21005", size=3, sl=-8, tp=8))
    assert book.cancel(ACCOUNT, entry.id, NOW).success
    stop, target = legs(book, entry)
    assert (stop.status, stop.size, target.status, target.size) == (OPEN, 1, OPEN, 1)


def test_cancelling_a_leg_leaves_its_sibling_to_work(book: Book) -> None:
    entry = place(book, request(sl=-8, tp=8))
    stop, target = legs(book, entry)
    assert book.cancel(ACCOUNT, target.id, NOW).success
    set_price(book, "20998.25")
    assert stop.status == FILLED
