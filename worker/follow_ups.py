"""Modify and cancel: idempotent follow-ups of an order, answered with the order's real state.

A cancel of an order already cancelled, or a modify to values the order already has, is
a success. A refusal is answered with why, read from the order itself (filled, cancelled,
not found). A follow-up that may have reached the broker is checked there before it is
sent again; one that provably did not is sent again until its deadline.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ow_core.backoff import Backoff
from producer.contract import CancelOrder, ModifyOrder, OrderResult
from producer.errors import InvalidOrder, OrderError
from worker.attempt import Attempt, order_state
from worker.broker.client import GatewayClient
from worker.broker.errors import (
    BrokerError,
    BrokerRateLimited,
    BrokerRejected,
    BrokerUnavailable,
)
from worker.broker.models import Order, OrderStatus
from worker.fleet.risk import RiskGate

FollowUp = ModifyOrder | CancelOrder
_LIVE = (OrderStatus.OPEN, OrderStatus.PENDING, OrderStatus.SUSPENDED)


class FollowUps:
    """Runs modifies and cancels for the executor."""

    def __init__(
        self,
        broker: GatewayClient,
        *,
        lookback_h: float = 24.0,
        risk: RiskGate | None = None,
    ) -> None:
        self._broker = broker
        self._lookback = timedelta(hours=lookback_h)
        self._risk = risk

    async def run(self, attempt: Attempt, intent: FollowUp) -> OrderResult:
        """A modify or cancel, sent again while it provably did not reach the broker.

        Past the deadline it is not sent; if a worker started it before, the order's state
        tells whether that earlier attempt took effect.
        """
        try:
            return await self._run(attempt, intent)
        except (InvalidOrder, BrokerError) as error:
            return attempt.ended_by(error)

    async def _run(self, attempt: Attempt, intent: FollowUp) -> OrderResult:
        if (
            self._risk is not None
            and isinstance(intent, ModifyOrder)
            and not attempt.started_before
        ):
            await self._risk.admit(intent, attempt.stats)
        backoff = Backoff(0.25, 2.0)
        last_error: OrderError | None = None
        while True:
            if attempt.now_ms() >= intent.deadline:
                if attempt.started_before:
                    order = await self._find(attempt, intent)
                    if order is not None and _took_effect(order, intent):
                        return _as_is(attempt, order, "applied earlier")
                return attempt.not_sent(last_error)
            try:
                if isinstance(intent, ModifyOrder):
                    return await self._modify(attempt, intent)
                return await self._cancel(attempt, intent)
            except (BrokerUnavailable, BrokerRateLimited) as error:
                if isinstance(error, BrokerUnavailable) and error.sent:
                    raise
                last_error = error
                await attempt.pause(backoff.next())

    async def _modify(self, attempt: Attempt, intent: ModifyOrder) -> OrderResult:
        try:
            await self._broker.modify_order(
                account_id=intent.account_id,
                order_id=intent.order_id,
                quantity=intent.quantity,
                limit_price=intent.limit_price,
                stop_price=intent.stop_price,
                stats=attempt.stats,
                deadline=attempt.monotonic_deadline(),
            )
        except BrokerRejected as error:
            order = await self._find(attempt, intent)
            if order is not None and order.status in _LIVE and _has_values(order, intent):
                return _as_is(attempt, order, "already had these values")
            return _refused(attempt, intent, error, order)
        except BrokerUnavailable as error:
            if not error.sent:
                raise
            order = await self._find(attempt, intent)
            if order is not None and _has_values(order, intent):
                return _as_is(attempt, order, "modified")
            raise
        return attempt.result("accepted", order_id=intent.order_id)

    async def _cancel(self, attempt: Attempt, intent: CancelOrder) -> OrderResult:
        try:
            await self._broker.cancel_order(
                account_id=intent.account_id,
                order_id=intent.order_id,
                stats=attempt.stats,
                deadline=attempt.monotonic_deadline(),
            )
        except BrokerRejected as error:
            order = await self._find(attempt, intent)
            if order is not None and order.status == OrderStatus.CANCELLED:
                return _as_is(attempt, order, "already cancelled")
            return _refused(attempt, intent, error, order)
        except BrokerUnavailable as error:
            if not error.sent:
                raise
            order = await self._find(attempt, intent)
            if order is not None and order.status == OrderStatus.CANCELLED:
                return _as_is(attempt, order, "cancelled")
            raise
        return attempt.result("accepted", order_id=intent.order_id, state="cancelled")

    async def _find(self, attempt: Attempt, intent: FollowUp) -> Order | None:
        since = datetime.now(UTC) - self._lookback
        return await attempt.ask(
            lambda: self._broker.find_order(
                intent.account_id, order_id=intent.order_id, since=since, stats=attempt.stats
            )
        )


def _as_is(attempt: Attempt, order: Order, note: str) -> OrderResult:
    """Accepted: the order already shows what the follow-up asked for."""
    return attempt.result("accepted", order_id=order.id, state=order_state(order), message=note)


def _refused(
    attempt: Attempt, intent: FollowUp, error: BrokerRejected, order: Order | None
) -> OrderResult:
    """A refused follow-up, answered with the order's real state where it tells why."""
    code = None
    if order is None:
        code = "order_not_found"
    elif order.status == OrderStatus.FILLED:
        code = "order_filled"
    elif order.status == OrderStatus.CANCELLED:
        code = "order_cancelled"
    return attempt.result(
        "rejected",
        error=error,
        error_code=code,
        order_id=intent.order_id,
        state=None if order is None else order_state(order),
    )


def _took_effect(order: Order, intent: FollowUp) -> bool:
    """Whether the order shows the follow-up applied."""
    if isinstance(intent, CancelOrder):
        return order.status == OrderStatus.CANCELLED
    return _has_values(order, intent)


def _has_values(order: Order, intent: ModifyOrder) -> bool:
    """Whether the order already carries every value the modify asks for."""
    return (
        (intent.quantity is None or order.size == intent.quantity)
        and (intent.limit_price is None or order.limit_price == intent.limit_price)
        and (intent.stop_price is None or order.stop_price == intent.stop_price)
    )
