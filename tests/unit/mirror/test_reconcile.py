"""Push, then prove: what REST shows that the mirror lacks becomes events marked
``reconciled``, once; a position REST no longer lists goes flat."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import pytest

from ow_core.keys import Keys
from producer.events import PositionUpdate, TradeUpdate
from producer.lifecycle import Lifecycle
from tests.unit.mirror.fakes import (
    ACCOUNT,
    RestBroker,
    gateway_order,
    gateway_position,
    gateway_trade,
    symbols,
)
from tests.unit.worker.ledger_fakes import make_redis
from worker.broker.client import GatewayClient
from worker.broker.models import Order
from worker.mirror import normalize
from worker.mirror.reconcile import RealizedToday, Reconciler, realized_today, trading_day_start
from worker.mirror.store import MirrorStore

KEYS = Keys("t")


async def nothing(_: str) -> None:
    return None


async def no_request(_: Order) -> str | None:
    return None


def reconciler(broker: RestBroker, redis: Any) -> Reconciler:
    return Reconciler(
        cast(GatewayClient, broker), MirrorStore(redis, KEYS), redis, KEYS,
        symbols=symbols, known=nothing, request_id_of=no_request, realized=RealizedToday(),
    )  # fmt: skip


async def test_a_fill_the_hub_missed_arrives_once_marked_reconciled() -> None:
    redis = make_redis()
    broker = RestBroker()
    store = MirrorStore(redis, KEYS)
    await store.apply(normalize.order_update(gateway_order(5), symbols, request_id=None))
    # While nobody listened: the order filled, a trade was made, a position opened.
    later = "2026-12-01T15:00:02+00:00"
    broker.orders = [gateway_order(5, status=2, fill_volume=1, update_timestamp=later)]
    broker.trades = [gateway_trade(9, 5)]
    broker.positions = [gateway_position(1)]
    found = await reconciler(broker, redis).accounts([ACCOUNT])
    assert found == 4  # the order, the trade, the position, the account
    seen = await Lifecycle(redis, KEYS).recent(ACCOUNT, 10)
    assert [type(e).__name__ for e in seen] == [
        "OrderUpdate", "OrderUpdate", "TradeUpdate", "PositionUpdate", "AccountUpdate"
    ]  # fmt: skip
    assert [e.reconciled for e in seen] == [False, True, True, True, True]
    # Proving it again finds nothing new.
    assert await reconciler(broker, redis).accounts([ACCOUNT]) == 0
    assert broker.calls.count("accounts") == 2


async def test_a_position_rest_no_lists_goes_flat() -> None:
    redis = make_redis()
    broker = RestBroker()
    await MirrorStore(redis, KEYS).apply(
        normalize.position_update(gateway_position(2), symbols, at=1)
    )
    await reconciler(broker, redis).accounts([ACCOUNT])
    assert await Lifecycle(redis, KEYS).positions(ACCOUNT) == []
    flat = [e for e in await Lifecycle(redis, KEYS).recent(ACCOUNT, 10) if e.reconciled]
    assert isinstance(flat[0], PositionUpdate)
    assert flat[0].size == 0


async def test_the_account_counts_todays_realized_pnl_less_fees() -> None:
    redis = make_redis()
    broker = RestBroker()
    broker.trades = [
        gateway_trade(1, 5, profit_and_loss=None),
        gateway_trade(2, 6, profit_and_loss=-50.0),
        gateway_trade(3, 7, profit_and_loss=-10.0, voided=True),
    ]
    await reconciler(broker, redis).accounts([ACCOUNT])
    account = await Lifecycle(redis, KEYS).account(ACCOUNT)
    assert account is not None
    assert account.realized_pnl == pytest.approx(-50.0 - 0.37 * 2)


def test_realized_today_leaves_out_yesterday_and_voids() -> None:
    def trade(at: int, pnl: float, voided: bool = False) -> TradeUpdate:
        return TradeUpdate(
            account_id=ACCOUNT, at=at, trade_id=at, order_id=1, contract_id="c", price=1.0,
            quantity=1, side="BUY", pnl=pnl, fees=1.0, voided=voided,
        )  # fmt: skip

    assert realized_today([trade(5, 10.0), trade(1, 100.0), trade(6, 7.0, True)], 5) == 9.0


def test_the_running_figure_moves_with_new_trades_and_starts_again_each_day() -> None:
    def trade(at: int, pnl: float | None, voided: bool = False) -> TradeUpdate:
        return TradeUpdate(
            account_id=ACCOUNT, at=at, trade_id=at, order_id=1, contract_id="c", price=1.0,
            quantity=1, side="BUY", pnl=pnl, fees=0.5, voided=voided,
        )  # fmt: skip

    realized = RealizedToday()
    realized.add(trade(10, -5.0), 0)  # not set from the mirror yet: left to the reset
    assert realized.value(ACCOUNT, 0) is None
    assert realized.reset(ACCOUNT, [trade(10, -5.0)], 0) == -5.5
    realized.add(trade(11, 20.0), 0)
    realized.add(trade(12, None), 0)
    assert realized.value(ACCOUNT, 0) == 13.5  # -5.5 + 19.5 - 0.5
    realized.add(trade(11, 20.0, voided=True), 0)
    assert realized.value(ACCOUNT, 0) == -6.0
    assert realized.value(ACCOUNT, 100) == 0.0  # the next trading day
    realized.add(trade(101, 3.0), 100)
    assert realized.value(ACCOUNT, 100) == 2.5


@pytest.mark.parametrize(
    ("now", "start"),
    [
        # Winter (CST, UTC-6): the day starts 23:00 UTC.
        ("2026-12-01T22:59:00+00:00", "2026-11-30T23:00:00+00:00"),
        ("2026-12-01T23:00:00+00:00", "2026-12-01T23:00:00+00:00"),
        # Summer (CDT, UTC-5): 22:00 UTC.
        ("2026-07-01T21:00:00+00:00", "2026-06-30T22:00:00+00:00"),
        ("2026-07-01T22:30:00+00:00", "2026-07-01T22:00:00+00:00"),
    ],
)
def test_the_trading_day_starts_at_five_pm_chicago(now: str, start: str) -> None:
    assert trading_day_start(datetime.fromisoformat(now)) == datetime.fromisoformat(start)
    assert trading_day_start(datetime.fromisoformat(now)).tzinfo == UTC
