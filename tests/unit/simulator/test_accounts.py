"""Positions, trades with P&L and fees, balances, closing, and the daily loss limit.

MNQ moves $2 a point ($0.50 a tick) and costs $0.37 a contract per fill.
"""

from datetime import timedelta
from decimal import Decimal

import pytest

from simulator.accounts import PositionType
from simulator.book import ACCOUNT_LOCKED, Book
from simulator.orders import OrderStatus, Outcome
from tests.unit.simulator.helpers import (
    ACCOUNT,
    LIMIT,
    MNQ,
    NOW,
    OTHER_ACCOUNT,
    SELL,
    make_book,
    place,
    request,
    set_price,
)


def balance(book: Book, account_id: int = ACCOUNT) -> Decimal:
    account = book.ledger.account(account_id)
    assert account is not None
    return account.balance


@pytest.fixture
def book() -> Book:
    return make_book()


def test_a_fill_that_opens_has_no_pnl_and_one_that_closes_realizes_it(book: Book) -> None:
    buy = place(book, request(size=2))  # 2 @ 21000.25
    set_price(book, "21010")
    sell = place(book, request(side=SELL, size=3))  # 3 @ 21010: closes 2, opens a short 1
    set_price(book, "21005")
    cover = place(book, request())  # 1 @ 21005.25

    third, second, first = book.trades(ACCOUNT, None, NOW)
    assert (first.order_id, first.price, first.size, first.side) == (
        buy.id,
        Decimal("21000.25"),
        2,
        0,
    )
    assert (first.profit_and_loss, first.fees, first.voided) == (None, Decimal("0.74"), False)
    # 9.75 points on 2 contracts.
    assert (second.order_id, second.profit_and_loss, second.fees) == (
        sell.id,
        Decimal("39.00"),
        Decimal("1.11"),
    )
    # The short from 21010 bought back at 21005.25: 4.75 points on 1.
    assert (third.order_id, third.profit_and_loss) == (cover.id, Decimal("9.50"))
    assert balance(book) == Decimal(50000) + Decimal("48.50") - Decimal("2.22")
    assert book.positions(ACCOUNT) == []


def test_positions_net_per_account_and_contract(book: Book) -> None:
    place(book, request(size=2))
    set_price(book, "21001")
    place(book, request(size=1))  # adds at 21001.25
    place(book, request(account_id=OTHER_ACCOUNT, side=SELL))
    [mine] = book.positions(ACCOUNT)
    [theirs] = book.positions(OTHER_ACCOUNT)
    assert (mine.type, mine.size, mine.average_price) == (
        PositionType.LONG,
        3,
        Decimal("63001.75") / 3,
    )
    assert (theirs.type, theirs.size, theirs.average_price) == (
        PositionType.SHORT,
        -1,
        Decimal("21001"),
    )
    place(book, request(side=SELL, size=1))
    [mine] = book.positions(ACCOUNT)
    assert mine.size == 2  # reducing keeps the average
    assert mine.average_price == Decimal("63001.75") / 3


def test_a_flip_closes_one_position_and_opens_another(book: Book) -> None:
    place(book, request(size=1))
    [long] = book.positions(ACCOUNT)
    place(book, request(side=SELL, size=3))
    [short] = book.positions(ACCOUNT)
    assert (long.size, short.size, short.type) == (0, -2, PositionType.SHORT)
    assert short.id != long.id
    assert long.type == PositionType.LONG  # a closed position keeps its direction


def test_a_fee_per_contract_overrides_the_products() -> None:
    book = make_book(fee_per_contract=Decimal("2.50"))
    place(book, request(size=2))
    assert book.trades(ACCOUNT, None, NOW)[0].fees == Decimal("5.00")
    assert balance(book) == Decimal("49995.00")


def test_trades_are_found_by_time_window_newest_first(book: Book) -> None:
    times = [NOW + timedelta(seconds=s) for s in (0, 10, 20)]
    ids = [place(book, request(), t).id for t in times]
    found = book.trades(ACCOUNT, times[1], times[2])
    assert [t.order_id for t in found] == [ids[2], ids[1]]
    assert book.trades(ACCOUNT, times[2] + timedelta(seconds=1), times[2] + timedelta(days=1)) == []
    assert book.trades(OTHER_ACCOUNT, None, times[2]) == []


