"""The futures contracts the simulator trades, the tick arithmetic on their prices, and the
trading day they trade in.

Tick sizes and values are the real ones (docs/gateway.md §4.4). Contract IDs follow the
gateway's `CON.F.US.<ROOT>.<MonthCode><YY>` format and are a pure function of a date, so a
test can pin the front month by passing the date it wants.
"""

import calendar
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from zoneinfo import ZoneInfo

# CME month codes, January first.
MONTH_CODES = "FGHJKMNQUVXZ"

# docs/gateway.md §4.1: "The response returns up to 20 contracts at a time."
SEARCH_LIMIT = 20


class Cycle(Enum):
    """Which months a product lists, and so which one is the front month on a given day."""

    QUARTERLY = "quarterly"  # equity index futures: H M U Z
    MONTHLY = "monthly"  # crude oil: every month
    BIMONTHLY = "bimonthly"  # gold: the even months G J M Q V Z


_LISTED_MONTHS: dict[Cycle, frozenset[int]] = {
    Cycle.QUARTERLY: frozenset({3, 6, 9, 12}),
    Cycle.MONTHLY: frozenset(range(1, 13)),
    Cycle.BIMONTHLY: frozenset({2, 4, 6, 8, 10, 12}),
}


@dataclass(frozen=True, slots=True)
class Product:
    """A futures product: what every month of it has in common."""

    symbol: str  # CME symbol, used in `name` ("NQ" in "NQZ5")
    root: str  # ProjectX root, used in the contract and symbol IDs ("ENQ")
    title: str  # first part of `description`
    tick_size: Decimal
    tick_value: Decimal
    reference_price: Decimal  # the market's price until a test or the random walk moves it
    cycle: Cycle
    fee: Decimal  # per contract and fill (a half turn), in dollars


@dataclass(frozen=True, slots=True)
class Contract:
    """One listed month of a product, as the gateway's ContractModel describes it (§4.1)."""

    id: str
    name: str
    description: str
    tick_size: Decimal
    tick_value: Decimal
    active_contract: bool
    symbol_id: str
    reference_price: Decimal
    product: str  # the CME symbol ("NQ"), how `/_sim/price` names a product
    fee: Decimal

    @property
    def point_value(self) -> Decimal:
        """Dollars per contract for a price move of 1.0."""
        return self.tick_value / self.tick_size


# Fees per contract and fill. docs/gateway.md §6.4: an EP (ES) half turn costs 1.4000; the
# ProjectX admin docs' trade example charges an MES half turn 0.3700. Simulator choice: the
# other full-size contracts cost what ES does and the other micros what MES does.
FULL_SIZE_FEE = Decimal("1.40")
MICRO_FEE = Decimal("0.37")

# fmt: off
PRODUCTS: tuple[Product, ...] = (
    Product(
        "MNQ", "MNQ", "Micro E-mini Nasdaq-100", Decimal("0.25"), Decimal("0.5"),
        Decimal("21000.00"), Cycle.QUARTERLY, MICRO_FEE,
    ),
    Product(
        "NQ", "ENQ", "E-mini NASDAQ-100", Decimal("0.25"), Decimal("5"),
        Decimal("21000.00"), Cycle.QUARTERLY, FULL_SIZE_FEE,
    ),
    Product(
        "MES", "MES", "Micro E-mini S&P 500", Decimal("0.25"), Decimal("1.25"),
        Decimal("6000.00"), Cycle.QUARTERLY, MICRO_FEE,
    ),
    Product(
        "ES", "EP", "E-Mini S&P 500", Decimal("0.25"), Decimal("12.5"),
        Decimal("6000.00"), Cycle.QUARTERLY, FULL_SIZE_FEE,
    ),
    Product(
        "MYM", "MYM", "Micro E-mini Dow Jones", Decimal("1"), Decimal("0.5"),
        Decimal("44000"), Cycle.QUARTERLY, MICRO_FEE,
    ),
    Product(
        "M2K", "M2K", "Micro E-mini Russell 2000", Decimal("0.1"), Decimal("0.5"),
        Decimal("2300.0"), Cycle.QUARTERLY, MICRO_FEE,
    ),
    Product(
        "MGC", "MGC", "Micro Gold", Decimal("0.1"), Decimal("1"),
        Decimal("2650.0"), Cycle.BIMONTHLY, MICRO_FEE,
    ),
    Product(
        "CL", "CLE", "Crude Light (Globex)", Decimal("0.01"), Decimal("10"),
        Decimal("70.00"), Cycle.MONTHLY, FULL_SIZE_FEE,
    ),
)
# fmt: on


def third_friday(year: int, month: int) -> date:
    """The third Friday of a month: the last trading day of CME equity index futures."""
    first = date(year, month, 1)
    first_friday = first + timedelta(days=(calendar.FRIDAY - first.weekday()) % 7)
    return first_friday + timedelta(weeks=2)


def roll_date(cycle: Cycle, year: int, month: int) -> date:
    """The first day on which the (year, month) contract is no longer the front month.

    Simulator choices, since the gateway does not document when `activeContract` moves on:
    - index futures roll on the Thursday 8 days before expiry (the CME roll-date convention);
    - crude oil stops trading about 3 business days before the 25th of the month before
      delivery, approximated here as the 20th of that month;
    - gold is left before its first notice day (end of the previous month), so the front
      gold contract is the first even month after the current one.
    """
    match cycle:
        case Cycle.QUARTERLY:
            return third_friday(year, month) - timedelta(days=8)
        case Cycle.MONTHLY:
            previous = date(year, month, 1) - timedelta(days=1)
            return previous.replace(day=20)
        case Cycle.BIMONTHLY:
            return date(year, month, 1)


