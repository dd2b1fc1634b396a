"""Shared helpers of the book's unit tests: a venue on 2025-11-25, orders, placing."""

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from simulator.accounts import Account
from simulator.book import Book
from simulator.contracts import ContractTable, listed_contracts
from simulator.market import Market
from simulator.orders import Bracket, Order, OrderRequest, OrderSide, OrderType
from simulator.publish import Publisher

NOW = datetime(2025, 11, 25, 15, 0, tzinfo=UTC)  # 09:00 in Chicago: trading day 11-25
MNQ = "CON.F.US.MNQ.Z25"  # tick 0.25, $0.50 a tick, fee 0.37; it sits at 21000
CL = "CON.F.US.CLE.F26"
TICK = Decimal("0.25")
BUY, SELL = OrderSide.BID, OrderSide.ASK
LIMIT, MARKET, STOP = OrderType.LIMIT, OrderType.MARKET, OrderType.STOP
ACCOUNT, OTHER_ACCOUNT = 1, 2
CONTRACTS = ContractTable(listed_contracts(date(2025, 11, 25)))


def make_book(publisher: Publisher | None = None, **rules: Any) -> Book:
    """A book of two $50,000 accounts on a fresh market; `rules` are Book's keywords."""
    return Book(
        [Account(ACCOUNT, "A", Decimal(50000)), Account(OTHER_ACCOUNT, "B", Decimal(50000))],
        CONTRACTS,
        Market(CONTRACTS, publisher),
        publisher,
        **rules,
    )


def request(
    type: int = MARKET,
    side: int = BUY,
    size: int = 1,
    *,
    account_id: int = ACCOUNT,
    contract_id: str = MNQ,
    limit_price: str | None = None,
    stop_price: str | None = None,
    trail_price: str | None = None,
    tag: str | None = None,
    sl: int | None = None,
    tp: int | None = None,
) -> OrderRequest:
    """An Order/place request: a 1-lot MNQ market buy unless told otherwise."""
    return OrderRequest(
        account_id=account_id,
        contract_id=contract_id,
        type=type,
        side=side,
        size=size,
        limit_price=None if limit_price is None else Decimal(limit_price),
        stop_price=None if stop_price is None else Decimal(stop_price),
        trail_price=None if trail_price is None else Decimal(trail_price),
        custom_tag=tag,
        stop_loss=None if sl is None else Bracket(sl, STOP),
        take_profit=None if tp is None else Bracket(tp, LIMIT),
    )


def place(book: Book, req: OrderRequest, now: datetime = NOW) -> Order:
    """Place an order that must be accepted; the order."""
    outcome = book.place(req, now)
    assert outcome.success, outcome
    assert outcome.order_id is not None
    order = book.order(outcome.order_id)
    assert order is not None
    return order


def legs(book: Book, parent: Order) -> list[Order]:
    """The bracket legs of an entry, stop loss first."""
    return [o for o in book.orders() if o.parent_order_id == parent.id]


def set_price(book: Book, last: str, now: datetime = NOW, contract_id: str = MNQ) -> None:
    """A trade printed at `last`."""
    book.set_price(contract_id, Decimal(last), now)
