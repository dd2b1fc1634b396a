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

from enum import StrEnum
from typing import Final

import msgspec

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


class Placing(msgspec.Struct, frozen=True):
    """One place's state and what it has learned so far (a msgspec Struct: every intent
    makes a few, and its constructor costs a tenth of a dataclass's ``replace``)."""

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
        if self.phase is _PLACED:
            return True
        if self.phase is _IN_DOUBT or self.phase is _SENDING:
            return None
        return False


# Enum members looked up on their class cost a descriptor call each on Python 3.11; every
# place runs these functions several times, so they use module-level names.
_UNSENT, _IN_DOUBT, _ABSENT, _PLACED = Phase.UNSENT, Phase.IN_DOUBT, Phase.ABSENT, Phase.PLACED
_SENDING = Phase.SENDING
_MAYBE_SENT, _TAG_TAKEN = Event.MAYBE_SENT, Event.TAG_TAKEN
_ERROR_KEPT: Final = frozenset({Event.NOT_SENT, Event.REFUSED})
_ASKED: Final = frozenset({Event.FOUND, Event.NOT_FOUND})
_ORDER_LEARNT: Final = frozenset({Event.ACCEPTED, Event.FOUND})
_FINISH, _LOOK_UP, _GIVE_UP, _EXPIRE, _SEND = (
    Step.FINISH, Step.LOOK_UP, Step.GIVE_UP, Step.EXPIRE, Step.SEND
)  # fmt: skip


def start(*, started_before: bool) -> Placing:
    """The first state: in doubt when a worker started this intent before (it may have
    sent it before it stopped), else unsent."""
    return Placing(_IN_DOUBT if started_before else _UNSENT)


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
    sends_in_doubt, asked, tag_taken = placing.sends_in_doubt, placing.asked, placing.tag_taken
    kept_error = placing.error
    if event is _MAYBE_SENT:
        sends_in_doubt += 1
        kept_error = error
    elif event is _TAG_TAKEN:
        tag_taken, kept_error = True, error
    elif event in _ERROR_KEPT:
        kept_error = error
    elif event in _ASKED:
        asked = True
    found = event in _ORDER_LEARNT
    return Placing(
        to,
        sends_in_doubt,
        asked,
        tag_taken,
        order_id if found else placing.order_id,
        order_state if found else placing.order_state,
        kept_error,
    )


def next_step(placing: Placing, *, now_ms: int, deadline_ms: int, max_resends: int) -> Step:
    """What to do in this state.

    An order in doubt is always looked up first. An absent one is sent again only if its
    tag was not reported taken (that would be the broker contradicting itself), if it was
    not already sent in doubt more than ``max_resends`` times, and before its deadline.
    """
    phase = placing.phase
    if phase in FINAL:
        return _FINISH
    if phase is _IN_DOUBT:
        return _LOOK_UP
    if phase is _ABSENT and (placing.tag_taken or placing.sends_in_doubt > max_resends):
        return _GIVE_UP
    if now_ms >= deadline_ms:
        return _EXPIRE
    return _SEND
