"""The ledger's Lua scripts on fakeredis: claim, finish, keepalive, release, history."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from ow_core.keys import Keys
from producer.contract import CancelOrder, OrderResult, decode_result, encode_intent
from tests.unit.worker.ledger_fakes import (
    WORKER,
    dead_letters,
    make_ledger,
    make_redis,
    pending_ids,
    replies,
    stream_entries,
)
from worker.ledger import DeadLetter, Ledger, Running
from worker.ledger.protocol import Done, Go

KEYS = Keys()
REPLY = KEYS.reply("client-1")


@pytest.fixture
async def redis() -> AsyncIterator[Any]:
    client = make_redis()
    yield client
    await client.aclose()


@pytest.fixture
def ledger(redis: Any) -> Ledger:
    return make_ledger(redis, KEYS)


def result(request_id: str = "req-1", **overrides: Any) -> OrderResult:
    fields: dict[str, Any] = {"status": "accepted", "kind": "place", "order_id": 1001}
    return OrderResult(request_id=request_id, **{**fields, **overrides})


async def one_entry(redis: Any) -> str:
    [(entry_id, _)] = await stream_entries(redis, KEYS, [{b"v": b"1", b"d": b"{}"}])
    return entry_id


# --- claim ----------------------------------------------------------------------------


async def test_first_claim_goes_and_takes_the_lease(redis: Any, ledger: Ledger) -> None:
    claim = await ledger.claim("req-1", "1-0")
    assert claim.state == "go"
    assert isinstance(claim, Go)
    assert claim.claims == 1
    assert not isinstance(claim, Done)
    assert await redis.get(KEYS.lease("req-1")) == ledger.owner("1-0").encode()
    assert 0 < await redis.pttl(KEYS.lease("req-1")) <= 5000
    [line] = await ledger.history("req-1")
    assert line.startswith(f"claim {WORKER}@")
    assert await redis.ttl(KEYS.claims("req-1")) > 0


async def test_a_second_owner_is_busy_while_the_lease_is_held(redis: Any, ledger: Ledger) -> None:
    other = make_ledger(redis, KEYS, consumer="w2")
    assert (await ledger.claim("req-1", "1-0")).state == "go"
    busy = await other.claim("req-1", "1-0")
    assert busy.state == "busy"
    # Same worker, another delivery of the request (a repeated request ID): also busy.
    assert (await ledger.claim("req-1", "2-0")).state == "busy"
    # A busy claim neither steals the lease nor adds to the history.
    assert await redis.get(KEYS.lease("req-1")) == ledger.owner("1-0").encode()
    assert len(await ledger.history("req-1")) == 1


async def test_a_claim_after_the_result_is_stored_is_done(redis: Any, ledger: Ledger) -> None:
    entry_id = await one_entry(redis)
    assert (await ledger.claim("req-1", entry_id)).state == "go"
    stored = result(order_id=77)
    assert await ledger.finish(stored, entry_id=entry_id, reply_to=REPLY)
    other = make_ledger(redis, KEYS, consumer="w2")
    done = await other.claim("req-1", "9-0")
    assert done.state == "done"
    assert isinstance(done, Done)
    assert done.stored == stored
    assert await ledger.stored_result("req-1") == stored
    # Answering from the stored result is not a claim.
    assert len(await ledger.history("req-1")) == 1


async def test_a_reclaim_after_release_shows_the_request_was_started(
    redis: Any, ledger: Ledger
) -> None:
    first = await ledger.claim("req-1", "1-0")
    assert isinstance(first, Go)
    assert first.claims == 1
    await ledger.release("req-1", "1-0")
    assert not await redis.exists(KEYS.lease("req-1"))
    other = make_ledger(redis, KEYS, consumer="w2")
    again = await other.claim("req-1", "1-0")
    assert again.state == "go"
    assert isinstance(again, Go)
    assert again.claims == 2
    history = await ledger.history("req-1")
    assert [line.split("@")[0] for line in history] == ["claim w1", "claim w2"]


async def test_a_claim_after_the_lease_expired_goes(redis: Any, ledger: Ledger) -> None:
    """A dead worker's lease runs out; the next worker may go (and sees the history)."""
    await ledger.claim("req-1", "1-0")
    await redis.delete(KEYS.lease("req-1"))  # what PX expiry does
    again = await make_ledger(redis, KEYS, consumer="w2").claim("req-1", "1-0")
    assert isinstance(again, Go)
    assert (again.state, again.claims) == ("go", 2)


