"""The sequential workload shared by scenarios 2-4: the same intents through each path.

Each path (our queue, a direct HTTP session, arq) is a ``Driver``; ``run_sequential``
sends through it, one at a time, a bracketed market order, a modify of a resting limit
and a cancel of it, and times each call from the caller's side. The resting limits the
modifies and cancels work on are placed first, through the same path, several at once
(not measured), so every modify and cancel is of a live order and succeeds.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol

ACCOUNT: Final = 12345678
"""The simulator's first default account."""
SYMBOL: Final = "MNQ"
REST_PRICE: Final = 15000.0
"""A buy limit far below the simulator's MNQ price, so it rests until cancelled."""
MODIFIED_PRICE: Final = 14999.75
STOP_LOSS_TICKS: Final = 50
TAKE_PROFIT_TICKS: Final = 100
KINDS: Final = ("place", "modify", "cancel")
_SETUP_BATCH: Final = 20


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one call through a path came back with."""

    answered: bool
    """False when no answer came (a timeout): the harness fails the run then."""
    status: str
    order_id: int | None = None
    broker_ms: float | None = None
    """Time at the broker as the executing side measured it, where it reports one."""


class Driver(Protocol):
    """One path from a caller to the broker."""

    async def place(self, limit_price: float | None) -> Outcome:
        """A market order with brackets (``limit_price`` None) or a resting buy limit."""

    async def modify(self, order_id: int, price: float) -> Outcome:
        """Move a resting limit's price."""

    async def cancel(self, order_id: int) -> Outcome:
        """Cancel a resting order."""


@dataclass
class Recorder:
    """Latencies per intent kind, and the count of what was sent and answered."""

    latency: dict[str, list[float]]
    broker: dict[str, list[float]]
    statuses: Counter[str]
    sent: int = 0
    answered: int = 0

    @classmethod
    def new(cls) -> Recorder:
        return cls({k: [] for k in KINDS}, {k: [] for k in KINDS}, Counter())

    def count(self, outcome: Outcome) -> Outcome:
        self.sent += 1
        self.answered += outcome.answered
        self.statuses[outcome.status] += 1
        return outcome

    async def timed(self, kind: str, call: Awaitable[Outcome], *, keep: bool) -> Outcome:
        started = time.perf_counter()
        outcome = self.count(await call)
        elapsed = (time.perf_counter() - started) * 1000
        if keep and outcome.answered:
            self.latency[kind].append(elapsed)
            if outcome.broker_ms is not None:
                self.broker[kind].append(outcome.broker_ms)
        return outcome

    def as_json(self) -> dict[str, Any]:
        return {
            "latency_ms": self.latency,
            "broker_ms": {k: v for k, v in self.broker.items() if v},
            "sent": self.sent,
            "answered": self.answered,
            "statuses": dict(self.statuses),
        }


async def run_sequential(driver: Driver, samples: int, warmup: int) -> dict[str, Any]:
    """``warmup`` rounds unmeasured, then ``samples`` rounds of place, modify, cancel."""
    rounds = warmup + samples
    record = Recorder.new()
    resting: list[int | None] = []
    for start in range(0, rounds, _SETUP_BATCH):
        batch = min(_SETUP_BATCH, rounds - start)
        placed = await asyncio.gather(
            *(driver.place(REST_PRICE) for _ in range(batch)), return_exceptions=False
        )
        resting += [record.count(outcome).order_id for outcome in placed]
    for index, order_id in enumerate(resting):
        keep = index >= warmup
        await record.timed("place", driver.place(None), keep=keep)
        if order_id is None:
            continue  # its placing failed (counted); nothing to modify or cancel
        await record.timed("modify", driver.modify(order_id, MODIFIED_PRICE), keep=keep)
        await record.timed("cancel", driver.cancel(order_id), keep=keep)
    return record.as_json()


async def run_places(
    place: Callable[[], Awaitable[Outcome]], samples: int, warmup: int
) -> dict[str, Any]:
    """``warmup`` bracketed market orders unmeasured, then ``samples`` measured, one at a
    time: the place round trip alone, for paths that have no modify or cancel (the peers)."""
    record = Recorder.new()
    for index in range(warmup + samples):
        await record.timed("place", place(), keep=index >= warmup)
    return record.as_json()


def sequential_options(parser: argparse.ArgumentParser) -> None:
    """The flags every sequential load generator takes."""
    parser.add_argument("--samples", type=int, default=500, help="measured rounds")
    parser.add_argument("--warmup", type=int, default=50, help="rounds not measured")
