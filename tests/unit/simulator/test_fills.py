"""Each order type's fill rule at prices the test sets (MNQ: tick 0.25, one-tick spread,
bid = last, ask = last + 0.25), and partial fills."""

from decimal import Decimal

import pytest

from simulator.book import Book
from simulator.market import Market
from simulator.orders import OrderStatus, OrderType, Outcome, StopThroughMarket
from tests.unit.simulator.helpers import (
    ACCOUNT,
    CONTRACTS,
    LIMIT,
    MNQ,
    NOW,
    SELL,
    STOP,
    make_book,
    place,
    request,
    set_price,
)

STOP_LIMIT, TRAILING = OrderType.STOP_LIMIT, OrderType.TRAILING_STOP
JOIN_BID, JOIN_ASK = OrderType.JOIN_BID, OrderType.JOIN_ASK


@pytest.fixture
def book() -> Book:
    return make_book()


def test_market_orders_take_the_ask_or_the_bid(book: Book) -> None:
    set_price(book, "21010")
    assert place(book, request()).filled_price == Decimal("21010.25")
    assert place(book, request(side=SELL)).filled_price == Decimal("21010")


def test_the_spread_is_configurable() -> None:
    quote = Market(CONTRACTS, spread_ticks=3).quote(MNQ)
    assert (quote.bid, quote.last, quote.ask) == (
        Decimal("20999.75"),
        Decimal("21000"),
        Decimal("21000.50"),
    )


def test_a_marketable_limit_fills_at_once_at_the_quote(book: Book) -> None:
    buy = place(book, request(LIMIT, limit_price="21005"))
    sell = place(book, request(LIMIT, side=SELL, limit_price="20995"))
    assert (buy.status, buy.filled_price) == (OrderStatus.FILLED, Decimal("21000.25"))
    assert (sell.status, sell.filled_price) == (OrderStatus.FILLED, Decimal("21000"))


def test_a_resting_limit_fills_at_its_price_once_the_market_reaches_it(book: Book) -> None:
    buy = place(book, request(LIMIT, limit_price="20990"))
    sell = place(book, request(LIMIT, side=SELL, limit_price="21010"))
    set_price(book, "20990")  # the ask is 20990.25: not yet
    assert buy.status == OrderStatus.OPEN
    set_price(book, "20989.75")
    assert (buy.status, buy.filled_price) == (OrderStatus.FILLED, Decimal("20990"))
    set_price(book, "21009.75")
    assert sell.status == OrderStatus.OPEN
    set_price(book, "21500")  # a gap through it: a resting limit still gets its price
    assert (sell.status, sell.filled_price) == (OrderStatus.FILLED, Decimal("21010"))


def test_a_stop_triggers_when_the_market_trades_through_it_then_fills_at_market(
    book: Book,
) -> None:
    buy = place(book, request(STOP, stop_price="21010"))
    sell = place(book, request(STOP, side=SELL, stop_price="20990"))
    set_price(book, "21009.75")
    assert buy.status == OrderStatus.OPEN
    set_price(book, "21010")
    assert (buy.status, buy.filled_price) == (OrderStatus.FILLED, Decimal("21010.25"))
    set_price(book, "20950")  # a gap: the stop fills where the market is, not at its stop
    assert (sell.status, sell.filled_price) == (OrderStatus.FILLED, Decimal("20950"))


def test_a_stop_through_the_market_is_refused_by_default() -> None:
    book = make_book()
    refused = Outcome(2, "Invalid price. Price is outside allowed range.")
    assert book.place(request(STOP, stop_price="21000"), NOW) == refused
    assert book.place(request(STOP, side=SELL, stop_price="21005"), NOW) == refused
    assert book.orders() == []


def test_a_stop_through_the_market_triggers_at_once_when_told() -> None:
    book = make_book(stop_through_market=StopThroughMarket.TRIGGER)
    order = place(book, request(STOP, stop_price="20990"))
    assert (order.status, order.filled_price) == (OrderStatus.FILLED, Decimal("21000.25"))


def test_a_stop_limit_becomes_a_limit_at_its_trigger(book: Book) -> None:
    quick = place(book, request(STOP_LIMIT, stop_price="21010", limit_price="21025"))
    gapped = place(book, request(STOP_LIMIT, stop_price="21010", limit_price="21011"))
    assert (gapped.stop_price, gapped.limit_price) == (Decimal("21010"), Decimal("21011"))
    set_price(book, "21020")
    # Both trigger; the ask (21020.25) is within one's limit, beyond the other's.
    assert (quick.status, quick.filled_price) == (OrderStatus.FILLED, Decimal("21020.25"))
    assert (gapped.status, gapped.triggered) == (OrderStatus.OPEN, True)
    set_price(book, "21011")
    assert gapped.status == OrderStatus.OPEN
    set_price(book, "21010.75")
    assert (gapped.status, gapped.filled_price) == (OrderStatus.FILLED, Decimal("21011"))