async def test_release_only_gives_back_our_own_lease(redis: Any, ledger: Ledger) -> None:
    await ledger.claim("req-1", "1-0")
    await make_ledger(redis, KEYS, consumer="w2").release("req-1", "1-0")
    await ledger.release("req-1", "2-0")
    assert await redis.get(KEYS.lease("req-1")) == ledger.owner("1-0").encode()


async def test_note_error_goes_into_the_history(ledger: Ledger) -> None:
    await ledger.claim("req-1", "1-0")
    await ledger.note_error("req-1", "BrokerUnavailable: " + "x" * 1000)
    claim_line, error_line = await ledger.history("req-1")
    assert claim_line.startswith("claim w1@")
    assert error_line.startswith("error w1@")
    assert ": BrokerUnavailable: xxx" in error_line
    assert len(error_line) < 560  # the text is cut at 500 characters


def test_owner_names_the_worker_and_the_entry(ledger: Ledger) -> None:
    assert ledger.owner("1-0") == "w1/1-0"
    assert ledger.owner(None) == "w1/job"


# --- finish ---------------------------------------------------------------------------


async def test_finish_stores_replies_acknowledges_and_releases(redis: Any, ledger: Ledger) -> None:
    entry_id = await one_entry(redis)
    await ledger.claim("req-1", entry_id)
    first = result(order_id=11)
    assert await ledger.finish(first, entry_id=entry_id, reply_to=REPLY) is True
    assert decode_result(await redis.get(KEYS.result("req-1"))) == first
    assert 0 < await redis.ttl(KEYS.result("req-1")) <= 3600
    assert await replies(redis, REPLY) == [first]
    assert 0 < await redis.ttl(REPLY) <= 3600
    assert await pending_ids(redis, KEYS) == []
    assert not await redis.exists(KEYS.lease("req-1"))
    assert await dead_letters(redis, KEYS) == []


async def test_finish_keeps_the_first_result_and_replies_with_it(
    redis: Any, ledger: Ledger
) -> None:
    entry_1, entry_2 = (
        eid for eid, _ in await stream_entries(redis, KEYS, [{b"n": b"1"}, {b"n": b"2"}])
    )
    first = result(order_id=11)
    second = result(status="failed", order_id=None, error_code="broker_unavailable")
    assert await ledger.finish(first, entry_id=entry_1, reply_to=REPLY)
    assert await ledger.finish(second, entry_id=entry_2, reply_to=KEYS.reply("client-2"))
    assert await ledger.stored_result("req-1") == first
    assert await replies(redis, REPLY) == [first]
    assert await replies(redis, KEYS.reply("client-2")) == [first]
    assert await pending_ids(redis, KEYS) == []


async def test_finish_of_an_acknowledged_entry_does_nothing(redis: Any, ledger: Ledger) -> None:
    entry_id = await one_entry(redis)
    assert await ledger.finish(result(order_id=11), entry_id=entry_id, reply_to=REPLY)
    await redis.delete(KEYS.result("req-1"))  # even with the stored result gone
    late = result(order_id=99)
    assert await ledger.finish(late, entry_id=entry_id, reply_to=REPLY) is False
    assert len(await replies(redis, REPLY)) == 1
    assert await ledger.stored_result("req-1") is None


async def test_finish_of_an_acknowledged_entry_still_drops_our_lease(
    redis: Any, ledger: Ledger
) -> None:
    entry_id = await one_entry(redis)
    await redis.xack(KEYS.intents, KEYS.group, entry_id)
    await ledger.claim("req-1", entry_id)
    assert await ledger.finish(result(), entry_id=entry_id, reply_to=REPLY) is False
    assert not await redis.exists(KEYS.lease("req-1"))


async def test_finish_leaves_another_workers_lease_alone(redis: Any, ledger: Ledger) -> None:
    entry_id = await one_entry(redis)
    other = make_ledger(redis, KEYS, consumer="w2")
    await other.claim("req-1", entry_id)
    assert await ledger.finish(result(), entry_id=entry_id, reply_to=REPLY)
    assert await redis.get(KEYS.lease("req-1")) == other.owner(entry_id).encode()


async def test_finish_without_store_replies_but_keeps_nothing(redis: Any, ledger: Ledger) -> None:
    entry_id = await one_entry(redis)
    answer = result(status="rejected", error_code="malformed_intent", order_id=None)
    assert await ledger.finish(answer, entry_id=entry_id, reply_to=REPLY, store=False)
    assert not await redis.exists(KEYS.result("req-1"))
    assert await replies(redis, REPLY) == [answer]
    assert await pending_ids(redis, KEYS) == []


