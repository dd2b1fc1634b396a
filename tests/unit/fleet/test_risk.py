"""Pre-trade risk limits: configuration, the checks that need only the intent, the order
rate per minute, and the worst-case position check."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest

from ow_core.keys import Keys
from producer.contract import ModifyOrder, PlaceOrder
from tests.unit.worker.ledger_fakes import make_redis, order
from worker.broker.client import GatewayClient
from worker.broker.models import ContractInfo, OrderSide, Position
from worker.broker.transport import CallStats
from worker.fleet.risk import RiskConfig, RiskGate, RiskLimits, RiskRejected, check_static

KEYS = Keys("t")
ACCOUNT = 12345678


def place(**fields: Any) -> PlaceOrder:
    base: dict[str, Any] = {
        "request_id": "r",
        "reply_to": "t:reply:c",
        "account_id": ACCOUNT,
        "created_at": 0,
        "deadline": 1,
        "symbol": "MNQ",
        "side": "BUY",
        "quantity": 1,
    }
    return PlaceOrder(**{**base, **fields})


def test_an_account_table_refines_the_default(tmp_path: Path) -> None:
    path = tmp_path / "risk.toml"
    path.write_text(
        "[default]\nmax_order_size = 10\nallowed_symbols = ['MNQ', 'ES']\n\n"
        "[accounts.12345678]\nmax_order_size = 2\n"
    )
    config = RiskConfig.load(str(path), RiskLimits(max_position=4))
    mine = config.limits(ACCOUNT)
    assert (mine.max_order_size, mine.allowed_symbols, mine.max_position) == (2, ["MNQ", "ES"], 4)
    other = config.limits(999)
    assert (other.max_order_size, other.max_position) == (10, 4)
    assert not config.empty


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[default]\nmax_size = 1\n", "max_size"),
        ("[accounts.alpha]\nmax_order_size = 1\n", "account ID"),
        ("[default\n", "risk.toml"),
    ],
)
def test_a_bad_file_names_what_is_wrong(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "risk.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=problem):
        RiskConfig.load(str(path), RiskLimits())


def test_static_checks_refuse_size_and_symbol() -> None:
    limits = RiskLimits(max_order_size=2, allowed_symbols=["ES"])
    with pytest.raises(RiskRejected) as size:
        check_static(limits, place(symbol="ES", quantity=3))
    assert size.value.code == "risk_max_order_size"
    with pytest.raises(RiskRejected) as symbol:
        check_static(limits, place(symbol="MNQ"))
    assert symbol.value.code == "risk_symbol_not_allowed"
    check_static(limits, place(symbol="ES", quantity=2))


class Broker:
    """What the position check asks the broker."""

    def __init__(self, positions: list[Position], working: list[Any]) -> None:
        self.positions = positions
        self.working = working
        self.calls: list[str] = []
        self.contracts = self

    async def resolve(self, symbol: str, **_: Any) -> ContractInfo:
        return ContractInfo(symbol, "CON.F.US.MNQ.Z25", 0.25, 0.5)

    async def search_open_positions(self, account_id: int, **_: Any) -> list[Position]:
        self.calls.append("positions")
        return self.positions

    async def search_open_orders(self, account_id: int, **_: Any) -> list[Any]:
        self.calls.append("orders")
        return self.working


def gate(limits: RiskLimits, broker: Broker, redis: Any = None) -> RiskGate:
    config = RiskConfig(limits, {})
    return RiskGate(config, redis or make_redis(), KEYS, cast(GatewayClient, broker))


async def test_orders_per_minute_are_counted_and_a_refusal_does_not_use_one_up() -> None:
    redis = make_redis()
    risk = gate(RiskLimits(max_new_orders_per_minute=2), Broker([], []), redis)
    for _ in range(2):
        await risk.admit(place(), CallStats())
    with pytest.raises(RiskRejected) as refused:
        await risk.admit(place(), CallStats())
    assert refused.value.code == "risk_order_rate"
    [key] = [k async for k in redis.scan_iter("t:risk:orders:*")]
    assert await redis.get(key) == b"2"


async def test_the_position_check_takes_the_worst_case_of_position_working_and_in_flight() -> None:
    long_two = Position(id=1, account_id=ACCOUNT, contract_id="CON.F.US.MNQ.Z25", type=1, size=2)
    working_buy = order(9, status=1)
    broker = Broker([long_two], [working_buy])
    risk = gate(RiskLimits(max_position=4), broker)
    held = await risk.admit(place(quantity=1), CallStats())  # 2 + 1 working + 1 = 4
    assert held is not None
    with pytest.raises(RiskRejected) as refused:
        await risk.admit(place(quantity=1), CallStats())  # 2 + 1 + 1 in flight + 1 = 5
    assert refused.value.code == "risk_max_position"
    await risk.release(held)
    await risk.release(await risk.admit(place(quantity=1), CallStats()))
    assert broker.calls.count("positions") == 3  # one look per order checked
    assert working_buy.side == OrderSide.BID


async def test_a_modify_is_checked_for_size_only() -> None:
    broker = Broker([], [])
    risk = gate(RiskLimits(max_order_size=1, max_position=1), broker)
    modify = ModifyOrder(
        request_id="m", reply_to="t:reply:c", account_id=ACCOUNT, created_at=0, deadline=1,
        order_id=5, quantity=3,
    )  # fmt: skip
    with pytest.raises(RiskRejected):
        await risk.admit(modify, CallStats())
    assert broker.calls == []
