"""One attempt at an intent: what it has cost so far, and what both the place and the
follow-ups need while they run (its result, pauses that end at its deadline, asking the
broker until it answers).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final, TypeVar

from ow_core.backoff import Backoff
from producer.contract import (
    CancelOrder,
    Closed,
    Intent,
    ModifyOrder,
    OrderResult,
    OrderState,
    PlaceOrder,
    Status,
)
from producer.errors import OrderError
from worker.broker.errors import BrokerAuthError, BrokerRejected, BrokerUnavailable
from worker.broker.models import Order, OrderStatus
from worker.broker.transport import CallStats
from worker.fleet.budget import Priority

log = logging.getLogger("worker.executor")
T = TypeVar("T")

_STATES: Final[dict[int, OrderState]] = {
    OrderStatus.OPEN: "open",
    OrderStatus.PENDING: "pending",
    OrderStatus.FILLED: "filled",
    OrderStatus.CANCELLED: "cancelled",
    OrderStatus.EXPIRED: "expired",
    OrderStatus.REJECTED: "rejected",
    # The result's states predate these two (an older producer could not read a new
    # name): a bracket leg waiting for its entry is pending, a cancel under way is open.
    OrderStatus.SUSPENDED: "pending",
    OrderStatus.PENDING_CANCELLATION: "open",
}


class Unresolved(Exception):
    """The outcome is unknown and the broker cannot be asked now: leave the entry pending."""


def order_state(order: Order) -> OrderState:
    """The gateway's order status as the contract names it."""
    return _STATES.get(order.status, "unknown")


def kind_of(intent: Intent) -> str:
    """The intent's kind as the wire names it (``place``, ``close``, ...)."""
    return str(type(intent).__struct_config__.tag)


def priority_of(intent: Intent) -> Priority:
    """The intent's priority in the rate budget: new orders last, modifies before them,
    cancels and the way out (close, cancel-all, flatten) first."""
    if isinstance(intent, PlaceOrder):
        return "place"
    return "modify" if isinstance(intent, ModifyOrder) else "cancel"


@dataclass(frozen=True, slots=True)
class Env:
    """What every attempt of one worker shares: its name, its clock and its patience."""

    worker_name: str
    resolve_timeout_s: float = 60.0
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    clock: Callable[[], float] = time.time

    def now_ms(self) -> int:
        """Wall-clock time in epoch milliseconds."""
        return int(self.clock() * 1000)


@dataclass(slots=True)
class Attempt:
    """An intent being run by this worker now."""

    intent: Intent
    picked: int
    """When this worker picked it up (epoch ms)."""
    env: Env
    started_before: bool = False
    """A worker claimed this request before (so a place may already be at the broker)."""
    stats: CallStats = field(default_factory=CallStats)

    def result(
        self,
        status: Status,
        *,
        error: OrderError | None = None,
        error_code: str | None = None,
        message: str | None = None,
        order_id: int | None = None,
        state: OrderState | None = None,
        order_exists: bool | None = None,
        cancelled: list[int] | None = None,
        closed: list[Closed] | None = None,
    ) -> OrderResult:
        """The intent's result as of now."""
        return build_result(
            self.intent,
            self.picked,
            self.env,
            self.stats,
            status,
            error=error,
            error_code=error_code,
            message=message,
            order_id=order_id,
            state=state,
            order_exists=order_exists,
            cancelled=cancelled,
            closed=closed,
        )

    def ended_by(
        self,
        error: OrderError,
        *,
        order_exists: bool | None = None,
        cancelled: list[int] | None = None,
        closed: list[Closed] | None = None,
    ) -> OrderResult:
        """The result of an error that ended the attempt: ``failed`` when the broker gave no
        usable answer or refused our login (an outage, not a verdict on the intent),
        ``rejected`` when it (or a rule) refused the intent itself."""
        failed = isinstance(error, BrokerUnavailable | BrokerAuthError)
        status: Status = "failed" if failed else "rejected"
        return self.result(
            status, error=error, order_exists=order_exists, cancelled=cancelled, closed=closed
        )

    def not_sent(self, error: OrderError | None, *, looked_up: bool = False) -> OrderResult:
        """Expired: the deadline passed before the intent could be sent."""
        if looked_up:
            message = "the deadline passed; the order was not placed (looked up by tag)"
        else:
            reason = f" ({error.message})" if error is not None else ""
            message = f"the deadline passed before it could be sent{reason}; not sent"
        return self.result(
            "expired",
            error_code="deadline_passed",
            message=message,
            order_exists=False if isinstance(self.intent, PlaceOrder) else None,
        )

    def now_ms(self) -> int:
        """Wall-clock time in epoch milliseconds."""
        return self.env.now_ms()

    def monotonic_deadline(self) -> float:
        """The intent's deadline as a ``time.monotonic()`` time (what the client takes)."""
        return time.monotonic() + (self.intent.deadline - self.now_ms()) / 1000

    async def pause(self, seconds: float) -> None:
        """Wait before a resend, but not past the intent's deadline."""
        left = (self.intent.deadline - self.now_ms()) / 1000
        if left > 0:
            await self.env.sleep(min(seconds, left))

    async def ask(self, lookup: Callable[[], Awaitable[T]]) -> T:
        """Run a look-up until it answers; ``Unresolved`` once the resolve time is over.

        Look-ups are reads, so the client already retries them on its schedule; this loop
        keeps asking (every few seconds) through a longer broker outage.
        """
        give_up = self.intent.deadline + self.env.resolve_timeout_s * 1000
        backoff = Backoff(0.5, 5.0)
        while True:
            try:
                return await lookup()
            except BrokerUnavailable as error:
                if self.now_ms() >= give_up:
                    raise Unresolved(f"cannot ask the broker: {error.message}") from None
                delay = backoff.next()
                log.warning("look-up failed (%s); asking again in %.1f s", error.code, delay)
            await self.env.sleep(delay)


def build_result(
    intent: Intent,
    picked: int,
    env: Env,
    stats: CallStats | None,
    status: Status,
    *,
    error: OrderError | None = None,
    error_code: str | None = None,
    message: str | None = None,
    order_id: int | None = None,
    state: OrderState | None = None,
    order_exists: bool | None = None,
    cancelled: list[int] | None = None,
    closed: list[Closed] | None = None,
) -> OrderResult:
    """An intent's result, timed from its creation and its pick-up until now."""
    now = env.now_ms()
    if order_id is None and isinstance(intent, ModifyOrder | CancelOrder):
        order_id = intent.order_id
    return OrderResult(
        request_id=intent.request_id,
        status=status,
        kind=kind_of(intent),
        order_id=order_id,
        order_state=state,
        order_exists=order_exists,
        error_code=error_code or (error.code if error is not None else None),
        message=message or (error.message if error is not None else None),
        broker_error_code=error.broker_code if isinstance(error, BrokerRejected) else None,
        cancelled=cancelled,
        closed=closed,
        attempts=stats.attempts if stats else 0,
        queued_ms=float(max(0, picked - intent.created_at)),
        broker_ms=round(stats.broker_ms, 3) if stats else 0.0,
        worker_ms=float(now - picked),
        finished_at=now,
        worker=env.worker_name,
    )
