"""The way out: close a position, cancel every working order, flatten an account.

Exactly once in effect, without a tag to look up (the gateway's closes carry none): each
is decided from the account's state at the broker, read before and after every send.

- A close fixes its plan on its first run and keeps it in Redis: the position it started
  from and the size it closes down to (flat for a whole close). Every run, this one after
  a timeout or another worker's after a crash, reads the position and only closes what is
  still above that size; a position that went flat or turned to the other side by other
  means (a stop-loss leg) is left as it is. So a close never closes twice and never
  reverses a position.
- A send that may have reached the broker (no answer) is given ``settle_s`` to show in
  the position before anything is sent again. Only a close the broker held longer than
  that and then executed could close more of a partial close than asked, never past flat
  (a whole close cannot over-close: the gateway refuses a close while one is pending).
- Cancels are idempotent at the broker; cancel-all repeats until no working order is left.
- Flatten cancels first (a close does not cancel bracket legs, and a leg left working could
  reopen the position), then closes every position, then checks that nothing is left, in
  rounds until its deadline.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Final

import msgspec

from ow_core.backoff import Backoff
from producer.contract import CancelAll, Closed, ClosePosition, OrderResult, PositionIntent
from producer.errors import InvalidOrder
from worker.attempt import Attempt
from worker.broker.client import GatewayClient
from worker.broker.errors import BrokerError, BrokerRateLimited, BrokerRejected, BrokerUnavailable
from worker.broker.models import ClosePositionError, Order

log = logging.getLogger("worker.positions")

_ROUNDS: Final = 5
"""Cancel-all searches (and flatten's rounds) before it says what is still left."""


class ClosePlan(msgspec.Struct, frozen=True):
    """A close's plan, fixed by its first run (``Ledger.first_plan``)."""

    start: int
    """The signed position when the close first ran."""
    target: int
    """The signed size it closes down to."""


_PLAN_DECODER: Final = msgspec.json.Decoder(ClosePlan)
FirstPlan = Callable[[str, bytes], Awaitable[bytes]]


def plan_for(position: int, quantity: int | None) -> ClosePlan:
    """Close all of ``position``, or ``quantity`` contracts of it (never past flat)."""
    if quantity is None or quantity >= abs(position):
        return ClosePlan(position, 0)
    sign = 1 if position > 0 else -1
    return ClosePlan(position, sign * (abs(position) - quantity))


def reached(plan: ClosePlan, current: int) -> bool:
    """Whether nothing is left to close: at or below the target, flat, or turned to the
    other side by something else (a close never acts on that)."""
    if plan.start == 0 or current == 0 or (current > 0) != (plan.start > 0):
        return True
    return abs(current) <= abs(plan.target)


def closed_of(plan: ClosePlan, current: int) -> int:
    """Contracts closed since the plan's start (all of them if it is flat or turned)."""
    if current == 0 or (current > 0) != (plan.start > 0):
        return abs(plan.start)
    return max(0, abs(plan.start) - abs(current))


class NotDone(Exception):
    """The deadline came with something still left (what, in the message)."""


class Positions:
    """Runs close, cancel-all and flatten for the executor."""

    def __init__(
        self,
        broker: GatewayClient,
        first_plan: FirstPlan,
        *,
        settle_s: float = 5.0,
        poll_s: float = 0.1,
    ) -> None:
        self._broker = broker
        self._first_plan = first_plan
        self._settle_s = settle_s
        self._poll_s = poll_s

    async def run(self, attempt: Attempt, intent: PositionIntent) -> OrderResult:
        """Run one of the three; its result says what it cancelled and closed."""
        cancelled: list[int] = []
        closed: list[Closed] = []
        try:
            if isinstance(intent, ClosePosition):
                done = await self._close(
                    attempt, intent, await self._contract_id(attempt, intent.symbol)
                )
                flat = done is None or done.remaining == 0
                return attempt.result(
                    "accepted", state="flat" if flat else "filled", closed=_listed(done)
                )
            contract_id = (
                None if intent.symbol is None else await self._contract_id(attempt, intent.symbol)
            )
            if isinstance(intent, CancelAll):
                await self._cancel_all(attempt, contract_id, cancelled)
                return attempt.result("accepted", cancelled=cancelled)
            await self._flatten(attempt, contract_id, cancelled, closed)
            return attempt.result("accepted", state="flat", cancelled=cancelled, closed=closed)
        except NotDone as left:
            return attempt.result(
                "failed",
                error_code="not_flat",
                message=str(left),
                cancelled=cancelled,
                closed=closed,
            )
        except (InvalidOrder, BrokerError) as error:
            return attempt.ended_by(error, cancelled=cancelled, closed=closed)

    # --- close ------------------------------------------------------------------------

    async def _close(
        self, attempt: Attempt, intent: ClosePosition, contract_id: str
    ) -> Closed | None:
        """Close per the request's plan; what it closed (None: there was nothing to)."""
        account = intent.account_id
        current = await self._position(attempt, account, contract_id)
        # Another worker may have run this close before: its plan stands, and what it may
        # have sent is given time to show before anything is sent again.
        proposed = msgspec.json.encode(plan_for(current, intent.quantity))
        plan = _PLAN_DECODER.decode(await self._first_plan(intent.request_id, proposed))
        if attempt.started_before and not reached(plan, current):
            current = await self._settle(attempt, account, contract_id, plan)
        current = await self._close_down(attempt, account, contract_id, plan, current)
        if plan.start == 0:
            return None
        return Closed(contract_id=contract_id, quantity=closed_of(plan, current), remaining=current)

    async def _close_down(
        self, attempt: Attempt, account: int, contract_id: str, plan: ClosePlan, current: int
    ) -> int:
        """Send closes until the position reaches the plan; the position then."""
        backoff = Backoff(0.25, 2.0)
        while not reached(plan, current):
            if attempt.now_ms() >= attempt.intent.deadline:
                raise NotDone(
                    f"the deadline came with {contract_id} at {current:+d} "
                    f"(closing to {plan.target:+d})"
                )
            quantity = None if plan.target == 0 else abs(current) - abs(plan.target)
            try:
                await self._broker.close_position(
                    account_id=account,
                    contract_id=contract_id,
                    quantity=quantity,
                    stats=attempt.stats,
                    deadline=attempt.monotonic_deadline(),
                )
            except BrokerRejected as error:
                current = await self._position(attempt, account, contract_id)
                if reached(plan, current) or error.broker_code == ClosePositionError.NOT_FOUND:
                    return current
                if error.broker_code != ClosePositionError.pending(partial=quantity is not None):
                    raise
                # A close of the gateway's own is still pending: it shows, or it is resent.
            except (BrokerUnavailable, BrokerRateLimited) as error:
                if isinstance(error, BrokerUnavailable) and error.sent:
                    log.warning("close of %s in doubt (%s): reading it", contract_id, error.code)
                else:
                    await attempt.pause(backoff.next())
                    current = await self._position(attempt, account, contract_id)
                    continue
            # Sent (or maybe sent): the position shows it, or it is given time to.
            current = await self._settle(attempt, account, contract_id, plan)
        return current

    async def _settle(
        self, attempt: Attempt, account: int, contract_id: str, plan: ClosePlan
    ) -> int:
        """The position once it reaches the plan, or as it is after ``settle_s``."""
        until = time.monotonic() + self._settle_s
        while True:
            current = await self._position(attempt, account, contract_id)
            if reached(plan, current) or time.monotonic() >= until:
                return current
            await asyncio.sleep(self._poll_s)

    # --- cancel-all and flatten --------------------------------------------------------

    async def _cancel_all(
        self, attempt: Attempt, contract_id: str | None, cancelled: list[int]
    ) -> None:
        """Cancel every working order (of ``contract_id``), searching again until none is
        left: cancelling an entry takes its waiting bracket legs with it."""
        account = attempt.intent.account_id
        for _ in range(_ROUNDS):
            working = await self._working(attempt, account, contract_id)
            if not working:
                return
            for order in working:
                if await self._cancel(attempt, account, order):
                    cancelled.append(order.id)
        left = await self._working(attempt, account, contract_id)
        if left:
            raise NotDone(f"orders still working: {', '.join(str(o.id) for o in left)}")

    async def _flatten(
        self,
        attempt: Attempt,
        contract_id: str | None,
        cancelled: list[int],
        closed: list[Closed],
    ) -> None:
        account = attempt.intent.account_id
        done: dict[str, Closed] = {}
        for _ in range(_ROUNDS):
            await self._cancel_all(attempt, contract_id, cancelled)
            positions = await self._positions(attempt, account, contract_id)
            for contract, size in positions.items():
                plan = ClosePlan(size, 0)
                after = await self._close_down(attempt, account, contract, plan, size)
                earlier = done.get(contract)
                quantity = closed_of(plan, after) + (0 if earlier is None else earlier.quantity)
                done[contract] = Closed(contract_id=contract, quantity=quantity, remaining=after)
            left_orders = await self._working(attempt, account, contract_id)
            left_positions = await self._positions(attempt, account, contract_id)
            if not left_orders and not left_positions:
                closed.extend(done.values())
                return
            if attempt.now_ms() >= attempt.intent.deadline:
                break
        closed.extend(done.values())
        raise NotDone(
            "still left after flattening: "
            + ", ".join(
                [f"order {o.id}" for o in await self._working(attempt, account, contract_id)]
                + [
                    f"{c} {s:+d}"
                    for c, s in (await self._positions(attempt, account, contract_id)).items()
                ]
            )
        )

    async def _cancel(self, attempt: Attempt, account: int, order: Order) -> bool:
        """Cancel one order; whether this cancel ended it (a refusal because it filled or
        was cancelled meanwhile is not an error: it is not working any more)."""
        backoff = Backoff(0.25, 2.0)
        while True:
            try:
                await self._broker.cancel_order(
                    account_id=account,
                    order_id=order.id,
                    stats=attempt.stats,
                    deadline=attempt.monotonic_deadline(),
                )
                return True
            except BrokerRejected:
                return False  # no longer working: the next search tells
            except (BrokerUnavailable, BrokerRateLimited) as error:
                if attempt.now_ms() >= attempt.intent.deadline:
                    raise
                # A cancel may be repeated: the broker refuses one already done.
                log.warning("cancel of order %d failed (%s); again", order.id, error.code)
                await attempt.pause(backoff.next())

    # --- reading the account -----------------------------------------------------------

    async def _contract_id(self, attempt: Attempt, symbol: str) -> str:
        contract = await self._broker.contracts.resolve(symbol, stats=attempt.stats)
        return contract.contract_id

    async def _position(self, attempt: Attempt, account: int, contract_id: str) -> int:
        return (await self._positions(attempt, account, contract_id)).get(contract_id, 0)

    async def _positions(
        self, attempt: Attempt, account: int, contract_id: str | None
    ) -> dict[str, int]:
        """Open positions (signed), of one contract or all."""
        found = await attempt.ask(
            lambda: self._broker.search_open_positions(account, stats=attempt.stats)
        )
        return {
            p.contract_id: p.signed_size
            for p in found
            if p.signed_size and (contract_id is None or p.contract_id == contract_id)
        }

    async def _working(
        self, attempt: Attempt, account: int, contract_id: str | None
    ) -> list[Order]:
        found = await attempt.ask(
            lambda: self._broker.search_open_orders(account, stats=attempt.stats)
        )
        return [o for o in found if contract_id is None or o.contract_id == contract_id]


def _listed(done: Closed | None) -> list[Closed]:
    return [] if done is None else [done]
