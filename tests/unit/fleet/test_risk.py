"""Pre-trade risk limits: configuration, the checks that need only the intent, the order
rate per minute, and the worst-case position check."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest

from ow_core.keys import Keys
from producer.contract import ModifyOrder, PlaceOrder
from tests.unit.mirror.fakes import MNQ, gateway_order, gateway_position, symbols
from tests.unit.worker.ledger_fakes import make_redis, order
from worker.broker.client import GatewayClient
from worker.broker.models import ContractInfo, OrderSide, Position
from worker.broker.transport import CallStats
from worker.fleet.risk import RiskConfig, RiskGate, RiskLimits, RiskRejected, check_static
from worker.mirror import normalize
from worker.mirror.exposure import UNSEEN_GRACE_MS, MirrorExposure, exposure_of
from worker.mirror.store import MirrorStore

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


# --- from the mirror, while a leader keeps it live ------------------------------------------


async def mirrored(redis: Any, *events: Any) -> None:
    store = MirrorStore(redis, KEYS)
    for event in events:
        await store.apply(event)
    await store.mark_synced(ACCOUNT, 1, 60_000)


def mirror_gate(limits: RiskLimits, broker: Broker, redis: Any) -> RiskGate:
    return RiskGate(
        RiskConfig(limits, {}), redis, KEYS, cast(GatewayClient, broker),
        MirrorExposure(redis, KEYS),
    )  # fmt: skip


async def test_a_live_mirror_answers_the_position_check_without_the_broker() -> None:
    redis = make_redis()
    await mirrored(
        redis,
        normalize.position_update(gateway_position(2), symbols, at=1),
        normalize.order_update(gateway_order(9, size=2, fill_volume=1), symbols, request_id=None),
    )
    broker = Broker([], [])
    risk = mirror_gate(RiskLimits(max_position=4), broker, redis)
    held = await risk.admit(place(quantity=1), CallStats())  # 2 + 1 working + 1 = 4
    with pytest.raises(RiskRejected) as refused:
        await risk.admit(place(quantity=1), CallStats())
    assert "position 2, working buy 1" in str(refused.value)
    await risk.release(held)
    assert broker.calls == []


async def test_a_mirror_no_leader_keeps_live_is_not_trusted() -> None:
    redis = make_redis()
    await MirrorStore(redis, KEYS).apply(
        normalize.position_update(gateway_position(4), symbols, at=1)
    )  # a stale mirror says 4 long; the broker says flat
    broker = Broker([], [])
    risk = mirror_gate(RiskLimits(max_position=4), broker, redis)
    await risk.release(await risk.admit(place(quantity=1), CallStats()))
    assert broker.calls == ["positions", "orders"]


async def test_an_accepted_order_counts_until_the_mirror_shows_it() -> None:
    redis = make_redis()
    await mirrored(redis)
    broker = Broker([], [])
    risk = mirror_gate(RiskLimits(max_position=1), broker, redis)
    held = await risk.admit(place(quantity=1), CallStats())
    await risk.release(held, order_id=9)  # answered "accepted"; the hub has not pushed it yet
    with pytest.raises(RiskRejected):
        await risk.admit(place(quantity=1), CallStats())
    # The hub's push arrives: a working order now, counted as such, not twice.
    await MirrorStore(redis, KEYS).apply(
        normalize.order_update(gateway_order(9), symbols, request_id=None)
    )
    assert await redis.hlen(KEYS.mirror_unseen(ACCOUNT)) == 0
    with pytest.raises(RiskRejected) as refused:
        await risk.admit(place(quantity=1), CallStats())
    assert "working buy 1" in str(refused.value)
    assert "in flight 1" in str(refused.value)


async def test_an_order_the_hub_pushed_before_its_answer_is_not_counted_twice() -> None:
    redis = make_redis()
    await mirrored(redis, normalize.order_update(gateway_order(9), symbols, request_id=None))
    risk = mirror_gate(RiskLimits(max_position=2), Broker([], []), redis)
    held = await risk.admit(place(quantity=1), CallStats())
    await risk.release(held, order_id=9)
    assert await redis.hlen(KEYS.mirror_unseen(ACCOUNT)) == 0
    await risk.release(await risk.admit(place(quantity=1), CallStats()))  # 1 working + 1 = 2


def test_an_unseen_order_past_its_grace_is_dropped_not_counted_forever() -> None:
    unseen = {b"9": f"{MNQ}|1|0".encode(), b"10": f"{MNQ}|-2|{UNSEEN_GRACE_MS}".encode()}
    exposure, stale = exposure_of(MNQ, None, [], unseen, UNSEEN_GRACE_MS + 1)
    assert (exposure.unseen, stale) == (-2, [b"9"])
