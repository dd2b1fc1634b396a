"""The mirror in Redis: a change applied once and only once, never rolled back, and the
views the readers and the risk check use kept in step with the events."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from ow_core.keys import Keys
from producer.events import EVENT_DECODER, OrderUpdate
from producer.lifecycle import Lifecycle
from tests.unit.mirror.fakes import ACCOUNT, MNQ, gateway_order, gateway_position, symbols
from tests.unit.worker.ledger_fakes import make_redis
from worker.mirror import normalize
from worker.mirror.store import MirrorStore

KEYS = Keys("t")


def order(order_id: int, **fields: Any) -> OrderUpdate:
    return normalize.order_update(gateway_order(order_id, **fields), symbols, request_id=None)


async def events(redis: Any) -> list[Any]:
    return [EVENT_DECODER.decode(f[b"e"]) for _, f in await redis.xrange(KEYS.events(ACCOUNT))]


async def test_a_change_is_applied_once_however_often_it_is_written() -> None:
    redis = make_redis()
    store = MirrorStore(redis, KEYS)
    first = await store.apply(order(5))
    assert first is not None
    # The hub pushing it again, reconciliation finding it, a successor leader writing it.
    assert await store.apply(order(5)) is None
    assert await store.apply(msgspec.structs.replace(order(5), reconciled=True)) is None
    assert [e.order_id for e in await events(redis)] == [5]
    assert await Lifecycle(redis, KEYS).order(ACCOUNT, 5) == order(5)


async def test_an_older_state_does_not_roll_the_mirror_back() -> None:
    redis = make_redis()
    store = MirrorStore(redis, KEYS)
    filled = order(5, status=2, fill_volume=1, update_timestamp="2026-12-01T15:00:02+00:00")
    assert await store.apply(filled) is not None
    late_open = order(5, status=1, update_timestamp="2026-12-01T15:00:01+00:00")
    assert await store.apply(late_open) is None
    held = await Lifecycle(redis, KEYS).order(ACCOUNT, 5)
    assert held is not None
    assert held.state == "filled"
    assert len(await events(redis)) == 1


async def test_working_orders_are_listed_until_they_end() -> None:
    redis = make_redis()
    store = MirrorStore(redis, KEYS)
    lifecycle = Lifecycle(redis, KEYS)
    await store.apply(order(5))
    await store.apply(order(6, status=8))  # a bracket leg waiting for its entry
    assert [o.order_id for o in await lifecycle.open_orders(ACCOUNT)] == [5, 6]
    await store.apply(order(5, status=3, update_timestamp="2026-12-01T15:00:03Z"))
    assert [o.order_id for o in await lifecycle.open_orders(ACCOUNT)] == [6]
    held = await lifecycle.order(ACCOUNT, 5)
    assert held is not None
    assert held.state == "cancelled"


async def test_a_position_going_flat_leaves_the_positions_and_says_so() -> None:
    redis = make_redis()
    store = MirrorStore(redis, KEYS)
    lifecycle = Lifecycle(redis, KEYS)
    await store.apply(normalize.position_update(gateway_position(2), symbols, at=1))
    [held] = await lifecycle.positions(ACCOUNT)
    assert (held.contract_id, held.size, held.symbol) == (MNQ, 2, "MNQ")
    await store.apply(normalize.position_update(gateway_position(0), symbols, at=2))
    assert await lifecycle.positions(ACCOUNT) == []
    assert [e.size for e in await events(redis)] == [2, 0]


async def test_the_mirror_seeing_an_order_ends_its_unseen_count() -> None:
    redis = make_redis()
    await redis.hset(KEYS.mirror_unseen(ACCOUNT), "5", f"{MNQ}|1|1")
    await MirrorStore(redis, KEYS).apply(order(5))
    assert await redis.hlen(KEYS.mirror_unseen(ACCOUNT)) == 0


async def test_pruning_drops_finished_orders_of_past_days_and_keeps_working_ones() -> None:
    redis = make_redis()
    store = MirrorStore(redis, KEYS)
    old = "2026-11-28T15:00:00+00:00"
    await store.apply(order(1, status=2, update_timestamp=old))
    await store.apply(order(2, status=1, update_timestamp=old))  # a GTC order still working
    await store.apply(order(3, status=2))
    before = normalize.epoch_ms("2026-11-30T00:00:00+00:00")
    assert await store.prune(ACCOUNT, before) == 1
    assert sorted(await redis.hkeys(KEYS.mirror_orders(ACCOUNT))) == [b"2", b"3"]
    # Seen again (a reconciliation), the pruned order comes back rather than vanish twice.
    assert not await redis.hexists(KEYS.mirror_meta(ACCOUNT), "o:1")


async def test_a_mirror_key_of_the_wrong_type_is_an_error_not_a_silent_loss() -> None:
    redis = make_redis()
    await redis.set(KEYS.events(ACCOUNT), "x")
    with pytest.raises(Exception, match="WRONGTYPE"):
        await MirrorStore(redis, KEYS).apply(order(5))


async def test_live_is_what_the_leader_marks_and_forgets() -> None:
    redis = make_redis()
    store = MirrorStore(redis, KEYS)
    lifecycle = Lifecycle(redis, KEYS)
    assert not await lifecycle.live(ACCOUNT)
    await store.mark_synced(ACCOUNT, 1, 5000)
    assert await lifecycle.live(ACCOUNT)
    await store.forget_synced(ACCOUNT)
    assert not await lifecycle.live(ACCOUNT)
