"""Contract table: roll dates, naming, tick specs, tick arithmetic and search."""

from datetime import date
from decimal import Decimal

import pytest

from simulator.contracts import (
    PRODUCTS,
    ContractTable,
    Cycle,
    contract_for,
    front_contracts,
    front_month,
    is_on_tick,
    third_friday,
)


def test_third_friday() -> None:
    assert third_friday(2025, 12) == date(2025, 12, 19)
    assert third_friday(2026, 3) == date(2026, 3, 20)
    assert third_friday(2026, 5) == date(2026, 5, 15)  # the 1st is a Friday


@pytest.mark.parametrize(
    ("cycle", "on", "expected"),
    [
        # Index futures roll 8 days before the third Friday: Dec 2025 rolls on Dec 11.
        (Cycle.QUARTERLY, date(2025, 1, 5), (2025, 3)),
        (Cycle.QUARTERLY, date(2025, 11, 25), (2025, 12)),
        (Cycle.QUARTERLY, date(2025, 12, 10), (2025, 12)),
        (Cycle.QUARTERLY, date(2025, 12, 11), (2026, 3)),
        (Cycle.QUARTERLY, date(2025, 12, 31), (2026, 3)),
        # Crude: the next month until the 20th, then the month after.
        (Cycle.MONTHLY, date(2025, 11, 10), (2025, 12)),
        (Cycle.MONTHLY, date(2025, 11, 19), (2025, 12)),
        (Cycle.MONTHLY, date(2025, 11, 20), (2026, 1)),
        (Cycle.MONTHLY, date(2025, 12, 25), (2026, 2)),
        # Gold: the first even month after the current one.
        (Cycle.BIMONTHLY, date(2025, 11, 25), (2025, 12)),
        (Cycle.BIMONTHLY, date(2025, 12, 1), (2026, 2)),
        (Cycle.BIMONTHLY, date(2026, 1, 15), (2026, 2)),
        (Cycle.BIMONTHLY, date(2026, 2, 1), (2026, 4)),
    ],
)
def test_front_month(cycle: Cycle, on: date, expected: tuple[int, int]) -> None:
    assert front_month(cycle, on) == expected


def test_contract_naming_follows_the_gateway() -> None:
    nq = next(p for p in PRODUCTS if p.symbol == "NQ")
    contract = contract_for(nq, 2025, 9)
    # docs/gateway.md §4.1 example, verbatim.
    assert contract.id == "CON.F.US.ENQ.U25"
    assert contract.name == "NQU5"
    assert contract.description == "E-mini NASDAQ-100: September 2025"
    assert contract.symbol_id == "F.US.ENQ"
    assert contract.active_contract is True


def test_front_contracts_on_a_known_day() -> None:
    by_name = {c.name: c for c in front_contracts(date(2025, 11, 25))}
    assert sorted(by_name) == sorted(
        ["MNQZ5", "NQZ5", "MESZ5", "ESZ5", "MYMZ5", "M2KZ5", "MGCZ5", "CLF6"]
    )
    assert by_name["ESZ5"].id == "CON.F.US.EP.Z25"
    assert by_name["MGCZ5"].id == "CON.F.US.MGC.Z25"
    assert by_name["CLF6"].id == "CON.F.US.CLE.F26"
    assert by_name["CLF6"].description == "Crude Light (Globex): January 2026"


@pytest.mark.parametrize(
    ("symbol", "tick_size", "tick_value", "reference"),
    [
        ("MNQ", "0.25", "0.5", "21000.00"),
        ("NQ", "0.25", "5", "21000.00"),
        ("MES", "0.25", "1.25", "6000.00"),
        ("ES", "0.25", "12.5", "6000.00"),
        ("MYM", "1", "0.5", "44000"),
        ("M2K", "0.1", "0.5", "2300.0"),
        ("MGC", "0.1", "1", "2650.0"),
        ("CL", "0.01", "10", "70.00"),
    ],
)
def test_tick_specs(symbol: str, tick_size: str, tick_value: str, reference: str) -> None:
    product = next(p for p in PRODUCTS if p.symbol == symbol)
    assert product.tick_size == Decimal(tick_size)
    assert product.tick_value == Decimal(tick_value)
    assert product.reference_price == Decimal(reference)
    assert is_on_tick(product.reference_price, product.tick_size)


@pytest.mark.parametrize(
    ("price", "tick", "expected"),
    [
        ("21000.25", "0.25", True),
        ("21000.1", "0.25", False),
        ("2300.3", "0.1", True),  # 2300.3 % 0.1 is not 0 in binary floating point
        ("2300.05", "0.1", False),
        ("70.07", "0.01", True),
        ("70.015", "0.01", False),
        ("44001", "1", True),
        ("44000.5", "1", False),
        ("21000.250000000", "0.25", True),
    ],
)
def test_is_on_tick(price: str, tick: str, expected: bool) -> None:
    assert is_on_tick(Decimal(price), Decimal(tick)) is expected


def test_search_is_a_case_insensitive_substring_match() -> None:
    table = ContractTable(front_contracts(date(2025, 11, 25)))
    assert [c.name for c in table.search("NQ")] == ["MNQZ5", "NQZ5"]
    assert [c.name for c in table.search("enq")] == ["NQZ5"]
    assert [c.name for c in table.search("gold")] == ["MGCZ5"]
    assert table.search("zzz") == []
    assert len(table.search(None)) == len(PRODUCTS)
    assert len(table.search("", limit=3)) == 3


def test_table_lookup() -> None:
    table = ContractTable(front_contracts(date(2025, 11, 25)))
    assert table.get("CON.F.US.MNQ.Z25") is not None
    assert table.get("CON.F.US.MNQ.H25") is None
    assert table["CON.F.US.MNQ.Z25"].tick_size == Decimal("0.25")
