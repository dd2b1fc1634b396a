"""Hostile entries straight onto the stream, the worker's side of issue 10's classes:

- every field that drives later work is bounded and checked again at the worker, and a
  value it cannot honour is refused before anything reaches the broker;
- a Lua step checks every key it touches before its first write, so it does all or
  nothing: a key of the wrong type refuses the intent (claim) or is skipped (finish);
- an entry that fails on every delivery reaches the dead letters, whatever raises.

The broker is a scripted fake and Redis is fakeredis (the same scripts run on a real
Redis in tests/faults/test_hostile.py).
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from producer.contract import DATA_FIELD, VERSION_FIELD
from tests.unit.worker.ledger_fakes import dead_letters, replies
from tests.unit.worker.world import ACCOUNT, KEYS, REPLY, World
from worker.entries import Entry


def raw(world: World, **fields: Any) -> dict[bytes, bytes]:
    """A place entry as a hostile producer would write it, bypassing all validation."""
    intent = {
        "kind": "place",
        "request_id": "req-1",
        "reply_to": REPLY,
        "account_id": ACCOUNT,
        "created_at": world.clock.ms() - 250,
        "deadline": world.clock.ms() + 10_000,
        "symbol": "MNQ",
        "side": "BUY",
        "quantity": 1,
        **fields,
    }
    return {VERSION_FIELD: b"1", DATA_FIELD: msgspec.json.encode(intent)}


# --- bounds, checked again at the worker -------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"cancel_after": 1e15, "order_type": "limit", "limit_price": 2.0}, "invalid_cancel_after"),
        ({"cancel_after": 1e300}, "invalid_cancel_after"),
        ({"cancel_after": 7 * 86400 + 1}, "invalid_cancel_after"),
        ({"request_id": "GTTX1:gtt"}, "invalid_request_id"),
        ({"request_id": "a/b"}, "invalid_request_id"),
        ({"request_id": "x y"}, "invalid_request_id"),
        ({"deadline": 10**15}, "invalid_timeout"),
        ({"account_id": 0}, "invalid_account"),
        ({"quantity": 2**31}, "invalid_quantity"),
    ],
    ids=[
        "cancel_after 1e15",
        "cancel_after 1e300",
        "cancel_after over a week",
        "reserved separator",
        "slash in request id",
        "space in request id",
        "lifetime of decades",
        "account 0",
        "quantity past int32",
    ],
)
async def test_a_field_out_of_bounds_is_refused_before_the_broker(
    world: World, fields: dict[str, Any], code: str
) -> None:
    answer = await world.run(raw(world, **fields))
    assert (answer.status, answer.error_code) == ("rejected", code)
    assert answer.order_exists is not True
    assert world.broker.calls == []
    assert await world.acknowledged()


@pytest.mark.parametrize("tag", ["t" * 34, "t" * 64])
async def test_a_tag_the_broker_would_cut_is_refused_not_cut(world: World, tag: str) -> None:
    answer = await world.run(raw(world, custom_tag=tag, request_id="abcdefghijklmnop"))
    assert (answer.status, answer.error_code) == ("rejected", "invalid_custom_tag")
    assert answer.message is not None
    assert "33 fit" in answer.message
    assert world.broker.calls == []


async def test_the_longest_tag_that_fits_is_sent_whole(world: World) -> None:
    world.broker.place = [4242]
    tag = "t" * 33
    answer = await world.run(raw(world, custom_tag=tag, request_id="abcdefghijklmnop"))
    assert answer.status == "accepted"
    [sent] = world.broker.kwargs("place")
    assert sent["custom_tag"] == f"{tag}.abcdefghijklmnop"


# --- keys of the wrong type: the claim refuses, nothing is sent ----------------------------


@pytest.mark.parametrize(
    ("key", "make"),
    [
        (KEYS.result("req-1"), lambda r, k: r.hset(k, "a", "b")),
        (KEYS.result("req-1"), lambda r, k: r.set(k, b"keepme")),
        (KEYS.lease("req-1"), lambda r, k: r.rpush(k, "x")),
        (KEYS.claims("req-1"), lambda r, k: r.set(k, "x")),
        (REPLY, lambda r, k: r.set(k, "x")),
        (REPLY, lambda r, k: r.hset(k, "a", "b")),
        (REPLY, lambda r, k: r.sadd(k, "x")),
    ],
    ids=[
        "result a hash",
        "result unreadable",
        "lease a list",
        "history a string",
        "reply a string",
        "reply a hash",
        "reply a set",
    ],
)
async def test_a_key_of_the_wrong_type_refuses_the_intent_and_dead_letters_it(
    world: World, key: str, make: Any
) -> None:
    await make(world.redis, key)
    [entry] = await world.submit(raw(world))
    await world.executor.handle(entry)
    assert world.broker.calls == []
    [(_, record)] = await dead_letters(world.redis, KEYS)
    assert key in record.reason
    assert await world.acknowledged()
    if key != REPLY:
        [answer] = await replies(world.redis, REPLY)
        assert (answer.status, answer.error_code) == ("rejected", "key_conflict")
        assert answer.order_exists is False
    # What was there stays as it was: nothing of ours was written over it.
    assert await world.redis.type(key) != b"none"


async def test_a_malformed_entry_whose_reply_to_is_not_a_stream_is_still_dead_lettered(
    world: World,
) -> None:
    await world.redis.set(REPLY, "x")
    bad = raw(world, quantity="many")
    [entry] = await world.submit(bad)
    await world.executor.handle(entry)
    [(_, record)] = await dead_letters(world.redis, KEYS)
    assert record.entry_id == entry.entry_id
    assert await world.redis.get(REPLY) == b"x"
    assert await world.acknowledged()


async def test_a_follow_up_whose_order_queue_is_not_a_list_is_refused(world: World) -> None:
    queue = KEYS.order_queue(ACCOUNT, 42)
    cancel = world.cancel()
    [entry] = await world.submit(cancel)
    await world.redis.delete(queue)
    await world.redis.set(queue, "x")
    await world.executor.handle(entry)
    assert world.broker.calls == []
    [answer] = await replies(world.redis, REPLY)
    assert answer.error_code == "key_conflict"


# --- whatever raises, an entry given up reaches the dead letters ---------------------------


async def test_giving_up_on_an_entry_whose_result_is_unreadable_dead_letters_it(
    world: World,
) -> None:
    await world.redis.set(KEYS.result("req-1"), b"keepme")
    [entry] = await world.submit(raw(world))
    await world.executor.give_up(Entry(entry.entry_id, entry.fields, 6), "delivered 6 times")
    [(_, record)] = await dead_letters(world.redis, KEYS)
    assert "delivered 6 times" in record.reason
    assert await world.redis.get(KEYS.result("req-1")) == b"keepme"
    assert await world.acknowledged()


async def test_giving_up_when_the_look_up_raises_a_bug_still_dead_letters(world: World) -> None:
    intent = world.place()
    [entry] = await world.submit(intent)
    await world.ledger.claim(intent.request_id, entry.entry_id)  # started before
    await world.redis.delete(KEYS.lease(intent.request_id))
    world.broker.find = [RuntimeError("a bug in the look-up")]
    await world.executor.give_up(Entry(entry.entry_id, entry.fields, 6), "delivered 6 times")
    [(_, record)] = await dead_letters(world.redis, KEYS)
    assert "a bug in the look-up" in record.reason
    [answer] = await replies(world.redis, REPLY)
    assert (answer.status, answer.error_code) == ("failed", "dead_lettered")