def test_a_stop_limit_that_triggers_marketable_takes_the_quote(book: Book) -> None:
    order = place(book, request(STOP_LIMIT, stop_price="21010", limit_price="21012"))
    set_price(book, "21010")
    assert (order.status, order.filled_price) == (OrderStatus.FILLED, Decimal("21010.25"))


def test_a_sell_trailing_stop_follows_the_highest_price(book: Book) -> None:
    order = place(book, request(TRAILING, side=SELL, trail_price="2"))
    assert order.stop_price == Decimal("20998")
    set_price(book, "21005")
    assert order.stop_price == Decimal("21003")
    set_price(book, "21004")
    assert (order.status, order.stop_price) == (OrderStatus.OPEN, Decimal("21003"))
    set_price(book, "21003")
    assert (order.status, order.filled_price) == (OrderStatus.FILLED, Decimal("21003"))


def test_a_buy_trailing_stop_follows_the_lowest_price(book: Book) -> None:
    order = place(book, request(TRAILING, trail_price="1"))
    assert order.stop_price == Decimal("21001")
    set_price(book, "20990")
    assert order.stop_price == Decimal("20991")
    set_price(book, "20991")
    assert (order.status, order.filled_price) == (OrderStatus.FILLED, Decimal("20991.25"))


def test_a_trailing_stop_needs_a_trail_on_the_grid(book: Book) -> None:
    assert book.place(request(TRAILING, trail_price="0.1"), NOW) == Outcome(
        2, "Invalid trail price. Price is not aligned to tick size"
    )
    order = place(book, request(TRAILING, side=SELL, trail_price="2"))
    assert book.modify(ACCOUNT, order.id, NOW, trail_price=Decimal("3")).success
    assert order.stop_price == Decimal("20997")


def test_join_bid_and_join_ask_rest_at_the_best_price(book: Book) -> None:
    bid = place(book, request(JOIN_BID, limit_price="1"))  # the client's price is not used
    ask = place(book, request(JOIN_ASK, side=SELL))
    assert (bid.status, bid.limit_price) == (OrderStatus.OPEN, Decimal("21000"))
    assert (ask.status, ask.limit_price) == (OrderStatus.OPEN, Decimal("21000.25"))
    set_price(book, "20999.75")
    assert (bid.status, bid.filled_price) == (OrderStatus.FILLED, Decimal("21000"))
    set_price(book, "21000.25")
    assert (ask.status, ask.filled_price) == (OrderStatus.FILLED, Decimal("21000.25"))


def test_joining_the_other_side_is_marketable(book: Book) -> None:
    order = place(book, request(JOIN_BID, side=SELL))
    assert (order.status, order.filled_price) == (OrderStatus.FILLED, Decimal("21000"))


def test_a_modify_that_makes_a_limit_marketable_fills_it(book: Book) -> None:
    order = place(book, request(LIMIT, limit_price="20990"))
    assert book.modify(ACCOUNT, order.id, NOW, limit_price=Decimal("21001")).success
    assert (order.status, order.filled_price) == (OrderStatus.FILLED, Decimal("21000.25"))


def test_partial_fills_come_in_steps_of_the_fault_size(book: Book) -> None:
    book.max_fill_size = 2
    order = place(book, request(size=5))
    assert (order.status, order.fill_volume) == (OrderStatus.OPEN, 2)
    assert book.working_orders(ACCOUNT) == [order]
    set_price(book, "21001")
    assert (order.status, order.fill_volume) == (OrderStatus.OPEN, 4)
    set_price(book, "21002")
    assert (order.status, order.fill_volume) == (OrderStatus.FILLED, 5)
    # The average of 2 @ 21000.25, 2 @ 21001.25 and 1 @ 21002.25.
    assert order.filled_price == Decimal("21001.05")
    [position] = book.positions(ACCOUNT)
    assert (position.size, position.average_price) == (5, Decimal("21001.05"))
    assert [t.size for t in book.trades(ACCOUNT, None, NOW)] == [1, 2, 2]


def test_a_partly_filled_order_keeps_what_filled(book: Book) -> None:
    book.max_fill_size = 1
    order = place(book, request(LIMIT, limit_price="21005", size=3))
    assert book.modify(ACCOUNT, order.id, NOW, size=1) == Outcome(3, "Invalid order size")
    assert book.cancel(ACCOUNT, order.id, NOW).success
    assert (order.status, order.fill_volume, order.size) == (OrderStatus.CANCELLED, 1, 3)
    [position] = book.positions(ACCOUNT)
    assert position.size == 1