def test_partial_close_and_close_trade_off_at_market(book: Book) -> None:
    place(book, request(size=3))
    set_price(book, "21004")
    assert book.close_position(ACCOUNT, MNQ, NOW, size=1) == Outcome()
    [position] = book.positions(ACCOUNT)
    assert position.size == 2
    partial = book.orders()[-1]
    assert (partial.type, partial.side, partial.size, partial.filled_price) == (
        2,
        SELL,
        1,
        Decimal("21004"),
    )
    assert book.close_position(ACCOUNT, MNQ, NOW, size=3) == Outcome(5, "Invalid close size")
    assert book.close_position(ACCOUNT, MNQ, NOW, size=0) == Outcome(5, "Invalid close size")
    assert book.close_position(ACCOUNT, MNQ, NOW) == Outcome()
    assert book.positions(ACCOUNT) == []
    # 3.75 points on 3 contracts.
    assert sum(t.profit_and_loss or 0 for t in book.trades(ACCOUNT, None, NOW)) == Decimal("22.50")


@pytest.mark.parametrize(
    ("account_id", "contract_id", "size", "expected"),
    [
        (99, MNQ, None, Outcome(1, "Account not found")),
        (ACCOUNT, "CON.F.US.NOPE.Z25", None, Outcome(3, "Contract not found")),
        (ACCOUNT, "CON.F.US.MNQ.U25", None, Outcome(4, "Contract is not active")),
        (ACCOUNT, MNQ, None, Outcome(2, "Position not found")),
        (99, MNQ, 1, Outcome(1, "Account not found")),
        (ACCOUNT, "CON.F.US.MNQ.U25", 1, Outcome(4, "Contract is not active")),
        (ACCOUNT, MNQ, 1, Outcome(2, "Position not found")),
    ],
)
def test_close_rejections(
    book: Book, account_id: int, contract_id: str, size: int | None, expected: Outcome
) -> None:
    assert book.close_position(account_id, contract_id, NOW, size=size) == expected


# --- the daily loss limit --------------------------------------------------------------


def test_the_daily_loss_limit_flattens_cancels_and_stops_the_account() -> None:
    book = make_book(daily_loss_limit=Decimal("100"))
    place(book, request(size=10))  # 10 @ 21000.25, $3.70 of fees
    resting = place(book, request(LIMIT, limit_price="20000"))
    place(book, request(account_id=OTHER_ACCOUNT))

    set_price(book, "20996")  # open loss 85.00 + fees 3.70: under the limit
    assert resting.status == OrderStatus.OPEN
    set_price(book, "20995")  # 105.00 + 3.70
    assert [resting.status] == [OrderStatus.CANCELLED]
    assert book.positions(ACCOUNT) == []
    flatten = book.orders()[-1]
    assert (flatten.side, flatten.size, flatten.filled_price, flatten.custom_tag) == (
        SELL,
        10,
        Decimal("20995"),
        None,
    )
    account = book.ledger.account(ACCOUNT)
    assert account is not None
    assert (account.can_trade, account.balance) == (False, Decimal("49887.60"))
    assert book.place(request(), NOW) == Outcome(4, ACCOUNT_LOCKED)
    # Each account has its own limit: one lot down 5.25 points is not 100 dollars.
    other = book.ledger.account(OTHER_ACCOUNT)
    assert other is not None
    assert other.can_trade is True
    assert len(book.positions(OTHER_ACCOUNT)) == 1


def test_a_stopped_account_trades_again_on_the_next_trading_day() -> None:
    book = make_book(daily_loss_limit=Decimal("10"))
    place(book, request(size=10))
    set_price(book, "20999")
    assert book.place(request(), NOW).error_code == 4
    # 17:00 in Chicago starts the next trading day.
    next_day = NOW.replace(hour=23, minute=0)
    assert book.place(request(), next_day).success
    account = book.ledger.account(ACCOUNT)
    assert account is not None
    assert account.can_trade is True


def test_a_reset_restores_balances_and_trading() -> None:
    book = make_book(daily_loss_limit=Decimal("10"))
    place(book, request(size=10))
    set_price(book, "20999")
    book.clear()
    assert balance(book) == Decimal(50000)
    assert book.place(request(), NOW).success
    assert book.market.quote(MNQ).last == Decimal(21000)
