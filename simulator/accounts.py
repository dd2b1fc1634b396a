"""Accounts, positions and trades: what fills do to an account. Pure; the caller passes `now`.

Every fill is a half-turn trade (docs/gateway.md §6.4). It moves the net position of its
account and contract, realizes P&L on the part that closes, and charges fees; the balance
moves by both. The venue's daily loss limit is measured here.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from enum import IntEnum

from simulator.contracts import Contract, ContractTable, trading_day, trading_day_start
from simulator.orders import OrderSide

_CENT = Decimal("0.01")
FIRST_POSITION_ID = 1
FIRST_TRADE_ID = 1


class PositionType(IntEnum):
    """Gateway PositionType (§6.1): positions carry an unsigned size plus this direction."""

    UNDEFINED = 0
    LONG = 1
    SHORT = 2


@dataclass(slots=True)
class Account:
    """A trading account (§3 TradingAccountModel)."""

    id: int
    name: str
    balance: Decimal
    can_trade: bool = True
    is_visible: bool = True
    simulated: bool = True


@dataclass(slots=True)
class Position:
    """Net position of one account in one contract."""

    id: int
    account_id: int
    contract_id: str
    creation_timestamp: datetime
    size: int  # signed: > 0 long, < 0 short, 0 once closed (then it is no longer open)
    average_price: Decimal
    # The direction it had while open: a closed position keeps it (the hub sends size 0).
    type: PositionType = PositionType.UNDEFINED

    def __post_init__(self) -> None:
        if self.size:
            self.type = PositionType.LONG if self.size > 0 else PositionType.SHORT


@dataclass(frozen=True, slots=True)
class Trade:
    """A half-turn trade (§6.4 HalfTradeModel)."""

    id: int
    account_id: int
    contract_id: str
    creation_timestamp: datetime
    price: Decimal
    profit_and_loss: Decimal | None  # None: it opened or added to a position
    fees: Decimal
    side: OrderSide
    size: int
    order_id: int
    voided: bool = False


@dataclass(frozen=True, slots=True)
class Fill:
    """What one fill changed: its trade, the positions it touched (a flip closes one and
    opens another), and the account."""

    trade: Trade
    positions: tuple[Position, ...]
    account: Account


def realized(contract: Contract, position: Position, exit_price: Decimal, size: int) -> Decimal:
    """Dollars made closing `size` contracts of a position at `exit_price`, to the cent."""
    direction = 1 if position.size > 0 else -1
    move = (exit_price - position.average_price) * direction
    return (move * size * contract.point_value).quantize(_CENT)


class Ledger:
    """Balances, positions and trades of every account.

    `fee` gives the fee per contract of a fill in a contract. The trading day is the CME
    session's (contracts.trading_day): `roll` starts a new one for every account at once.
    """

    def __init__(
        self,
        accounts: Iterable[Account],
        contracts: ContractTable,
        fee: Callable[[Contract], Decimal],
    ) -> None:
        self._initial = {a.id: replace(a) for a in accounts}
        self._contracts = contracts
        self._fee = fee
        self._next_position_id = FIRST_POSITION_ID
        self._next_trade_id = FIRST_TRADE_ID
        self.clear()

    def clear(self) -> None:
        """Balances back to where they started, no positions, no trades; IDs keep counting."""
        self._accounts = {i: replace(a) for i, a in self._initial.items()}
        self._positions: dict[tuple[int, str], Position] = {}
        self._trades: dict[int, list[Trade]] = {i: [] for i in self._accounts}
        self._day_start = {i: a.balance for i, a in self._accounts.items()}
        self._next_roll: datetime | None = None

    # --- queries -------------------------------------------------------------------------

    def account(self, account_id: int) -> Account | None:
        """The account, or None."""
        return self._accounts.get(account_id)

    def accounts(self) -> list[Account]:
        """Every account."""
        return list(self._accounts.values())

    def position(self, account_id: int, contract_id: str) -> Position | None:
        """The open position of an account in a contract, or None."""
        return self._positions.get((account_id, contract_id))

    def positions(self, account_id: int) -> list[Position]:
        """Open positions of an account."""
        return [p for p in self._positions.values() if p.account_id == account_id]

    def holders(self, contract_id: str) -> list[int]:
        """Accounts with an open position in the contract."""
        return [p.account_id for p in self._positions.values() if p.contract_id == contract_id]

    def trades(self, account_id: int, start: datetime | None, end: datetime) -> list[Trade]:
        """Trades of an account made in [start, end], newest first as in the docs' example."""
        return [
            t
            for t in reversed(self._trades.get(account_id, []))
            if (start is None or start <= t.creation_timestamp) and t.creation_timestamp <= end
        ]

    def day_loss(self, account_id: int, mark: Callable[[str], Decimal]) -> Decimal:
        """What the account lost since the trading day began, open positions valued at `mark`
        (a price per contract ID): positive for a loss."""
        account = self._accounts[account_id]
        open_pnl = sum(
            (
                (mark(p.contract_id) - p.average_price)
                * p.size
                * self._contracts[p.contract_id].point_value
                for p in self.positions(account_id)
            ),
            Decimal(0),
        )
        return self._day_start[account_id] - account.balance - open_pnl

    # --- changes -------------------------------------------------------------------------

    def roll(self, now: datetime) -> list[Account]:
        """Start a new trading day if `now` is in one: losses count from the balance then,
        and accounts the daily loss limit stopped may trade again. Returns the accounts whose
        canTrade changed."""
        if self._next_roll is not None and now < self._next_roll:
            return []
        first = self._next_roll is None
        self._next_roll = trading_day_start(trading_day(now) + timedelta(days=1))
        if first:
            return []
        unlocked = []
        for account in self._accounts.values():
            self._day_start[account.id] = account.balance
            if not account.can_trade:
                account.can_trade = True
                unlocked.append(account)
        return unlocked

    def lock(self, account_id: int) -> Account:
        """The account may not trade again until the next trading day or a reset."""
        account = self._accounts[account_id]
        account.can_trade = False
        return account

    def fill(
        self,
        contract: Contract,
        account_id: int,
        order_id: int,
        side: OrderSide,
        size: int,
        fill_price: Decimal,
        now: datetime,
    ) -> Fill:
        """Book a fill: the trade, the position it moves, and the balance."""
        key = (account_id, contract.id)
        position = self._positions.get(key)
        signed = side.sign * size
        pnl: Decimal | None = None
        touched: list[Position] = []
        if position is None:
            position = self._open(account_id, contract.id, signed, fill_price, now)
            touched.append(position)
        elif position.size * signed > 0:
            # Added to: the volume-weighted average. Reducing leaves the average alone.
            total = position.average_price * abs(position.size) + fill_price * size
            position.size += signed
            position.average_price = total / abs(position.size)
            touched.append(position)
        else:
            closing = min(size, abs(position.size))
            pnl = realized(contract, position, fill_price, closing)
            position.size += side.sign * closing
            touched.append(position)
            if position.size == 0:
                del self._positions[key]
            if closing < size:
                # Flipped through flat: the new net position starts at this fill.
                rest = side.sign * (size - closing)
                touched.append(self._open(account_id, contract.id, rest, fill_price, now))
        fees = self._fee(contract) * size
        account = self._accounts[account_id]
        account.balance += (pnl or 0) - fees
        trade = Trade(
            id=self._next_trade_id,
            account_id=account_id,
            contract_id=contract.id,
            creation_timestamp=now,
            price=fill_price,
            profit_and_loss=pnl,
            fees=fees,
            side=side,
            size=size,
            order_id=order_id,
        )
        self._next_trade_id += 1
        self._trades[account_id].append(trade)
        return Fill(trade, tuple(touched), account)

    def _open(
        self, account_id: int, contract_id: str, size: int, at: Decimal, now: datetime
    ) -> Position:
        position = Position(self._next_position_id, account_id, contract_id, now, size, at)
        self._next_position_id += 1
        self._positions[(account_id, contract_id)] = position
        return position
