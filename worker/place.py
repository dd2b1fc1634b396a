"""Sending a place exactly once: the state machine of ``placing.py``, driven against the broker.

The order's ``customTag`` is derived from the request ID (``tags.broker_tag``), so the
gateway refuses a second order for the same intent and a worker that does not know
whether a send went through finds the order by its tag before sending again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from ow_core.backoff import Backoff
from ow_core.tags import broker_tag
from producer.contract import OrderResult, PlaceOrder
from producer.errors import InvalidOrder
from producer.validation import check_tag_fits
from worker import placing
from worker.attempt import Attempt, order_state
from worker.broker.client import GatewayClient
from worker.broker.errors import (
    BrokerError,
    BrokerRateLimited,
    BrokerRejected,
    BrokerUnavailable,
)
from worker.broker.models import Order
from worker.fleet.risk import RiskGate
from worker.placing import Event, Phase, Placing, Step

log = logging.getLogger("worker.executor")

ScheduleCancel = Callable[[PlaceOrder, int], Awaitable[None]]


class Placer:
    """Places orders for the executor."""

    def __init__(
        self,
        broker: GatewayClient,
        *,
        resend_waits: tuple[float, ...],
        tag_max_len: int = 50,
        duplicate_tag_code: int = 2,
        schedule_cancel: ScheduleCancel | None = None,
        risk: RiskGate | None = None,
    ) -> None:
        self._broker = broker
        self._resend_waits = resend_waits
        self._tag_max_len = tag_max_len
        self._duplicate_tag_code = duplicate_tag_code
        self._schedule_cancel = schedule_cancel
        self._risk = risk

    async def place(self, attempt: Attempt, intent: PlaceOrder) -> OrderResult:
        """Send a place exactly once, under the pre-trade risk checks.

        Whenever a send may have reached the broker (this time, or by a worker that
        started this intent before), the order is looked up by its tag before anything
        else: found means placed. Sends that may have gone through are repeated at most
        the retry schedule's length; sends that provably did not (refused connection,
        429) are repeated until the deadline, since the broker may just be away a while.
        """
        reservation = None
        if not attempt.started_before:
            # A place some worker started may be at the broker under its tag already: only a
            # fresh one is refused for a tag that would not fit.
            try:
                check_tag_fits(intent.custom_tag, intent.request_id, self._tag_max_len)
                if self._risk is not None:
                    reservation = await self._risk.admit(intent, attempt.stats)
            except (InvalidOrder, BrokerError) as error:
                return attempt.ended_by(error, order_exists=False)
        result: OrderResult | None = None
        try:
            result = await self._drive(attempt, intent)
            return result
        finally:
            if self._risk is not None:
                await self._risk.release(reservation, None if result is None else result.order_id)

    def tag_of(self, intent: PlaceOrder) -> str:
        """The order's ``customTag`` at the broker."""
        return broker_tag(intent.custom_tag, intent.request_id, self._tag_max_len)

    async def find_once(self, attempt: Attempt, intent: PlaceOrder) -> Order | None:
        """Ask the broker once for the order by its tag (``BrokerError`` if it cannot say)."""
        since = datetime.fromtimestamp(intent.created_at / 1000, UTC)
        return await self._broker.find_order(
            intent.account_id, custom_tag=self.tag_of(intent), since=since, stats=attempt.stats
        )

    async def _drive(self, attempt: Attempt, intent: PlaceOrder) -> OrderResult:
        tag = self.tag_of(intent)
        state = placing.start(started_before=attempt.started_before)
        backoff = Backoff(0.25, 2.0)
        try:
            while True:
                step = placing.next_step(
                    state,
                    now_ms=attempt.now_ms(),
                    deadline_ms=intent.deadline,
                    max_resends=len(self._resend_waits),
                )
                if step == Step.FINISH:
                    return await self._outcome(attempt, intent, state, tag)
                if step == Step.LOOK_UP:
                    state = await self._look_up(attempt, intent, state)
                elif step == Step.EXPIRE:
                    state = placing.advance(state, Event.DEADLINE)
                elif step == Step.GIVE_UP:
                    state = placing.advance(state, Event.GIVE_UP)
                else:
                    state = await self._send(attempt, intent, state, tag, backoff)
        except (InvalidOrder, BrokerError) as error:
            # A look-up the broker refused outright: the order stays as in doubt as it was.
            return attempt.ended_by(error, order_exists=state.order_exists)

    async def _send(
        self,
        attempt: Attempt,
        intent: PlaceOrder,
        state: Placing,
        tag: str,
        backoff: Backoff,
    ) -> Placing:
        state = placing.advance(state, Event.SEND)
        try:
            order_id = await self._broker.place_order(
                account_id=intent.account_id,
                symbol=intent.symbol,
                side=intent.side,
                quantity=intent.quantity,
                order_type=intent.order_type,
                limit_price=intent.limit_price,
                stop_price=intent.stop_price,
                stop_loss_ticks=intent.stop_loss_ticks,
                take_profit_ticks=intent.take_profit_ticks,
                trail_ticks=intent.trail_ticks,
                custom_tag=tag,
                stats=attempt.stats,
                deadline=attempt.monotonic_deadline(),
            )
        except BrokerRejected as error:
            if self._is_duplicate_tag(error):
                # Our tag is taken: by this very intent, sent before and forgotten.
                return placing.advance(state, Event.TAG_TAKEN, error=error)
            return placing.advance(state, Event.REFUSED, error=error)
        except (BrokerUnavailable, BrokerRateLimited) as error:
            if isinstance(error, BrokerUnavailable) and error.sent:
                # It may have gone through: wait for the broker to settle, then look.
                state = placing.advance(state, Event.MAYBE_SENT, error=error)
                if state.sends_in_doubt <= len(self._resend_waits):
                    await attempt.pause(self._resend_waits[state.sends_in_doubt - 1])
                log.info("place %s: outcome unknown; looking it up by tag", tag)
                return state
            await attempt.pause(backoff.next())
            return placing.advance(state, Event.NOT_SENT, error=error)
        except (InvalidOrder, BrokerError) as error:
            return placing.advance(state, Event.REFUSED, error=error)
        return placing.advance(state, Event.ACCEPTED, order_id=order_id)

    async def _look_up(self, attempt: Attempt, intent: PlaceOrder, state: Placing) -> Placing:
        found = await attempt.ask(lambda: self.find_once(attempt, intent))
        if found is None:
            return placing.advance(state, Event.NOT_FOUND)
        return placing.advance(
            state, Event.FOUND, order_id=found.id, order_state=order_state(found)
        )

    async def _outcome(
        self, attempt: Attempt, intent: PlaceOrder, state: Placing, tag: str
    ) -> OrderResult:
        """The result of a place that reached a final phase."""
        if state.phase == Phase.PLACED:
            assert state.order_id is not None
            if intent.cancel_after is not None and self._schedule_cancel is not None:
                # Before the result is written: if this worker dies in between, the
                # redelivered intent finds the order by its tag and schedules again (the
                # job ID is the same).
                await self._schedule_cancel(intent, state.order_id)
            return attempt.result(
                "accepted", order_id=state.order_id, state=state.order_state, order_exists=True
            )
        if state.phase == Phase.EXPIRED:
            return attempt.not_sent(state.error, looked_up=state.asked)
        if state.phase == Phase.REJECTED:
            if state.error is not None:
                return attempt.ended_by(state.error, order_exists=False)
            return attempt.result("rejected", order_exists=False)
        if state.tag_taken:
            return attempt.result(
                "failed",
                error=state.error,
                error_code="duplicate_tag",
                message=f"the broker says tag {tag!r} is in use but no order carries it; "
                "not placed",
                order_exists=False,
            )
        unknown = state.error
        message = f"{unknown.message if unknown else 'no answer'}; the order was not placed "
        return attempt.result(
            "failed", error=unknown, message=message + "(looked up by tag)", order_exists=False
        )

    def _is_duplicate_tag(self, error: BrokerRejected) -> bool:
        # The gateway publishes no code for it (docs/gateway.md §5.8): match code and text.
        text = (error.broker_message or "").lower()
        return error.broker_code == self._duplicate_tag_code and "tag" in text