async def test_finish_without_reply_to_writes_no_reply(redis: Any, ledger: Ledger) -> None:
    entry_id = await one_entry(redis)
    assert await ledger.finish(result(), entry_id=entry_id, reply_to=None)
    assert await redis.xlen(KEYS.intents) == 1  # nothing was added to the intents stream
    assert [key async for key in redis.scan_iter(f"{KEYS.prefix}:reply:*")] == []
    assert await ledger.stored_result("req-1") == result()


async def test_finish_writes_the_dead_letter_record(redis: Any, ledger: Ledger) -> None:
    fields = encode_intent_fields()
    [(entry_id, _)] = await stream_entries(redis, KEYS, [fields])
    record = DeadLetter(
        entry_id=entry_id,
        reason="delivered 6 times",
        request_id="req-1",
        deliveries=6,
        history=["claim w1@1", "error w1@2: boom"],
        fields={"v": "1", "d": "{}"},
        at=123,
    )
    failed = result(status="failed", error_code="dead_lettered", order_id=None)
    assert await ledger.finish(failed, entry_id=entry_id, reply_to=REPLY, dead_letter=record)
    assert await dead_letters(redis, KEYS) == [(entry_id, record)]
    assert await replies(redis, REPLY) == [failed]
    assert await pending_ids(redis, KEYS) == []


async def test_finish_of_a_scheduled_job_has_nothing_to_acknowledge(
    redis: Any, ledger: Ledger
) -> None:
    await ledger.claim("req-1", None)
    assert await ledger.finish(result(), entry_id=None, reply_to=REPLY)
    assert await ledger.stored_result("req-1") == result()
    assert await replies(redis, REPLY) == [result()]
    assert not await redis.exists(KEYS.lease("req-1"))


def encode_intent_fields() -> dict[bytes, bytes]:
    return encode_intent(
        CancelOrder(
            request_id="req-1",
            reply_to=REPLY,
            account_id=7,
            created_at=1,
            deadline=2,
            order_id=42,
        )
    )


# --- the per-order queue --------------------------------------------------------------


async def test_follow_ups_of_one_order_go_in_submission_order(redis: Any, ledger: Ledger) -> None:
    queue = KEYS.order_queue(7, 42)
    first, second = (
        eid for eid, _ in await stream_entries(redis, KEYS, [{b"n": b"1"}, {b"n": b"2"}])
    )
    await redis.rpush(queue, first, second)

    assert (await ledger.claim("req-2", second, order_queue=queue)).state == "wait"
    assert not await redis.exists(KEYS.lease("req-2"))  # waiting takes no lease
    assert await ledger.history("req-2") == []

    assert (await ledger.claim("req-1", first, order_queue=queue)).state == "go"
    assert (await ledger.claim("req-2", second, order_queue=queue)).state == "wait"

    assert await ledger.finish(
        result("req-1", kind="modify"), entry_id=first, reply_to=REPLY, order_queue=queue
    )
    assert await redis.lrange(queue, 0, -1) == [second.encode()]
    assert (await ledger.claim("req-2", second, order_queue=queue)).state == "go"
    assert await ledger.finish(
        result("req-2", kind="cancel"), entry_id=second, reply_to=REPLY, order_queue=queue
    )
    assert not await redis.exists(queue)


async def test_a_follow_up_not_in_its_queue_is_not_held_back(redis: Any, ledger: Ledger) -> None:
    queue = KEYS.order_queue(7, 42)
    await redis.rpush(queue, "1-0")
    assert (await ledger.claim("req-9", "5-0", order_queue=queue)).state == "go"


async def test_the_queue_is_ignored_for_a_scheduled_job(redis: Any, ledger: Ledger) -> None:
    queue = KEYS.order_queue(7, 42)
    await redis.rpush(queue, "1-0", "2-0")
    assert (await ledger.claim("gtt", None, order_queue=queue)).state == "go"
    assert await ledger.finish(result("gtt"), entry_id=None, reply_to=None, order_queue=queue)
    assert await redis.llen(queue) == 2


# --- keepalive ------------------------------------------------------------------------


async def test_keepalive_renews_our_lease_and_the_entry_idle_time(
    redis: Any, ledger: Ledger
) -> None:
    entry_id = await one_entry(redis)
    await ledger.claim("req-1", entry_id)
    await redis.pexpire(KEYS.lease("req-1"), 100)
    await asyncio.sleep(0.03)
    [row] = await redis.xpending_range(KEYS.intents, KEYS.group, "-", "+", 10)
    assert row["time_since_delivered"] >= 25

    lost = await ledger.keepalive([Running(entry_id, KEYS.lease("req-1"), ledger.owner(entry_id))])

    assert lost == set()
    assert await redis.pttl(KEYS.lease("req-1")) > 4000
    [row] = await redis.xpending_range(KEYS.intents, KEYS.group, "-", "+", 10)
    assert row["time_since_delivered"] < 25
    assert row["consumer"] == WORKER.encode()


