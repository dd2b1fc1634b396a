"""The executor's intent semantics against a scripted broker and a fakeredis ledger."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from ow_core.tags import broker_tag
from producer.contract import (
    DATA_FIELD,
    VERSION_FIELD,
    Intent,
    encode_intent,
)
from tests.unit.worker.ledger_fakes import (
    WORKER,
    dead_letters,
    make_ledger,
    order,
    pending_ids,
    replies,
)
from tests.unit.worker.world import ACCOUNT, KEYS, REPLY, RETRIES, World
from worker.attempt import Unresolved
from worker.broker.errors import BrokerRejected, BrokerUnavailable
from worker.broker.models import OrderStatus
from worker.broker.retry import RetryPolicy
from worker.entries import MAX_INTENT_BYTES, Entry
from worker.executor import ExecutorConfig


def unavailable(*, sent: bool) -> BrokerUnavailable:
    return BrokerUnavailable("no answer", endpoint="/api/Order/place", sent=sent)


def rejected(code: int, message: str, endpoint: str = "/api/Order/place") -> BrokerRejected:
    return BrokerRejected(endpoint, code, message)


DUPLICATE_TAG = rejected(2, "Specified custom tag is already in use")


# --- place: the plain path ------------------------------------------------------------


async def test_a_valid_place_is_accepted_replied_and_acknowledged(world: World) -> None:
    world.broker.place = [5551]
    intent = world.place(symbol="mnq", side="SELL", quantity=2, custom_tag="alpha")
    [entry] = await world.submit(intent)

    await world.executor.handle(entry)

    [answer] = await replies(world.redis, REPLY)
    assert answer.status == "accepted"
    assert answer.ok
    assert (answer.request_id, answer.kind, answer.order_id) == ("req-1", "place", 5551)
    assert answer.error_code is None
    assert answer.attempts == 1
    assert answer.queued_ms == 250.0
    assert answer.worker == WORKER
    assert answer.finished_at == world.clock.ms()
    assert await world.ledger.stored_result("req-1") == answer
    assert await world.acknowledged()
    assert not await world.redis.exists(KEYS.lease("req-1"))
    assert world.tracked == [(entry.entry_id, "req-1")]
    [sent] = world.broker.kwargs("place")
    assert sent["account_id"] == ACCOUNT
    assert sent["symbol"] == "MNQ"  # normalised by validation before the broker sees it
    assert (sent["side"], sent["quantity"], sent["order_type"]) == ("SELL", 2, "market")
    assert world.broker.names() == ["place"]
    assert await dead_letters(world.redis, KEYS) == []


async def test_the_broker_tag_is_derived_from_the_request_id(world: World) -> None:
    await world.run(world.place(custom_tag="alpha"))
    [sent] = world.broker.kwargs("place")
    assert sent["custom_tag"] == broker_tag("alpha", "req-1", 50) == "alpha.req-1"


async def test_the_broker_tag_without_a_strategy_tag_is_the_request_key(world: World) -> None:
    await world.run(world.place(request_id="Zq9_x-1"))
    assert world.broker.kwargs("place")[0]["custom_tag"] == "Zq9_x-1"


async def test_an_unknown_field_from_a_newer_producer_is_ignored(world: World) -> None:
    fields = encode_intent(world.place())
    data = json.loads(fields[DATA_FIELD])
    data["time_in_force"] = "gtc"
    answer = await world.run({VERSION_FIELD: b"1", DATA_FIELD: json.dumps(data).encode()})
    assert (answer.status, answer.order_id) == ("accepted", 1001)


async def test_cancel_after_schedules_the_cancel_of_the_placed_order(world: World) -> None:
    world.broker.place = [777]
    answer = await world.run(world.place(cancel_after=30.0))
    assert answer.ok
    [(intent, order_id)] = world.scheduled
    assert (intent.request_id, intent.cancel_after, order_id) == ("req-1", 30.0, 777)


# --- entries that are not valid intents -----------------------------------------------


def _data(world: World, **changes: Any) -> bytes:
    data = json.loads(encode_intent(world.place())[DATA_FIELD])
    data.update(changes)
    return json.dumps(data).encode()


async def _assert_dead_lettered(world: World, entry: Entry, reason: str) -> None:
    [(entry_id, record)] = await dead_letters(world.redis, KEYS)
    assert entry_id == record.entry_id == entry.entry_id
    assert reason in record.reason
    assert record.fields == {
        key.decode(errors="replace"): value.decode(errors="replace")[:MAX_INTENT_BYTES]
        for key, value in entry.fields.items()
    }
    assert await world.acknowledged()
    assert world.broker.calls == []
    assert await world.result_keys() == []  # a malformed entry's answer is never stored


@pytest.mark.parametrize(
    ("fields_of", "reason", "message"),
    [
        (
            lambda w: {VERSION_FIELD: b"1", DATA_FIELD: _data(w, quantity="1")},
            "not a valid intent",
            "$.quantity",
        ),
        (
            lambda w: {VERSION_FIELD: b"1", DATA_FIELD: _data(w, kind="replace")},
            "not a valid intent",
            "kind",
        ),
        (
            lambda w: {VERSION_FIELD: b"2", DATA_FIELD: _data(w)},
            "unsupported contract version",
            "b'2'",
        ),
        (
            lambda w: {DATA_FIELD: _data(w)},
            "unsupported contract version",
            "None",
        ),
        (
            lambda w: {VERSION_FIELD: b"1", DATA_FIELD: _data(w) + b" " * MAX_INTENT_BYTES},
            "intent too large",
            "bytes >",
        ),
    ],
    ids=["wrong type", "unknown kind", "unknown version", "no version", "oversized"],
)
async def test_a_malformed_entry_with_a_readable_reply_to_is_answered_and_dead_lettered(
    world: World, fields_of: Any, reason: str, message: str
) -> None:
    [entry] = await world.submit(fields_of(world))
    await world.executor.handle(entry)  # never raises
    [answer] = await replies(world.redis, REPLY)
    assert answer.status == "rejected"
    assert answer.error_code == "malformed_intent"
    assert answer.request_id == "req-1"  # so the producer can match it
    assert answer.message is not None
    assert reason in answer.message
    assert message in answer.message
    await _assert_dead_lettered(world, entry, reason)


@pytest.mark.parametrize(
    ("fields_of", "reason"),
    [
        (lambda w: {VERSION_FIELD: b"1", DATA_FIELD: b"place 1 MNQ"}, "not a valid intent"),
        (lambda w: {VERSION_FIELD: b"1", DATA_FIELD: b"\xff\xfe"}, "not a valid intent"),
        (lambda w: {b"junk": b"1"}, "unsupported contract version"),
        (
            lambda w: {VERSION_FIELD: b"1", DATA_FIELD: _data(w, pad="x" * MAX_INTENT_BYTES)},
            "intent too large",
        ),
        (
            lambda w: {VERSION_FIELD: b"1", DATA_FIELD: _data(w, reply_to="other:stream")},
            "reply_to must be a reply stream under ow:reply:",
        ),
        (
            lambda w: {VERSION_FIELD: b"1", DATA_FIELD: _data(w, reply_to="ow:reply:")},
            "reply_to must be a reply stream under ow:reply:",
        ),
    ],
    ids=["not json", "not utf-8", "no fields", "oversized", "foreign reply_to", "empty reply"],
)
async def test_a_malformed_entry_without_a_usable_reply_to_is_only_dead_lettered(
    world: World, fields_of: Any, reason: str
) -> None:
    [entry] = await world.submit(fields_of(world))
    await world.executor.handle(entry)
    assert await world.reply_streams() == []
    assert not await world.redis.exists("other:stream")
    await _assert_dead_lettered(world, entry, reason)


async def test_a_malformed_entry_without_a_request_id_is_answered_under_its_entry(
    world: World,
) -> None:
    data = json.dumps({"kind": "place", "reply_to": REPLY, "quantity": 1}).encode()
    [entry] = await world.submit({VERSION_FIELD: b"1", DATA_FIELD: data})
    await world.executor.handle(entry)
    [answer] = await replies(world.redis, REPLY)
    assert answer.request_id == f"entry:{entry.entry_id}"
    assert answer.kind == "place"
    assert answer.error_code == "malformed_intent"


# --- validation and deadline ----------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda w: w.place(quantity=0), "invalid_quantity"),
        (lambda w: w.place(order_type="limit"), "missing_limit_price"),
        (lambda w: w.place(symbol="  "), "invalid_symbol"),
        (lambda w: w.place(custom_tag="x" * 65), "invalid_custom_tag"),
        (lambda w: w.modify(quantity=None), "empty_modify"),
        (lambda w: w.cancel(order_id=0), "invalid_order_id"),
    ],
)
async def test_an_intent_breaking_a_rule_is_rejected_with_its_code(
    world: World, make: Any, code: str
) -> None:
    answer = await world.run(make(world))
    assert answer.status == "rejected"
    assert answer.error_code == code
    assert world.broker.calls == []
    assert await world.acknowledged()
    assert await world.ledger.stored_result("req-1") == answer
    assert await dead_letters(world.redis, KEYS) == []


@pytest.mark.parametrize("kind", ["place", "modify", "cancel"])
async def test_an_intent_past_its_deadline_expires_unsent(world: World, kind: str) -> None:
    intent = getattr(world, kind)(deadline=world.clock.ms() - 1)
    answer = await world.run(intent)
    assert answer.status == "expired"
    assert answer.error_code == "deadline_passed"
    assert answer.kind == kind
    assert world.broker.calls == []
    assert await world.acknowledged()


async def test_an_intent_at_its_deadline_expires(world: World) -> None:
    answer = await world.run(world.place(deadline=world.clock.ms()))
    assert answer.status == "expired"
    assert world.broker.calls == []


# --- repeated request IDs -------------------------------------------------------------


async def test_a_repeated_request_id_is_answered_from_the_stored_result(world: World) -> None:
    world.broker.place = [5551, 6662]
    first, second = await world.submit(world.place(), world.place(quantity=5))
    await world.executor.handle(first)
    await world.executor.handle(second)
    answers = await replies(world.redis, REPLY)
    assert len(answers) == 2
    assert answers[0] == answers[1]
    assert answers[1].order_id == 5551
    assert world.broker.count("place") == 1
    assert await world.acknowledged()


# --- place: unknown outcomes ----------------------------------------------------------


async def test_a_place_lost_in_flight_is_found_by_its_tag_and_not_sent_again(
    world: World,
) -> None:
    tag = broker_tag("alpha", "req-1", 50)
    world.broker.place = [unavailable(sent=True)]
    world.broker.find = [order(8881, custom_tag=tag, status=OrderStatus.FILLED)]
    intent = world.place(custom_tag="alpha")
    answer = await world.run(intent)
    assert answer.status == "accepted"
    assert answer.order_id == 8881
    assert answer.order_state == "filled"
    assert world.broker.names() == ["place", "find"]
    [lookup] = world.broker.kwargs("find")
    assert lookup["account_id"] == ACCOUNT
    assert lookup["custom_tag"] == tag
    assert lookup["since"] == datetime.fromtimestamp(intent.created_at / 1000, UTC)
    assert answer.attempts == 2
    assert await world.acknowledged()


async def test_a_place_not_found_after_a_lost_send_is_sent_again_with_the_same_tag(
    world: World,
) -> None:
    world.broker.place = [unavailable(sent=True), 2002]
    world.broker.find = [None]
    answer = await world.run(world.place(custom_tag="alpha"))
    assert (answer.status, answer.order_id) == ("accepted", 2002)
    assert world.broker.names() == ["place", "find", "place"]
    tags = {sent["custom_tag"] for sent in world.broker.kwargs("place")}
    assert tags == {"alpha.req-1"}


async def test_resends_of_a_lost_place_are_bounded_by_the_retry_schedule(world: World) -> None:
    world.broker.place = [unavailable(sent=True)]
    world.broker.find = [None]
    answer = await world.run(world.place(custom_tag="alpha"))
    assert world.broker.count("place") == 1 + RETRIES
    assert world.broker.count("find") == 1 + RETRIES
    # Every send is looked up before the next one.
    assert world.broker.names() == ["place", "find"] * (1 + RETRIES)
    assert {sent["custom_tag"] for sent in world.broker.kwargs("place")} == {"alpha.req-1"}
    assert answer.status == "failed"
    assert answer.error_code == "broker_unavailable"
    assert answer.message is not None
    assert "not placed" in answer.message
    assert answer.order_id is None
    assert await world.acknowledged()


async def test_a_lost_place_that_runs_out_of_time_expires(world: World) -> None:
    world.broker.place = [unavailable(sent=True)]
    world.broker.find = [None]
    world.reconfigure(  # waits longer than the intent has left
        ExecutorConfig(
            worker_name=WORKER, retry=RetryPolicy((6.0, 6.0, 6.0)), resolve_timeout_s=2.0
        )
    )
    answer = await world.run(world.place())
    assert answer.status == "expired"
    assert answer.message is not None
    assert "not placed" in answer.message
    assert world.broker.count("place") == 2  # the second wait hit the deadline
    assert world.clock.sleeps == [6.0, 4.0]  # never waits past the deadline


async def test_a_place_provably_not_sent_is_retried_until_its_deadline_never_looked_up(
    world: World,
) -> None:
    world.broker.place = [unavailable(sent=False)]
    answer = await world.run(world.place())
    assert answer.status == "expired"
    assert answer.error_code == "deadline_passed"
    assert answer.message is not None
    assert "not sent" in answer.message
    assert set(world.broker.names()) == {"place"}
    assert world.broker.count("place") > 3  # the broker was away; it kept trying


async def test_a_place_sent_once_the_broker_is_back(world: World) -> None:
    world.broker.place = [unavailable(sent=False), unavailable(sent=False), 5005]
    answer = await world.run(world.place())
    assert (answer.status, answer.order_id) == ("accepted", 5005)
    assert world.broker.names() == ["place", "place", "place"]


async def test_a_duplicate_tag_means_the_order_exists_and_is_found(world: World) -> None:
    world.broker.place = [DUPLICATE_TAG]
    world.broker.find = [order(3003, custom_tag="req-1")]
    answer = await world.run(world.place())
    assert (answer.status, answer.order_id, answer.order_state) == ("accepted", 3003, "open")
    assert world.broker.names() == ["place", "find"]


async def test_a_duplicate_tag_with_no_order_carrying_it_fails_unplaced(world: World) -> None:
    world.broker.place = [DUPLICATE_TAG]
    world.broker.find = [None]
    answer = await world.run(world.place())
    assert answer.status == "failed"
    assert answer.error_code == "duplicate_tag"
    assert answer.broker_error_code == 2
    assert world.broker.names() == ["place", "find"]


@pytest.mark.parametrize(
    "error", [rejected(2, "Order rejected"), rejected(5, "Specified custom tag is already in use")]
)
async def test_any_other_rejection_is_final_and_not_looked_up(
    world: World, error: BrokerRejected
) -> None:
    world.broker.place = [error]
    answer = await world.run(world.place())
    assert answer.status == "rejected"
    assert answer.error_code == "broker_rejected"
    assert answer.broker_error_code == error.broker_code
    assert world.broker.names() == ["place"]


async def _start_before(world: World, intent: Intent, entry: Entry) -> None:
    """What a worker that died mid-call leaves: a claim in the history, its lease gone."""
    other = make_ledger(world.redis, KEYS, consumer="w0")
    assert (await other.claim(intent.request_id, entry.entry_id)).state == "go"
    await world.redis.delete(KEYS.lease(intent.request_id))


async def test_a_redelivered_place_found_by_its_tag_is_not_sent(world: World) -> None:
    intent = world.place()
    [entry] = await world.submit(intent)
    await _start_before(world, intent, entry)
    world.broker.find = [order(4004, custom_tag="req-1")]
    await world.executor.handle(entry)
    [answer] = await replies(world.redis, REPLY)
    assert (answer.status, answer.order_id) == ("accepted", 4004)
    assert world.broker.names() == ["find"]


async def test_a_redelivered_place_is_looked_up_before_it_is_sent(world: World) -> None:
    intent = world.place()
    [entry] = await world.submit(intent)
    await _start_before(world, intent, entry)
    world.broker.place = [4005]
    await world.executor.handle(entry)
    [answer] = await replies(world.redis, REPLY)
    assert (answer.status, answer.order_id) == ("accepted", 4005)
    assert world.broker.names() == ["find", "place"]
    assert len(await world.ledger.history("req-1")) == 2


async def test_a_redelivered_place_past_its_deadline_is_not_sent_late(world: World) -> None:
    intent = world.place()
    [entry] = await world.submit(intent)
    await _start_before(world, intent, entry)
    world.clock.now += 60  # the deadline passed while the entry waited to be reclaimed
    await world.executor.handle(entry)
    [answer] = await replies(world.redis, REPLY)
    assert world.broker.names() == ["find"]
    assert answer.status == "expired"
    assert "not placed (looked up by tag)" in (answer.message or "")


async def test_a_redelivered_cancel_past_its_deadline_reports_an_earlier_success(
    world: World,
) -> None:
    intent = world.cancel()
    [entry] = await world.submit(intent)
    await _start_before(world, intent, entry)
    world.broker.find = [order(42, status=OrderStatus.CANCELLED)]
    world.clock.now += 60
    await world.executor.handle(entry)
    [answer] = await replies(world.redis, REPLY)
    assert world.broker.names() == ["find"]
    assert (answer.status, answer.order_state) == ("accepted", "cancelled")


async def test_a_redelivered_modify_past_its_deadline_not_applied_is_expired(
    world: World,
) -> None:
    intent = world.modify(quantity=3)
    [entry] = await world.submit(intent)
    await _start_before(world, intent, entry)
    world.broker.find = [order(42, status=OrderStatus.OPEN)]
    world.clock.now += 60
    await world.executor.handle(entry)
    [answer] = await replies(world.redis, REPLY)
    assert world.broker.names() == ["find"]
    assert answer.status == "expired"


# --- modify and cancel ----------------------------------------------------------------


async def test_a_cancel_is_accepted_as_cancelled(world: World) -> None:
    answer = await world.run(world.cancel())
    assert (answer.status, answer.kind, answer.order_id) == ("accepted", "cancel", 42)
    assert answer.order_state == "cancelled"
    [sent] = world.broker.kwargs("cancel")
    assert (sent["account_id"], sent["order_id"]) == (ACCOUNT, 42)
    assert not await world.redis.exists(KEYS.order_queue(ACCOUNT, 42))


async def test_a_refused_cancel_of_a_cancelled_order_is_accepted(world: World) -> None:
    world.broker.cancel = [rejected(3, "Order is not working", "/api/Order/cancel")]
    world.broker.find = [order(42, status=OrderStatus.CANCELLED)]
    answer = await world.run(world.cancel())
    assert answer.status == "accepted"
    assert answer.order_state == "cancelled"
    assert answer.error_code is None
    assert world.broker.names() == ["cancel", "find"]
    [lookup] = world.broker.kwargs("find")
    assert (lookup["order_id"], lookup.get("custom_tag")) == (42, None)


async def test_a_refused_cancel_of_a_filled_order_says_filled(world: World) -> None:
    world.broker.cancel = [rejected(3, "Order is not working", "/api/Order/cancel")]
    world.broker.find = [order(42, status=OrderStatus.FILLED)]
    answer = await world.run(world.cancel())
    assert answer.status == "rejected"
    assert answer.error_code == "order_filled"
    assert answer.order_state == "filled"
    assert answer.broker_error_code == 3
    assert answer.order_id == 42


async def test_a_refused_cancel_of_an_unknown_order_says_not_found(world: World) -> None:
    world.broker.cancel = [rejected(3, "Order not found", "/api/Order/cancel")]
    world.broker.find = [None]
    answer = await world.run(world.cancel())
    assert (answer.status, answer.error_code, answer.order_state) == (
        "rejected",
        "order_not_found",
        None,
    )


async def test_a_lost_cancel_found_cancelled_is_accepted(world: World) -> None:
    world.broker.cancel = [BrokerUnavailable("timeout", endpoint="/api/Order/cancel", sent=True)]
    world.broker.find = [order(42, status=OrderStatus.CANCELLED)]
    answer = await world.run(world.cancel())
    assert (answer.status, answer.order_state) == ("accepted", "cancelled")


async def test_a_modify_is_accepted(world: World) -> None:
    answer = await world.run(world.modify(quantity=3, limit_price=21000.5))
    assert (answer.status, answer.kind, answer.order_id) == ("accepted", "modify", 42)
    [sent] = world.broker.kwargs("modify")
    assert (sent["order_id"], sent["quantity"], sent["limit_price"], sent["stop_price"]) == (
        42,
        3,
        21000.5,
        None,
    )


async def test_a_refused_modify_to_values_the_order_has_is_accepted(world: World) -> None:
    world.broker.modify = [rejected(4, "Nothing to change", "/api/Order/modify")]
    world.broker.find = [order(42, size=3, limit_price=21000.5)]
    answer = await world.run(world.modify(quantity=3, limit_price=21000.5))
    assert answer.status == "accepted"
    assert answer.order_state == "open"
    assert answer.message == "already had these values"


async def test_a_refused_modify_to_other_values_is_rejected(world: World) -> None:
    world.broker.modify = [rejected(4, "Invalid price", "/api/Order/modify")]
    world.broker.find = [order(42, size=3, limit_price=21000.0)]
    answer = await world.run(world.modify(quantity=3, limit_price=21000.5))
    assert answer.status == "rejected"
    assert answer.error_code == "broker_rejected"
    assert answer.broker_error_code == 4
    assert answer.order_state == "open"


async def test_a_refused_modify_of_a_filled_order_with_those_values_says_filled(
    world: World,
) -> None:
    world.broker.modify = [rejected(4, "Order is not working", "/api/Order/modify")]
    world.broker.find = [order(42, size=2, status=OrderStatus.FILLED)]
    answer = await world.run(world.modify(quantity=2))
    assert (answer.status, answer.error_code) == ("rejected", "order_filled")


async def test_a_lost_modify_whose_values_are_there_is_accepted(world: World) -> None:
    world.broker.modify = [BrokerUnavailable("timeout", endpoint="/api/Order/modify", sent=True)]
    world.broker.find = [order(42, size=2)]
    answer = await world.run(world.modify(quantity=2))
    assert (answer.status, answer.message) == ("accepted", "modified")


async def test_follow_ups_of_one_order_run_in_submission_order(world: World) -> None:
    deadline = world.clock.ms() + 100
    first, second = await world.submit(
        world.modify(request_id="m-1"), world.cancel(request_id="c-1", deadline=deadline)
    )
    # The cancel comes to this worker first, but the modify was submitted first: the
    # cancel waits its turn and, here, runs out of time waiting.
    await world.executor.handle(second)
    [expired] = await replies(world.redis, REPLY)
    assert (expired.request_id, expired.status, expired.error_code) == (
        "c-1",
        "expired",
        "deadline_passed",
    )
    assert world.broker.calls == []
    assert world.clock.ms() >= deadline  # it waited (without a lease) until its deadline
    await world.executor.handle(first)
    assert world.broker.names() == ["modify"]
    assert not await world.redis.exists(KEYS.order_queue(ACCOUNT, 42))


async def test_a_follow_up_runs_once_the_earlier_one_finished(world: World) -> None:
    first, second = await world.submit(
        world.modify(request_id="m-1"), world.cancel(request_id="c-1")
    )
    await world.executor.handle(first)
    await world.executor.handle(second)
    assert world.broker.names() == ["modify", "cancel"]
    assert [a.status for a in await replies(world.redis, REPLY)] == ["accepted", "accepted"]


async def test_a_follow_up_rejected_by_a_rule_does_not_block_its_order(world: World) -> None:
    bad, good = await world.submit(
        world.modify(request_id="m-bad", quantity=0), world.cancel(request_id="c-1")
    )
    await world.executor.handle(bad)
    await world.executor.handle(good)
    answers = await replies(world.redis, REPLY)
    assert [(a.request_id, a.status) for a in answers] == [
        ("m-bad", "rejected"),
        ("c-1", "accepted"),
    ]
    assert world.broker.names() == ["cancel"]


# --- outcomes that cannot be resolved now ---------------------------------------------


async def test_lookups_failing_until_the_resolve_timeout_leave_the_entry_pending(
    world: World,
) -> None:
    world.broker.place = [unavailable(sent=True)]
    world.broker.find = [BrokerUnavailable("down", endpoint="/api/Order/search", sent=True)]
    intent = world.place(deadline=world.clock.ms() + 1000)
    [entry] = await world.submit(intent)

    with pytest.raises(Unresolved, match="cannot ask the broker"):
        await world.executor.handle(entry)

    assert world.clock.ms() >= intent.deadline + 2000  # asked until the resolve time was over
    assert world.broker.count("place") == 1  # never sent again while the outcome is unknown
    assert world.broker.count("find") > 1
    assert await pending_ids(world.redis, KEYS) == [entry.entry_id]
    assert await world.reply_streams() == []
    assert await world.ledger.stored_result("req-1") is None
    assert not await world.redis.exists(KEYS.lease("req-1"))
    claim, error = await world.ledger.history("req-1")
    assert claim.startswith("claim w1@")
    assert error.startswith("error w1@")
    assert "Unresolved: cannot ask the broker" in error


async def test_a_request_held_by_another_live_worker_is_waited_out_not_answered(
    world: World,
) -> None:
    intent = world.place(deadline=world.clock.ms() + 500)
    [entry] = await world.submit(intent)
    other = make_ledger(world.redis, KEYS, consumer="w2", lease_ms=60_000)
    await other.claim("req-1", entry.entry_id)

    with pytest.raises(Unresolved, match="held by another worker"):
        await world.executor.handle(entry)

    assert world.broker.calls == []
    assert await pending_ids(world.redis, KEYS) == [entry.entry_id]
    assert await world.reply_streams() == []
    assert await world.redis.get(KEYS.lease("req-1")) == other.owner(entry.entry_id).encode()
    assert (await world.ledger.history("req-1"))[-1].startswith("error w1@")


async def test_a_bug_in_the_broker_call_leaves_the_entry_pending(world: World) -> None:
    world.broker.place = [RuntimeError("boom")]
    [entry] = await world.submit(world.place())
    with pytest.raises(RuntimeError, match="boom"):
        await world.executor.handle(entry)
    assert await pending_ids(world.redis, KEYS) == [entry.entry_id]
    assert not await world.redis.exists(KEYS.lease("req-1"))
    assert "RuntimeError: boom" in (await world.ledger.history("req-1"))[-1]


# --- giving up ------------------------------------------------------------------------


async def test_give_up_on_a_started_place_that_exists_answers_accepted(world: World) -> None:
    intent = world.place(custom_tag="alpha")
    [entry] = await world.submit(intent)
    await _start_before(world, intent, entry)
    world.broker.find = [order(9009, custom_tag="alpha.req-1")]

    await world.executor.give_up(entry, "delivered 6 times")

    [answer] = await replies(world.redis, REPLY)
    assert (answer.status, answer.order_id, answer.order_state) == ("accepted", 9009, "open")
    assert world.broker.names() == ["find"]
    assert world.broker.kwargs("find")[0]["custom_tag"] == "alpha.req-1"
    assert await dead_letters(world.redis, KEYS) == []
    assert await world.acknowledged()
    assert await world.ledger.stored_result("req-1") == answer


async def test_give_up_on_a_started_place_not_found_dead_letters_it(world: World) -> None:
    intent = world.place()
    entry = (await world.submit(intent))[0]
    entry = Entry(entry.entry_id, entry.fields, deliveries=6)
    await _start_before(world, intent, entry)
    await world.ledger.note_error("req-1", "Unresolved: cannot ask the broker")
    world.broker.find = [None]

    await world.executor.give_up(entry, "delivered 6 times")

    [answer] = await replies(world.redis, REPLY)
    assert answer.status == "failed"
    assert answer.error_code == "dead_lettered"
    assert answer.message is not None
    assert "not placed" in answer.message
    assert world.broker.names() == ["find"]
    [(entry_id, record)] = await dead_letters(world.redis, KEYS)
    assert entry_id == record.entry_id == entry.entry_id
    assert record.request_id == "req-1"
    assert record.reason == "delivered 6 times"
    assert record.deliveries == 6
    assert [line.split("@")[0] for line in record.history] == ["claim w0", "error w1"]
    assert record.fields["d"] == entry.fields[DATA_FIELD].decode()
    assert await world.acknowledged()
    assert await world.ledger.stored_result("req-1") == answer


async def test_give_up_when_the_look_up_fails_says_it_may_exist(world: World) -> None:
    intent = world.place()
    [entry] = await world.submit(intent)
    await _start_before(world, intent, entry)
    world.broker.find = [BrokerUnavailable("down", endpoint="/api/Order/search", sent=True)]
    await world.executor.give_up(entry, "delivered 6 times")
    [answer] = await replies(world.redis, REPLY)
    assert answer.error_code == "dead_lettered"
    assert answer.message is not None
    assert "may have been placed" in answer.message
    assert world.broker.count("find") == 1
    assert len(await dead_letters(world.redis, KEYS)) == 1


async def test_give_up_on_a_place_never_started_does_not_ask(world: World) -> None:
    [entry] = await world.submit(world.place())
    await world.executor.give_up(entry, "delivered 6 times")
    assert world.broker.calls == []
    [answer] = await replies(world.redis, REPLY)
    assert answer.error_code == "dead_lettered"
    [(_, record)] = await dead_letters(world.redis, KEYS)
    assert record.history == []


async def test_give_up_on_a_finished_request_answers_the_stored_result(world: World) -> None:
    first, second = await world.submit(world.place(), world.place())
    await world.executor.handle(first)
    await world.executor.give_up(second, "delivered 6 times")
    answers = await replies(world.redis, REPLY)
    assert len(answers) == 2
    assert answers[0] == answers[1]
    assert answers[1].status == "accepted"
    assert await dead_letters(world.redis, KEYS) == []
    assert await world.acknowledged()


async def test_give_up_on_a_cancel_leaves_its_order_queue(world: World) -> None:
    cancel, later = await world.submit(world.cancel(request_id="c-1"), world.cancel())
    await world.executor.give_up(cancel, "delivered 6 times")
    assert await world.redis.lrange(KEYS.order_queue(ACCOUNT, 42), 0, -1) == [
        later.entry_id.encode()
    ]
    assert world.broker.calls == []


async def test_give_up_on_a_malformed_entry_dead_letters_it(world: World) -> None:
    [entry] = await world.submit({VERSION_FIELD: b"1", DATA_FIELD: b"nope"})
    await world.executor.give_up(entry, "delivered 6 times")
    assert len(await dead_letters(world.redis, KEYS)) == 1
    assert await world.acknowledged()


# --- whether the order exists, said on every place's result ---------------------------


async def test_an_accepted_place_says_its_order_exists(world: World) -> None:
    world.broker.place = [3003]
    answer = await world.run(world.place())
    assert (answer.status, answer.order_exists) == ("accepted", True)


async def test_a_refused_place_says_no_order_exists(world: World) -> None:
    world.broker.place = [rejected(2, "Invalid stop loss ticks")]
    answer = await world.run(world.place())
    assert (answer.status, answer.order_exists) == ("rejected", False)


async def test_a_failed_place_looked_up_and_not_found_says_no_order_exists(world: World) -> None:
    world.broker.place = [unavailable(sent=True)]
    world.broker.find = [None]
    answer = await world.run(world.place())
    assert (answer.status, answer.order_exists) == ("failed", False)


async def test_a_place_expired_unsent_says_no_order_exists(world: World) -> None:
    answer = await world.run(world.place(deadline=world.clock.ms() - 1))
    assert (answer.status, answer.order_exists) == ("expired", False)


async def test_a_dead_lettered_place_the_broker_could_not_be_asked_about_says_nothing(
    world: World,
) -> None:
    intent = world.place()
    [entry] = await world.submit(intent)
    await _start_before(world, intent, entry)
    world.broker.find = [BrokerUnavailable("down", endpoint="/api/Order/search", sent=True)]
    await world.executor.give_up(entry, "delivered 6 times")
    [answer] = await replies(world.redis, REPLY)
    assert answer.status == "failed"
    assert answer.order_exists is None


async def test_follow_ups_say_nothing_of_order_existence(world: World) -> None:
    world.broker.cancel = [None]
    answer = await world.run(world.cancel())
    assert answer.status == "accepted"
    assert answer.order_exists is None
