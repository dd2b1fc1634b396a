"""The daily loss guard: realized less fees plus open P&L at the last price; at the limit the
account is halted until the next trading day, and an operator's own halt is kept."""

from __future__ import annotations

from datetime import datetime

import msgspec

from ow_core.keys import Keys
from producer.contract import DATA_FIELD, INTENT_DECODER, Flatten
from producer.events import AccountUpdate, PositionUpdate
from tests.unit.mirror.fakes import ACCOUNT, MNQ
from tests.unit.worker.ledger_fakes import make_redis
from worker.fleet.halt import HaltRecord
from worker.mirror.guard import LossGuard, Tick, open_pnl

KEYS = Keys("t")
NOW = datetime.fromisoformat("2026-12-01T15:00:00+00:00").timestamp()
NEXT_DAY_MS = int(datetime.fromisoformat("2026-12-01T23:00:00+00:00").timestamp() * 1000)


def guard(redis: object, limit: float | None = 500.0) -> LossGuard:
    return LossGuard(
        redis,  # type: ignore[arg-type]
        KEYS,
        limit_of=lambda account: limit if account == ACCOUNT else None,
        tick_of=lambda contract: Tick(0.25, 0.5) if contract == MNQ else None,
        holder="w1",
        clock=lambda: NOW,
    )


def account(realized: float) -> AccountUpdate:
    return AccountUpdate(account_id=ACCOUNT, at=1, balance=50_000.0, can_trade=True,
                         realized_pnl=realized)  # fmt: skip


def position(size: int, average: float = 21000.0) -> PositionUpdate:
    return PositionUpdate(account_id=ACCOUNT, at=1, contract_id=MNQ, size=size,
                          average_price=average)  # fmt: skip


def test_open_pnl_is_ticks_moved_times_tick_value_times_size() -> None:
    assert open_pnl(2, 21000.0, 20990.0, Tick(0.25, 0.5)) == -40.0
    assert open_pnl(-2, 21000.0, 20990.0, Tick(0.25, 0.5)) == 40.0


async def test_a_realized_loss_at_the_limit_halts_until_the_next_trading_day() -> None:
    redis = make_redis()
    watcher = guard(redis)
    await watcher.on_event(account(-499.0))
    assert await redis.get(KEYS.halt(ACCOUNT)) is None
    await watcher.on_event(account(-500.0))
    record = msgspec.json.decode(await redis.get(KEYS.halt(ACCOUNT)), type=HaltRecord)
    assert "daily loss limit of $500.00" in record.reason
    assert abs(await redis.pexpiretime(KEYS.halt(ACCOUNT)) - NEXT_DAY_MS) < 1000


async def test_an_open_loss_at_the_last_price_counts_too() -> None:
    redis = make_redis()
    watcher = guard(redis)
    await watcher.on_event(account(-300.0))
    await watcher.on_event(position(2))
    assert watcher.contracts() == {MNQ}
    await watcher.on_quote(MNQ, 20900.0)  # 2 x 400 ticks x $0.50 = -$400 open: -$700
    assert watcher.loss(ACCOUNT) == 700.0
    assert await redis.get(KEYS.halt(ACCOUNT)) is not None


async def test_a_flat_position_no_longer_counts_or_needs_quotes() -> None:
    redis = make_redis()
    watcher = guard(redis)
    await watcher.on_event(position(2))
    await watcher.on_event(position(0))
    await watcher.on_quote(MNQ, 1.0)
    assert watcher.contracts() == set()
    assert await redis.get(KEYS.halt(ACCOUNT)) is None


async def test_an_operators_halt_is_kept_as_it_is() -> None:
    redis = make_redis()
    await redis.set(KEYS.halt(ACCOUNT), b'{"reason":"by hand","at":1,"by":"ops"}')
    await guard(redis).on_event(account(-10_000.0))
    assert b"by hand" in await redis.get(KEYS.halt(ACCOUNT))
    assert await redis.pttl(KEYS.halt(ACCOUNT)) == -1


async def test_an_account_without_a_limit_is_not_watched() -> None:
    redis = make_redis()
    watcher = guard(redis, limit=None)
    await watcher.on_event(account(-1e9))
    assert await redis.get(KEYS.halt(ACCOUNT)) is None


async def test_with_flatten_on_the_limit_a_flatten_intent_goes_on_the_stream() -> None:
    redis = make_redis()
    watcher = LossGuard(
        redis, KEYS, limit_of=lambda account: 100.0, tick_of=lambda contract: None,
        holder="w1", flatten=True, clock=lambda: NOW,
    )  # fmt: skip
    await watcher.on_event(account(-150.0))
    [(_, fields)] = await redis.xrange(KEYS.intents)
    intent = INTENT_DECODER.decode(fields[DATA_FIELD])
    assert isinstance(intent, Flatten)
    assert (intent.account_id, intent.symbol) == (ACCOUNT, None)
    await watcher.on_event(account(-200.0))  # once a day, not at every loss
    assert await redis.xlen(KEYS.intents) == 1