async def test_keepalive_reports_lost_leases(redis: Any, ledger: Ledger) -> None:
    (e1, _), (e2, _), (e3, _) = await stream_entries(
        redis, KEYS, [{b"n": b"1"}, {b"n": b"2"}, {b"n": b"3"}]
    )
    other = make_ledger(redis, KEYS, consumer="w2")
    await ledger.claim("req-1", e1)
    await other.claim("req-2", e2)  # someone else took it after ours expired
    await ledger.claim("req-3", e3)
    await redis.delete(KEYS.lease("req-3"))  # released by a finish, or expired: nobody has it
    running = [
        Running(e1, KEYS.lease("req-1"), ledger.owner(e1)),
        Running(e2, KEYS.lease("req-2"), ledger.owner(e2)),
        Running(e3, KEYS.lease("req-3"), ledger.owner(e3)),
    ]
    # Only a lease another worker holds counts as lost (a finish releases ours all the time).
    assert await ledger.keepalive(running) == {e2}
    # A lease that is not ours is not renewed, nor recreated.
    assert await redis.get(KEYS.lease("req-2")) == other.owner(e2).encode()
    assert not await redis.exists(KEYS.lease("req-3"))


async def test_keepalive_does_not_take_an_entry_pending_on_another_consumer(
    redis: Any, ledger: Ledger
) -> None:
    [(entry_id, _)] = await stream_entries(redis, KEYS, [{b"n": b"1"}], consumer="w2")
    await ledger.claim("req-1", entry_id)
    await ledger.keepalive([Running(entry_id, KEYS.lease("req-1"), ledger.owner(entry_id))])
    [row] = await redis.xpending_range(KEYS.intents, KEYS.group, "-", "+", 10)
    assert row["consumer"] == b"w2"


async def test_keepalive_of_nothing_is_a_no_op(ledger: Ledger) -> None:
    assert await ledger.keepalive([]) == set()


# --- keys of the wrong type: a script checks before its first write -----------------------


async def test_finish_skips_a_reply_stream_that_is_not_a_stream_and_does_the_rest(
    redis: Any, ledger: Ledger
) -> None:
    entry_id = await one_entry(redis)
    await ledger.claim("req-1", entry_id)
    await redis.set(REPLY, b"not a stream")
    assert await ledger.finish(result(order_id=5), entry_id=entry_id, reply_to=REPLY)
    assert await redis.get(REPLY) == b"not a stream"
    stored = await ledger.stored_result("req-1")
    assert stored is not None
    assert stored.order_id == 5
    assert await pending_ids(redis, KEYS) == []
    assert not await redis.exists(KEYS.lease("req-1"))


async def test_finish_skips_a_dead_letter_stream_that_is_not_a_stream(
    redis: Any, ledger: Ledger
) -> None:
    entry_id = await one_entry(redis)
    await redis.set(KEYS.dead_letters, b"x")
    record = DeadLetter(entry_id=entry_id, reason="test")
    assert await ledger.finish(
        result(), entry_id=entry_id, reply_to=REPLY, dead_letter=record, store=False
    )
    assert await redis.get(KEYS.dead_letters) == b"x"
    assert await pending_ids(redis, KEYS) == []
    assert len(await replies(redis, REPLY)) == 1


async def test_keepalive_and_release_leave_a_lease_key_of_another_type_alone(
    redis: Any, ledger: Ledger
) -> None:
    entry_id = await one_entry(redis)
    await redis.rpush(KEYS.lease("req-1"), b"x")
    running = Running(entry_id, KEYS.lease("req-1"), ledger.owner(entry_id))
    assert await ledger.keepalive([running]) == set()
    await ledger.release("req-1", entry_id)
    assert await redis.lrange(KEYS.lease("req-1"), 0, -1) == [b"x"]


async def test_keepalive_without_the_group_does_not_fail(redis: Any, ledger: Ledger) -> None:
    """A Redis restarted empty has lost the group: the read loop creates it again, and
    keeping alive meanwhile is simply a no-op."""
    running = Running("1-0", KEYS.lease("req-1"), ledger.owner("1-0"))
    assert await ledger.keepalive([running]) == set()
