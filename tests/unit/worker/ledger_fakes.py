"""Stand-ins for the worker's unit tests: a scripted broker, a fake clock, stream helpers.

Redis itself is ``fakeredis`` (with ``lupa`` for the ledger's Lua scripts); only
non-blocking commands are used here (XREADGROUP always with COUNT, never with BLOCK).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import fakeredis
import msgspec

from ow_core.keys import Keys
from producer.contract import OrderResult, decode_result
from worker.broker.models import Order, OrderStatus
from worker.broker.transport import CallStats
from worker.ledger import DeadLetter, Ledger

WORKER = "w1"
START = 1_800_000_000.0
"""The fake clock's start (epoch seconds)."""


def make_redis() -> Any:
    """A fresh, isolated fake Redis server and client (bytes responses, like production)."""
    return fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer())


def make_ledger(redis: Any, keys: Keys, consumer: str = WORKER, *, lease_ms: int = 5000) -> Ledger:
    return Ledger(
        redis, keys, consumer=consumer, lease_ms=lease_ms, result_ttl_s=3600, reply_maxlen=1000
    )


@dataclass
class FakeClock:
    """Epoch seconds that only move when someone sleeps (or a test moves them)."""

    now: float = START
    sleeps: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    def ms(self) -> int:
        return int(self.now * 1000)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


Scripted = list[Any]
"""Answers in order; the last one repeats. An exception instance is raised."""


def order(
    order_id: int,
    *,
    status: int = OrderStatus.OPEN,
    size: int = 1,
    limit_price: float | None = None,
    stop_price: float | None = None,
    custom_tag: str | None = None,
    account_id: int = 7,
) -> Order:
    return Order(
        id=order_id,
        account_id=account_id,
        contract_id="CON.F.US.MNQ.Z25",
        creation_timestamp="2027-01-15T10:00:00+00:00",
        status=status,
        type=1 if limit_price is not None else 2,
        side=0,
        size=size,
        limit_price=limit_price,
        stop_price=stop_price,
        custom_tag=custom_tag,
    )


class FakeBroker:
    """The four ``GatewayClient`` methods the executor calls, scripted per test.

    Each call is recorded as ``(method, kwargs)`` and counts as one request in ``stats``,
    as the real client does.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.place: Scripted = [1001]
        self.modify: Scripted = [None]
        self.cancel: Scripted = [None]
        self.find: Scripted = [None]

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def count(self, name: str) -> int:
        return self.names().count(name)

    def kwargs(self, name: str) -> list[dict[str, Any]]:
        return [kwargs for called, kwargs in self.calls if called == name]

    def _answer(self, name: str, script: Scripted, kwargs: dict[str, Any]) -> Any:
        self.calls.append((name, kwargs))
        stats = kwargs.get("stats")
        if isinstance(stats, CallStats):
            stats.attempts += 1
        answer = script.pop(0) if len(script) > 1 else script[0]
        if isinstance(answer, BaseException):
            raise answer
        return answer

    async def place_order(self, **kwargs: Any) -> int:
        answer: int = self._answer("place", self.place, kwargs)
        return answer

    async def modify_order(self, **kwargs: Any) -> None:
        self._answer("modify", self.modify, kwargs)

    async def cancel_order(self, **kwargs: Any) -> None:
        self._answer("cancel", self.cancel, kwargs)

    async def find_order(self, account_id: int, **kwargs: Any) -> Order | None:
        answer: Order | None = self._answer("find", self.find, {"account_id": account_id, **kwargs})
        return answer


async def stream_entries(
    redis: Any, keys: Keys, fields: list[dict[bytes, bytes]], *, consumer: str = WORKER
) -> list[tuple[str, dict[bytes, bytes]]]:
    """XADD entries to the intents stream and deliver them to ``consumer`` (now pending)."""
    if not await redis.exists(keys.intents):
        await redis.xgroup_create(keys.intents, keys.group, id="0", mkstream=True)
    for item in fields:
        await redis.xadd(keys.intents, item)
    answer = await redis.xreadgroup(
        keys.group, consumer, {keys.intents: ">"}, count=len(fields) + 10
    )
    assert answer, "nothing delivered"
    delivered = answer[0][1]
    assert len(delivered) == len(fields)
    return [(entry_id.decode(), entry_fields) for entry_id, entry_fields in delivered]


async def pending_ids(redis: Any, keys: Keys) -> list[str]:
    rows = await redis.xpending_range(keys.intents, keys.group, "-", "+", 100)
    return [row["message_id"].decode() for row in rows]


async def replies(redis: Any, stream: str) -> list[OrderResult]:
    """Every result on a reply stream, oldest first (checking the entry format)."""
    out = []
    for _, fields in await redis.xrange(stream):
        assert set(fields) == {b"v", b"r"}
        assert fields[b"v"] == b"1"
        out.append(decode_result(fields[b"r"]))
    return out


async def dead_letters(redis: Any, keys: Keys) -> list[tuple[str, DeadLetter]]:
    out = []
    for _, fields in await redis.xrange(keys.dead_letters):
        record = msgspec.json.decode(fields[b"record"], type=DeadLetter)
        out.append((fields[b"entry"].decode(), record))
    return out
