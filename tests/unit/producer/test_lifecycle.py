"""Reading the lifecycle: waiting for an order's state, resuming the events after a restart,
the mirror's views. fakeredis stands in for Redis (the blocking reads run against a real
server in tests/integration/lifecycle)."""

from __future__ import annotations

import asyncio

import pytest

from ow_core.keys import Keys
from producer.events import OrderUpdate
from producer.lifecycle import Lifecycle, OrderEnded, WaitTimeout
from tests.unit.mirror.fakes import ACCOUNT, gateway_order, symbols
from tests.unit.worker.ledger_fakes import make_redis
from worker.mirror import normalize
from worker.mirror.store import MirrorStore

KEYS = Keys("t")
LATER = "2026-12-01T15:00:05+00:00"


def setup() -> tuple[MirrorStore, Lifecycle]:
    redis = make_redis()
    return MirrorStore(redis, KEYS), Lifecycle(redis, KEYS)


async def test_a_fill_before_the_wait_is_returned_at_once() -> None:
    store, lifecycle = setup()
    await store.apply(
        normalize.order_update(gateway_order(5, status=2, fill_volume=1), symbols, request_id=None)
    )
    filled = await lifecycle.wait_order(ACCOUNT, 5, ("filled",), timeout=0.01)
    assert (filled.state, filled.filled_quantity) == ("filled", 1)


async def test_a_fill_during_the_wait_ends_it() -> None:
    store, lifecycle = setup()
    await store.apply(normalize.order_update(gateway_order(5), symbols, request_id=None))
    waiting = asyncio.create_task(lifecycle.wait_order(ACCOUNT, 5, ("filled",), timeout=5))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    fill = gateway_order(5, status=2, fill_volume=1, filled_price=21000.0, update_timestamp=LATER)
    await store.apply(normalize.order_update(fill, symbols, request_id=None))
    filled = await asyncio.wait_for(waiting, 2)
    assert filled.fill_price == 21000.0


async def test_an_order_ending_otherwise_raises_with_how_it_ended() -> None:
    store, lifecycle = setup()
    cancelled = gateway_order(5, status=3, update_timestamp=LATER)
    await store.apply(normalize.order_update(cancelled, symbols, request_id=None))
    with pytest.raises(OrderEnded) as ended:
        await lifecycle.wait_order(ACCOUNT, 5, ("filled",), timeout=1)
    assert ended.value.update.state == "cancelled"
    assert ended.value.code == "order_ended"


async def test_no_change_in_time_is_a_timeout_naming_the_last_state() -> None:
    store, lifecycle = setup()
    await store.apply(normalize.order_update(gateway_order(5), symbols, request_id=None))
    with pytest.raises(WaitTimeout, match="last seen: open"):
        await lifecycle.wait_order(ACCOUNT, 5, ("filled",), timeout=0.2)


async def test_events_resume_right_after_the_last_one_read() -> None:
    store, lifecycle = setup()
    for n in range(3):
        await store.apply(normalize.order_update(gateway_order(n + 1), symbols, request_id=None))
    first = (await lifecycle.recent(ACCOUNT, 3))[0]
    assert first.event_id is not None
    reader = lifecycle.events(ACCOUNT, first.event_id)
    rest = [await anext(reader), await anext(reader)]
    await reader.aclose()
    assert [e.order_id for e in rest if isinstance(e, OrderUpdate)] == [2, 3]


async def test_entries_that_are_not_events_are_skipped() -> None:
    redis = make_redis()
    store, lifecycle = MirrorStore(redis, KEYS), Lifecycle(redis, KEYS)
    await redis.xadd(KEYS.events(ACCOUNT), {"e": b"{not json"})
    await store.apply(normalize.order_update(gateway_order(7), symbols, request_id=None))
    reader = lifecycle.events(ACCOUNT, "0-0")
    event = await anext(reader)
    await reader.aclose()
    assert isinstance(event, OrderUpdate)
    assert event.order_id == 7
