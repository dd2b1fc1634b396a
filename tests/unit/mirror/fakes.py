"""Gateway models and a scripted broker for the mirror's unit tests."""

from __future__ import annotations

from typing import Any

from worker.broker.models import Account, Contract, Order, Position, Trade

ACCOUNT = 12345678
MNQ = "CON.F.US.MNQ.Z25"


def gateway_order(order_id: int, **fields: Any) -> Order:
    base: dict[str, Any] = {
        "id": order_id,
        "account_id": ACCOUNT,
        "contract_id": MNQ,
        "creation_timestamp": "2026-12-01T15:00:00+00:00",
        "update_timestamp": "2026-12-01T15:00:00.1234567+00:00",
        "status": 1,
        "type": 1,
        "side": 0,
        "size": 1,
        "limit_price": 21000.0,
    }
    return Order(**{**base, **fields})


def gateway_trade(trade_id: int, order_id: int, **fields: Any) -> Trade:
    base: dict[str, Any] = {
        "id": trade_id,
        "account_id": ACCOUNT,
        "contract_id": MNQ,
        "creation_timestamp": "2026-12-01T15:00:01Z",
        "price": 21000.0,
        "side": 0,
        "size": 1,
        "order_id": order_id,
        "fees": 0.37,
    }
    return Trade(**{**base, **fields})


def gateway_position(size: int, *, long: bool = True, average: float = 21000.0) -> Position:
    return Position(
        id=1, account_id=ACCOUNT, contract_id=MNQ, type=1 if long else 2, size=size,
        average_price=average,
    )  # fmt: skip


def gateway_account(balance: float = 50_000.0) -> Account:
    return Account(id=ACCOUNT, name="PRAC-1", balance=balance, can_trade=True, is_visible=True)


MNQ_CONTRACT = Contract(id=MNQ, name="MNQZ5", tick_size=0.25, tick_value=0.5)


class RestBroker:
    """What reconciliation reads from REST, set by the test."""

    def __init__(self) -> None:
        self.orders: list[Order] = []
        self.open_orders: list[Order] = []
        self.trades: list[Trade] = []
        self.positions: list[Position] = []
        self.accounts = [gateway_account()]
        self.calls: list[str] = []

    async def search_accounts(self, **_: Any) -> list[Account]:
        self.calls.append("accounts")
        return self.accounts

    async def search_orders(self, account_id: int, since: Any, **_: Any) -> list[Order]:
        self.calls.append("orders")
        return self.orders

    async def search_open_orders(self, account_id: int, **_: Any) -> list[Order]:
        self.calls.append("open orders")
        return self.open_orders

    async def search_trades(self, account_id: int, since: Any, **_: Any) -> list[Trade]:
        self.calls.append("trades")
        return self.trades

    async def search_open_positions(self, account_id: int, **_: Any) -> list[Position]:
        self.calls.append("positions")
        return self.positions


def symbols(contract_id: str) -> str | None:
    return "MNQ" if contract_id == MNQ else None
