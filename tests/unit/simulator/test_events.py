"""Every change of the venue reaches the Publisher, in order, with the gateway's payload."""

from decimal import Decimal
from typing import Any

import pytest

from simulator.book import Book
from tests.unit.simulator.helpers import (
    ACCOUNT,
    LIMIT,
    MNQ,
    NOW,
    SELL,
    make_book,
    place,
    request,
    set_price,
)
from tests.unit.simulator.recorder import Event, Recorder

ORDER, TRADE = "GatewayUserOrder", "GatewayUserTrade"
POSITION, ACCOUNT_EVENT = "GatewayUserPosition", "GatewayUserAccount"
QUOTE, PRINT, DEPTH = "GatewayQuote", "GatewayTrade", "GatewayDepth"
# A fill: the order, its trade, the position, the balance, and the print on the market.
FILL = [ORDER, TRADE, POSITION, ACCOUNT_EVENT, QUOTE, PRINT]
# A price set by the test: the quote, the print and the new best prices.
PRICE_MOVE = [QUOTE, PRINT, DEPTH]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def book(recorder: Recorder) -> Book:
    return make_book(recorder)


def only(events: list[Event], target: str) -> list[Any]:
    return [e.payload for e in events if e.target == target]


def test_placement_modify_and_cancel(book: Book, recorder: Recorder) -> None:
    order = place(book, request(LIMIT, limit_price="20990", tag="t"))
    [placed] = recorder.take()
    assert (placed.hub, placed.key, placed.target) == ("user", ACCOUNT, ORDER)
    assert placed.payload == {
        "id": order.id,
        "accountId": ACCOUNT,
        "contractId": MNQ,
        "symbolId": "F.US.MNQ",
        "creationTimestamp": "2025-11-25T15:00:00.000000+00:00",
        "updateTimestamp": "2025-11-25T15:00:00.000000+00:00",
        "status": 1,
        "type": 1,
        "side": 0,
        "size": 1,
        "limitPrice": Decimal("20990.000000000"),
        "stopPrice": None,
        "fillVolume": 0,
        "filledPrice": None,
        "customTag": "t",
        "parentOrderId": None,
    }
    assert book.modify(ACCOUNT, order.id, NOW, limit_price=Decimal("20980")).success
    [modified] = recorder.take()
    assert (modified.target, modified.payload["limitPrice"]) == (ORDER, Decimal("20980"))
    assert book.modify(ACCOUNT, order.id, NOW, limit_price=Decimal("20980")).success
    assert recorder.take() == []  # no change, nothing to tell
    assert book.cancel(ACCOUNT, order.id, NOW).success
    [cancelled] = recorder.take()
    assert (cancelled.target, cancelled.payload["status"]) == (ORDER, 3)


def test_a_fill_publishes_the_order_trade_position_balance_and_print(
    book: Book, recorder: Recorder
) -> None:
    order = place(book, request(size=2))
    events = recorder.take()
    assert [e.target for e in events] == [ORDER, *FILL]
    assert [e.hub for e in events] == ["user"] * 5 + ["market"] * 2
    filled = only(events, ORDER)[-1]
    assert (filled["status"], filled["fillVolume"], filled["filledPrice"]) == (
        2,
        2,
        Decimal("21000.25"),
    )
    [trade] = only(events, TRADE)
    assert trade == {
        "id": 1,
        "accountId": ACCOUNT,
        "contractId": MNQ,
        "creationTimestamp": "2025-11-25T15:00:00.000000+00:00",
        "price": Decimal("21000.25"),
        "profitAndLoss": None,
        "fees": Decimal("0.74"),
        "side": 0,
        "size": 2,
        "voided": False,
        "orderId": order.id,
    }
    [position] = only(events, POSITION)
    assert (position["size"], position["type"], position["averagePrice"]) == (
        2,
        1,
        Decimal("21000.25"),
    )
    [account] = only(events, ACCOUNT_EVENT)
    assert account == {
        "id": ACCOUNT,
        "name": "A",
        "balance": Decimal("49999.26"),
        "canTrade": True,
        "isVisible": True,
        "simulated": True,
    }
    [quote] = only(events, QUOTE)
    assert (quote["lastPrice"], quote["volume"]) == (Decimal("21000"), 2)  # fills move no price
    [prints] = only(events, PRINT)
    assert prints == [
        {
            "symbolId": "F.US.MNQ",
            "price": Decimal("21000.25"),
            "timestamp": "2025-11-25T15:00:00.000000+00:00",
            "type": 0,
            "volume": 2,
        }
    ]


def test_a_price_move_publishes_the_quote_the_print_and_the_depth(
    book: Book, recorder: Recorder
) -> None:
    set_price(book, "21010")
    events = recorder.take()
    assert [e.target for e in events] == PRICE_MOVE
    assert {e.key for e in events} == {MNQ}
    [quote] = only(events, QUOTE)
    assert quote == {
        "symbol": "F.US.MNQ",
        "symbolName": "/MNQ",
        "lastPrice": Decimal("21010"),
        "bestBid": Decimal("21010"),
        "bestAsk": Decimal("21010.25"),
        "change": Decimal("10"),
        "changePercent": Decimal("0.05"),
        "open": Decimal("21000"),
        "high": Decimal("21010"),
        "low": Decimal("21000"),
        "volume": 1,
        "lastUpdated": "2025-11-25T15:00:00.000000+00:00",
        "timestamp": "2025-11-25T15:00:00.000000+00:00",
    }
    [depth] = only(events, DEPTH)
    assert [(d["type"], d["price"]) for d in depth] == [
        (4, Decimal("21010")),
        (3, Decimal("21010.25")),
    ]
    set_price(book, "21010")  # the same price again: a print, but the best prices stay
    assert recorder.targets() == [QUOTE, PRINT]


