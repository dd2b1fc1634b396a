"""Is the order at the broker? The state of one place, as a small state machine.

A place is sent at most once unless the broker proves it did not get it. Whenever a send
may have reached the broker (a timeout, a dropped connection, a 5xx, the gateway saying
the order's tag is taken, or a worker that started this intent before and stopped), the
order is *in doubt*: nothing is sent until the broker is asked, by the order's tag, and
answers. NautilusTrader's execution engine is the model: an order whose outcome is
unknown is a state of its own, resolved by asking the venue.

Pure: no I/O, no clock. ``next_step`` says what to do in a state (send, look up, or
finish), the executor does it (``worker/place.py``) and reports the outcome as an event;
``advance`` moves by the transition table below, which is the whole machine.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Final

from producer.contract import OrderState
from producer.errors import OrderError


class Phase(StrEnum):
    """Where a place stands."""

    UNSENT = "unsent"
    """Not sent, or provably not received (a refused connection, a 429)."""
    SENDING = "sending"
    """A request is on its way."""
    IN_DOUBT = "in_doubt"
    """It may have reached the broker: ask before anything else."""
    ABSENT = "absent"
    """The broker was asked and has no such order."""
    PLACED = "placed"
    """The order exists at the broker (final)."""
    REJECTED = "rejected"
    """The broker or a rule refused it (final)."""
    EXPIRED = "expired"
    """Its deadline passed before it could be sent (final)."""
    FAILED = "failed"
    """Given up after asking: sent in doubt too often, or its tag is taken by no order
    (final)."""


class Event(StrEnum):
    """What happened, as the executor reports it."""

    SEND = "send"
    ACCEPTED = "accepted"
    """The broker answered with an order ID."""
    REFUSED = "refused"
    """A business rejection, a bad request or a rule: nothing was placed."""
    NOT_SENT = "not_sent"
    """The request provably never ran (refused connection, 429)."""
    MAYBE_SENT = "maybe_sent"
    """No usable answer; the request may have taken effect."""
    TAG_TAKEN = "tag_taken"
    """The gateway says the order's tag is in use: by this intent, sent before."""
    FOUND = "found"
    NOT_FOUND = "not_found"
    DEADLINE = "deadline"
    GIVE_UP = "give_up"


# The whole machine, top to bottom: (from, event) -> to. Anything else is a bug.
TRANSITIONS: Final[dict[tuple[Phase, Event], Phase]] = {
    (Phase.UNSENT, Event.SEND): Phase.SENDING,
    (Phase.UNSENT, Event.DEADLINE): Phase.EXPIRED,
    (Phase.SENDING, Event.ACCEPTED): Phase.PLACED,
    (Phase.SENDING, Event.REFUSED): Phase.REJECTED,
    (Phase.SENDING, Event.NOT_SENT): Phase.UNSENT,
    (Phase.SENDING, Event.MAYBE_SENT): Phase.IN_DOUBT,
    (Phase.SENDING, Event.TAG_TAKEN): Phase.IN_DOUBT,
    (Phase.IN_DOUBT, Event.FOUND): Phase.PLACED,
    (Phase.IN_DOUBT, Event.NOT_FOUND): Phase.ABSENT,
    (Phase.ABSENT, Event.SEND): Phase.SENDING,
    (Phase.ABSENT, Event.DEADLINE): Phase.EXPIRED,
    (Phase.ABSENT, Event.GIVE_UP): Phase.FAILED,
}
FINAL: Final = frozenset({Phase.PLACED, Phase.REJECTED, Phase.EXPIRED, Phase.FAILED})


class Step(StrEnum):
    """What the executor should do next."""

    SEND = "send"
    LOOK_UP = "look_up"
    EXPIRE = "expire"
    GIVE_UP = "give_up"
    FINISH = "finish"


class IllegalTransition(RuntimeError):
    """An event that cannot happen in this phase (a bug in the driver)."""


@dataclass(frozen=True, slots=True)
class Placing:
    """One place's state and what it has learned so far."""

    phase: Phase
    sends_in_doubt: int = 0
    """Sends that may have reached the broker (each is looked up before the next)."""
    asked: bool = False
    """The broker was asked about the order at least once."""
    tag_taken: bool = False
    """The gateway said the tag is in use (so an absent order is not sent again)."""
    order_id: int | None = None
    order_state: OrderState | None = None
    error: OrderError | None = None
    """The last error of a send: why it was refused, or why it is in doubt."""

    @property
    def order_exists(self) -> bool | None:
        """Whether the order is at the broker: known only when placed, or provably not."""
        if self.phase == Phase.PLACED:
            return True
        if self.phase in (Phase.IN_DOUBT, Phase.SENDING):
            return None
        return False


def start(*, started_before: bool) -> Placing:
    """The first state: in doubt when a worker started this intent before (it may have
    sent it before it stopped), else unsent."""
    return Placing(Phase.IN_DOUBT if started_before else Phase.UNSENT)


def advance(
    placing: Placing,
    event: Event,
    *,
    order_id: int | None = None,
    order_state: OrderState | None = None,
    error: OrderError | None = None,
) -> Placing:
    """The state after ``event``, by ``TRANSITIONS``."""
    to = TRANSITIONS.get((placing.phase, event))
    if to is None:
        raise IllegalTransition(f"{event} cannot happen while {placing.phase}")
    changed = replace(placing, phase=to)
    if event == Event.MAYBE_SENT:
        changed = replace(changed, sends_in_doubt=placing.sends_in_doubt + 1, error=error)
    elif event == Event.TAG_TAKEN:
        changed = replace(changed, tag_taken=True, error=error)
    elif event in (Event.NOT_SENT, Event.REFUSED):
        changed = replace(changed, error=error)
    elif event in (Event.FOUND, Event.NOT_FOUND):
        changed = replace(changed, asked=True)
    if event in (Event.ACCEPTED, Event.FOUND):
        changed = replace(changed, order_id=order_id, order_state=order_state)
    return changed


def next_step(placing: Placing, *, now_ms: int, deadline_ms: int, max_resends: int) -> Step:
    """What to do in this state.

    An order in doubt is always looked up first. An absent one is sent again only if its
    tag was not reported taken (that would be the broker contradicting itself), if it was
    not already sent in doubt more than ``max_resends`` times, and before its deadline.
    """
    phase = placing.phase
    if phase in FINAL:
        return Step.FINISH
    if phase == Phase.IN_DOUBT:
        return Step.LOOK_UP
    if phase == Phase.ABSENT and (placing.tag_taken or placing.sends_in_doubt > max_resends):
        return Step.GIVE_UP
    if now_ms >= deadline_ms:
        return Step.EXPIRE
    return Step.SEND
