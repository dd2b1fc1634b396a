"""Scenario 7: malformed input, fuzzed with hypothesis, never crashes a worker and never
reaches the broker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, cast

import msgspec
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ow_core.keys import Keys
from producer import InvalidOrder, OrderClient
from producer.validation import validate_intent
from tests.faults.harness import Fleet
from worker.entries import Malformed, decode_entry
from worker.local.pytest_plugin import DEMO_ACCOUNT

KEYS = Keys()
REPLY = KEYS.reply("fuzz")
FIELDS = [
    "kind", "request_id", "reply_to", "account_id", "created_at", "deadline", "symbol",
    "side", "quantity", "order_type", "limit_price", "stop_price", "stop_loss_ticks",
    "take_profit_ticks", "custom_tag", "cancel_after", "order_id",
]  # fmt: skip
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(
        ["place", "modify", "cancel", "BUY", "SELL", "MNQ", "limit", REPLY, "ow:intents"]
    ),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3), max_leaves=5)
intent_like = st.dictionaries(st.sampled_from(FIELDS), values, max_size=len(FIELDS))
NOW = int(time.time() * 1000)
VALID = {
    "kind": "place", "request_id": "fuzz-base", "reply_to": REPLY, "account_id": DEMO_ACCOUNT,
    "created_at": NOW, "deadline": NOW + 600_000, "symbol": "MNQ", "side": "BUY", "quantity": 1,
}  # fmt: skip
# A valid intent with one field changed: exercises the rules, not just the decoder.
mutated = st.tuples(st.sampled_from(FIELDS), values, st.uuids()).map(
    lambda change: {**VALID, "request_id": str(change[2]), change[0]: change[1]}
)
raw = st.one_of(
    intent_like.map(lambda d: msgspec.json.encode(d)),
    st.binary(max_size=200),
    st.binary(min_size=70_000, max_size=70_100),  # oversized
    st.text(max_size=100).map(str.encode),
)
entries = st.fixed_dictionaries(
    {
        "v": st.sampled_from([b"1", b"1", b"1", b"2", b""]),
        # Half of them near-valid intents, so the rules are fuzzed and not only the decoder.
        "d": st.one_of(mutated.map(msgspec.json.encode), raw),
    },
    optional={"x": st.binary(max_size=10)},
)


def reaches_the_broker(fields: dict[bytes, bytes]) -> bool:
    """Whether a worker would execute this entry (a valid intent), as the worker decides."""
    decoded = decode_entry(fields, KEYS)
    if isinstance(decoded, Malformed):
        return False
    try:
        validate_intent(decoded)
    except InvalidOrder:
        return False
    return decoded.deadline > time.time() * 1000


def test_fuzzed_entries_never_crash_a_worker_nor_reach_the_broker(
    fleet: Callable[..., Fleet],
) -> None:
    stack = fleet()
    stack.start_worker("w1")
    client = redis.Redis.from_url(stack.redis_url)
    sent: list[dict[bytes, bytes]] = []

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(entries)
    def add(entry: dict[str, Any]) -> None:
        fields = {key.encode(): value for key, value in entry.items()}
        sent.append(fields)
        client.xadd(KEYS.intents, fields)  # type: ignore[arg-type]

    try:
        add()
        valid = sum(reaches_the_broker(fields) for fields in sent)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            groups = cast(list[dict[str, Any]], client.xinfo_groups(KEYS.intents))
            if groups and groups[0]["pending"] == 0 and groups[0]["lag"] == 0:
                break
            time.sleep(0.2)
        dead = cast(int, client.xlen(KEYS.dead_letters))
    finally:
        client.close()

    stats = stack.broker.stats()["endpoints"]
    order_requests = sum(
        stats.get(path, 0)
        for path in ("/api/Order/place", "/api/Order/modify", "/api/Order/cancel")
    )
    print(
        f"[fuzz] entries {len(sent)}, valid {valid}, dead-lettered {dead}, orders {order_requests}"
    )
    assert stack.workers["w1"].alive
    assert order_requests <= valid
    assert dead >= len(sent) - valid - sum(1 for f in sent if _rule_refusal(f))
    # The worker still serves good intents after all that.
    assert asyncio.run(_one_good_order(stack.redis_url)) == "accepted"


def _rule_refusal(fields: dict[bytes, bytes]) -> bool:
    """Decodes but breaks a rule: answered `rejected`, not dead-lettered."""
    return not isinstance(decode_entry(fields, KEYS), Malformed) and not reaches_the_broker(fields)


async def _one_good_order(redis_url: str) -> str:
    async with OrderClient(redis_url, account_id=DEMO_ACCOUNT) as client:
        return (await client.place_order("MNQ", "BUY", 1)).status
