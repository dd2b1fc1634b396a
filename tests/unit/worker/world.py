"""The executor's unit-test world: a fake Redis, a scripted broker, a fake clock and an
executor wired to them, with helpers to put entries on the stream and read the replies."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from ow_core.keys import Keys
from producer.contract import (
    CancelOrder,
    Intent,
    ModifyOrder,
    OrderResult,
    PlaceOrder,
    encode_intent,
)
from tests.unit.worker.ledger_fakes import (
    WORKER,
    FakeBroker,
    FakeClock,
    make_ledger,
    make_redis,
    pending_ids,
    replies,
    stream_entries,
)
from worker.broker.client import GatewayClient
from worker.broker.retry import RetryPolicy
from worker.entries import Entry
from worker.executor import Executor, ExecutorConfig
from worker.ledger import Ledger

KEYS = Keys()
REPLY = KEYS.reply("client-1")
ACCOUNT = 7
RETRIES = 3


@dataclass
class World:
    redis: Any
    ledger: Ledger
    broker: FakeBroker
    clock: FakeClock
    executor: Executor
    scheduled: list[tuple[PlaceOrder, int]] = field(default_factory=list)
    tracked: list[tuple[str, str]] = field(default_factory=list)
    reconfigured: Callable[[ExecutorConfig], Executor] | None = None

    def reconfigure(self, config: ExecutorConfig) -> None:
        """The same worker with other settings."""
        assert self.reconfigured is not None
        self.executor = self.reconfigured(config)

    # --- building intents (relative to the fake clock) --------------------------------

    def _common(self, overrides: dict[str, Any]) -> dict[str, Any]:
        return {
            "request_id": "req-1",
            "reply_to": REPLY,
            "account_id": ACCOUNT,
            "created_at": self.clock.ms() - 250,
            "deadline": self.clock.ms() + 10_000,
            **overrides,
        }

    def place(self, **overrides: Any) -> PlaceOrder:
        fields = {"symbol": "MNQ", "side": "BUY", "quantity": 1, **overrides}
        return PlaceOrder(**self._common(fields))

    def modify(self, **overrides: Any) -> ModifyOrder:
        return ModifyOrder(**self._common({"order_id": 42, "quantity": 2, **overrides}))

    def cancel(self, **overrides: Any) -> CancelOrder:
        return CancelOrder(**self._common({"order_id": 42, **overrides}))

    # --- the stream -------------------------------------------------------------------

    async def submit(self, *items: Intent | dict[bytes, bytes]) -> list[Entry]:
        """Put entries on the intents stream as a producer does, delivered to this worker.

        Follow-ups are registered in their order's queue, as ``OrderClient`` does.
        """
        fields = [encode_intent(item) if not isinstance(item, dict) else item for item in items]
        delivered = await stream_entries(self.redis, KEYS, fields)
        for item, (entry_id, _) in zip(items, delivered, strict=True):
            if isinstance(item, ModifyOrder | CancelOrder):
                await self.redis.rpush(KEYS.order_queue(item.account_id, item.order_id), entry_id)
        return [Entry(entry_id, entry_fields) for entry_id, entry_fields in delivered]

    async def run(self, item: Intent | dict[bytes, bytes]) -> OrderResult:
        """Submit and handle one entry; its one reply."""
        [entry] = await self.submit(item)
        before = len(await replies(self.redis, REPLY))
        await self.executor.handle(entry)
        answers = await replies(self.redis, REPLY)
        assert len(answers) == before + 1, "expected exactly one reply"
        return answers[-1]

    async def acknowledged(self) -> bool:
        return await pending_ids(self.redis, KEYS) == []

    async def result_keys(self) -> list[bytes]:
        return [key async for key in self.redis.scan_iter(f"{KEYS.prefix}:result:*")]

    async def reply_streams(self) -> list[bytes]:
        return [key async for key in self.redis.scan_iter(f"{KEYS.prefix}:reply:*")]


@pytest.fixture
async def world() -> AsyncIterator[World]:
    redis = make_redis()
    clock = FakeClock()
    broker = FakeBroker()
    ledger = make_ledger(redis, KEYS)
    scheduled: list[tuple[PlaceOrder, int]] = []
    tracked: list[tuple[str, str]] = []

    async def schedule_cancel(intent: PlaceOrder, order_id: int) -> None:
        scheduled.append((intent, order_id))

    def make(config: ExecutorConfig) -> Executor:
        return Executor(
            cast(GatewayClient, broker),
            ledger,
            KEYS,
            config,
            schedule_cancel=schedule_cancel,
            track=lambda entry_id, request_id: tracked.append((entry_id, request_id)),
            sleep=clock.sleep,
            clock=clock,
        )

    executor = make(
        ExecutorConfig(
            worker_name=WORKER, retry=RetryPolicy((0.0,) * RETRIES), resolve_timeout_s=2.0
        )
    )
    yield World(redis, ledger, broker, clock, executor, scheduled, tracked, make)
    await redis.aclose()