def test_closing_publishes_a_flat_position_and_the_realized_pnl(
    book: Book, recorder: Recorder
) -> None:
    place(book, request(size=2))
    set_price(book, "21010")
    recorder.take()
    place(book, request(side=SELL, size=2))
    events = recorder.take()
    assert [e.target for e in events] == [ORDER, *FILL]
    [trade] = only(events, TRADE)
    assert (trade["profitAndLoss"], trade["side"]) == (Decimal("39.00"), 1)
    [position] = only(events, POSITION)
    assert (position["size"], position["type"]) == (0, 1)  # flat: size 0
    [account] = only(events, ACCOUNT_EVENT)
    assert account["balance"] == Decimal("50037.52")
    assert only(events, PRINT)[0][0]["type"] == 1  # a sell took the bid


def test_partial_fills_publish_each_step(book: Book, recorder: Recorder) -> None:
    book.max_fill_size = 1
    place(book, request(size=2))
    events = recorder.take()
    assert [e.target for e in events] == [ORDER, *FILL]
    assert [(o["status"], o["fillVolume"]) for o in only(events, ORDER)] == [(1, 0), (1, 1)]
    set_price(book, "21001")
    events = recorder.take()
    assert [e.target for e in events] == [*PRICE_MOVE, *FILL]
    assert [(o["status"], o["fillVolume"]) for o in only(events, ORDER)] == [(2, 2)]
    assert only(events, POSITION)[0]["size"] == 2


def test_a_print_is_its_orders_side_when_it_took_the_quote(book: Book, recorder: Recorder) -> None:
    book.max_fill_size = 1
    place(book, request(size=2))  # a market buy: one lot now, one at the next price
    place(book, request(LIMIT, limit_price="20990"))  # rests until the market reaches it
    set_price(book, "21001")
    set_price(book, "20989.75")
    prints = [(p[0]["price"], p[0]["type"]) for p in only(recorder.take(), PRINT)]
    assert prints == [
        (Decimal("21000.25"), 0),  # the market buy's first lot takes the ask
        (Decimal("21001"), 0),  # the test's price, up
        (Decimal("21001.25"), 0),  # its second lot takes the ask too: a buyer's
        (Decimal("20989.75"), 1),  # the test's price, down
        (Decimal("20990"), 1),  # the market came to the resting limit: a seller's
    ]


def test_bracket_activation_and_the_oco_cancel(book: Book, recorder: Recorder) -> None:
    entry = place(book, request(LIMIT, limit_price="20990", sl=-8, tp=8))
    events = recorder.take()
    assert [(e.target, e.payload["status"]) for e in events] == [
        (ORDER, 1),
        (ORDER, 8),
        (ORDER, 8),
    ]
    assert [e.payload["parentOrderId"] for e in events] == [None, entry.id, entry.id]

    set_price(book, "20989.75")
    events = recorder.take()
    assert [e.target for e in events] == [*PRICE_MOVE, *FILL, ORDER, ORDER]
    stop, target = only(events, ORDER)[1:]
    assert (stop["status"], stop["stopPrice"]) == (1, Decimal("20988"))
    assert (target["status"], target["limitPrice"]) == (1, Decimal("20992"))

    set_price(book, "20992")
    events = recorder.take()
    assert [e.target for e in events] == [*PRICE_MOVE, *FILL, ORDER]
    filled, cancelled = only(events, ORDER)
    assert (filled["id"], filled["status"]) == (target["id"], 2)
    assert (cancelled["id"], cancelled["status"]) == (stop["id"], 3)
    assert only(events, POSITION)[0]["size"] == 0


def test_the_daily_loss_limit_publishes_the_stop_the_cancels_and_the_flattening(
    recorder: Recorder,
) -> None:
    book = make_book(recorder, daily_loss_limit=Decimal("10"))
    place(book, request(size=10))
    place(book, request(LIMIT, limit_price="20000"))
    recorder.take()
    set_price(book, "20999")
    events = recorder.take()
    assert [e.target for e in events] == [*PRICE_MOVE, ACCOUNT_EVENT, ORDER, ORDER, *FILL]
    assert events[3].payload["canTrade"] is False
    assert [o["status"] for o in only(events, ORDER)] == [3, 1, 2]
    assert only(events, POSITION)[0]["size"] == 0


def test_a_reset_publishes_the_restored_balances(book: Book, recorder: Recorder) -> None:
    place(book, request())
    recorder.take()
    book.clear()
    events = recorder.take()
    assert [(e.target, e.payload["balance"]) for e in events] == [
        (ACCOUNT_EVENT, Decimal("50000.0000")),
        (ACCOUNT_EVENT, Decimal("50000.0000")),
    ]