def _step(cycle: Cycle, year: int, month: int, by: int) -> tuple[int, int]:
    """The listed month `by` listed months after the given one (before it, if negative)."""
    index = year * 12 + month - 1
    direction = 1 if by > 0 else -1
    for _ in range(abs(by)):
        index += direction
        # Ends within three steps: every cycle lists a month at least every quarter.
        while index % 12 + 1 not in _LISTED_MONTHS[cycle]:
            index += direction
    return index // 12, index % 12 + 1


def front_month(cycle: Cycle, on: date) -> tuple[int, int]:
    """(year, month) of the listed contract that is the front month on the given day."""
    year, month = on.year, on.month
    if month not in _LISTED_MONTHS[cycle]:
        year, month = _step(cycle, year, month, 1)
    while on >= roll_date(cycle, year, month):
        year, month = _step(cycle, year, month, 1)
    return year, month


def contract_for(product: Product, year: int, month: int, *, active: bool = True) -> Contract:
    """The contract of one product month, named the way the gateway names it (§4.4)."""
    code = MONTH_CODES[month - 1]
    return Contract(
        id=f"CON.F.US.{product.root}.{code}{year % 100:02d}",
        name=f"{product.symbol}{code}{year % 10}",
        description=f"{product.title}: {calendar.month_name[month]} {year}",
        tick_size=product.tick_size,
        tick_value=product.tick_value,
        active_contract=active,
        symbol_id=f"F.US.{product.root}",
        reference_price=product.reference_price,
        product=product.symbol,
        fee=product.fee,
    )


def front_contracts(on: date) -> tuple[Contract, ...]:
    """The front-month contract of every product on the given day."""
    return tuple(contract_for(p, *front_month(p.cycle, on)) for p in PRODUCTS)


def listed_contracts(on: date) -> tuple[Contract, ...]:
    """Three months of every product on the given day: front, next and the last expired one.

    Simulator choices (the gateway documents no listing rule): the front and the next listed
    month are active and tradable, front first, so a symbol search finds more than one
    match; the month before the front has expired (§4.2: "Expired contracts still resolve
    (activeContract:false)"), it resolves by ID but is neither searched nor tradable.
    """
    listed: list[Contract] = []
    for product in PRODUCTS:
        year, month = front_month(product.cycle, on)
        listed.append(contract_for(product, year, month))
        listed.append(contract_for(product, *_step(product.cycle, year, month, 1)))
        expired = _step(product.cycle, year, month, -1)
        listed.append(contract_for(product, *expired, active=False))
    return tuple(listed)


def is_on_tick(price: Decimal, tick_size: Decimal) -> bool:
    """Whether a price is a whole number of ticks; Decimal keeps 0.1-style ticks exact."""
    return price % tick_size == 0


# CME Globex trading days begin at 17:00 Chicago time on the calendar day before.
_CHICAGO = ZoneInfo("America/Chicago")
_SESSION_OPENS = time(17)


def trading_day(moment: datetime) -> date:
    """The trading day a moment belongs to (simulator choice: weekends are not special)."""
    local = moment.astimezone(_CHICAGO)
    return local.date() + timedelta(days=1) if local.time() >= _SESSION_OPENS else local.date()


def trading_day_start(day: date) -> datetime:
    """When a trading day begins, in UTC."""
    return datetime.combine(day - timedelta(days=1), _SESSION_OPENS, _CHICAGO).astimezone(UTC)


class ContractTable:
    """The contracts the simulator knows, fixed at start-up (simulator choice: no mid-run roll)."""

    def __init__(self, contracts: Iterable[Contract]) -> None:
        self._by_id = {c.id: c for c in contracts}
        self._fronts: dict[str, Contract] = {}
        for contract in self._by_id.values():
            if contract.active_contract:
                self._fronts.setdefault(contract.product.casefold(), contract)

    def get(self, contract_id: str) -> Contract | None:
        """The contract with this ID, or None."""
        return self._by_id.get(contract_id)

    def __getitem__(self, contract_id: str) -> Contract:
        return self._by_id[contract_id]

    def active(self) -> list[Contract]:
        """Every tradable contract, in table order."""
        return [c for c in self._by_id.values() if c.active_contract]

    def fronts(self) -> list[Contract]:
        """The front month of every product: its first active contract in table order."""
        return list(self._fronts.values())

    def front(self, symbol: str) -> Contract | None:
        """The front month of a product by its CME symbol ("MNQ"), any case, or None."""
        return self._fronts.get(symbol.strip().casefold())

    def search(self, text: str | None, limit: int = SEARCH_LIMIT) -> list[Contract]:
        """Active contracts whose symbol ID (holds the root), name or description contains
        the text, ignoring case.

        docs/gateway.md §4.1: the live search is a substring match ("NQ" also finds "MNQ").
        Simulator choice: no search text lists everything.
        """
        needle = (text or "").casefold()
        found = [
            c
            for c in self.active()
            if needle in c.symbol_id.casefold()
            or needle in c.name.casefold()
            or needle in c.description.casefold()
        ]
        return found[:limit]
