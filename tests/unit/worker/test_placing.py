"""The place state machine: every transition of its table, what each state asks for next,
and whether the order exists at the broker in each."""

from __future__ import annotations

import itertools

import pytest

from producer.errors import OrderError
from worker import placing
from worker.placing import FINAL, TRANSITIONS, Event, IllegalTransition, Phase, Placing, Step

NOW, DEADLINE = 1_000, 2_000
ERROR = OrderError("no answer", code="broker_unavailable")

# Each row: a state to start from, an event, the phase expected after it. Together they walk
# every entry of the table exactly once.
WALK: list[tuple[Placing, Event, Phase]] = [
    (Placing(Phase.UNSENT), Event.SEND, Phase.SENDING),
    (Placing(Phase.UNSENT), Event.DEADLINE, Phase.EXPIRED),
    (Placing(Phase.SENDING), Event.ACCEPTED, Phase.PLACED),
    (Placing(Phase.SENDING), Event.REFUSED, Phase.REJECTED),
    (Placing(Phase.SENDING), Event.NOT_SENT, Phase.UNSENT),
    (Placing(Phase.SENDING), Event.MAYBE_SENT, Phase.IN_DOUBT),
    (Placing(Phase.SENDING), Event.TAG_TAKEN, Phase.IN_DOUBT),
    (Placing(Phase.IN_DOUBT), Event.FOUND, Phase.PLACED),
    (Placing(Phase.IN_DOUBT), Event.NOT_FOUND, Phase.ABSENT),
    (Placing(Phase.ABSENT), Event.SEND, Phase.SENDING),
    (Placing(Phase.ABSENT), Event.DEADLINE, Phase.EXPIRED),
    (Placing(Phase.ABSENT), Event.GIVE_UP, Phase.FAILED),
]


def test_the_walk_covers_the_whole_table() -> None:
    walked = {(state.phase, event) for state, event, _ in WALK}
    assert walked == set(TRANSITIONS)
    assert len(WALK) == len(TRANSITIONS)


@pytest.mark.parametrize(("state", "event", "expected"), WALK)
def test_each_transition(state: Placing, event: Event, expected: Phase) -> None:
    after = placing.advance(state, event, order_id=7, order_state="open", error=ERROR)
    assert after.phase == expected


@pytest.mark.parametrize(
    ("phase", "event"),
    [
        (phase, event)
        for phase, event in itertools.product(Phase, Event)
        if (phase, event) not in TRANSITIONS
    ],
)
def test_anything_else_is_a_bug(phase: Phase, event: Event) -> None:
    with pytest.raises(IllegalTransition):
        placing.advance(Placing(phase), event)


def test_no_event_leaves_a_final_state() -> None:
    assert not [key for key in TRANSITIONS if key[0] in FINAL]


def test_a_first_claim_starts_unsent_and_a_second_starts_in_doubt() -> None:
    assert placing.start(started_before=False).phase == Phase.UNSENT
    assert placing.start(started_before=True).phase == Phase.IN_DOUBT


def step(state: Placing, *, now: int = NOW, max_resends: int = 3) -> Step:
    return placing.next_step(state, now_ms=now, deadline_ms=DEADLINE, max_resends=max_resends)


def test_an_order_in_doubt_is_looked_up_before_anything_else() -> None:
    assert step(Placing(Phase.IN_DOUBT)) == Step.LOOK_UP
    assert step(Placing(Phase.IN_DOUBT), now=DEADLINE + 1) == Step.LOOK_UP


def test_unsent_and_absent_orders_are_sent_before_the_deadline_and_expire_after() -> None:
    for phase in (Phase.UNSENT, Phase.ABSENT):
        assert step(Placing(phase)) == Step.SEND
        assert step(Placing(phase), now=DEADLINE) == Step.EXPIRE


def test_an_absent_order_is_given_up_once_sent_in_doubt_too_often() -> None:
    assert step(Placing(Phase.ABSENT, sends_in_doubt=3), max_resends=3) == Step.SEND
    assert step(Placing(Phase.ABSENT, sends_in_doubt=4), max_resends=3) == Step.GIVE_UP


def test_an_absent_order_whose_tag_was_taken_is_never_sent_again() -> None:
    assert step(Placing(Phase.ABSENT, tag_taken=True)) == Step.GIVE_UP


def test_final_states_finish() -> None:
    for phase in FINAL:
        assert step(Placing(phase)) == Step.FINISH


def test_what_each_event_teaches() -> None:
    sending = Placing(Phase.SENDING)
    doubt = placing.advance(sending, Event.MAYBE_SENT, error=ERROR)
    assert (doubt.sends_in_doubt, doubt.error) == (1, ERROR)
    taken = placing.advance(sending, Event.TAG_TAKEN, error=ERROR)
    assert taken.tag_taken
    found = placing.advance(doubt, Event.FOUND, order_id=9, order_state="filled")
    assert (found.asked, found.order_id, found.order_state) == (True, 9, "filled")
    absent = placing.advance(doubt, Event.NOT_FOUND)
    assert absent.asked
    assert absent.order_id is None


@pytest.mark.parametrize(
    ("phase", "exists"),
    [
        (Phase.PLACED, True),
        (Phase.IN_DOUBT, None),
        (Phase.SENDING, None),
        (Phase.UNSENT, False),
        (Phase.ABSENT, False),
        (Phase.REJECTED, False),
        (Phase.EXPIRED, False),
        (Phase.FAILED, False),
    ],
)
def test_whether_the_order_exists_in_each_phase(phase: Phase, exists: bool | None) -> None:
    assert Placing(phase).order_exists is exists


def test_a_lost_send_resent_until_the_schedule_is_used_up_then_given_up() -> None:
    """The whole path of a place whose sends all time out: send, look, send again, ..."""
    state = placing.start(started_before=False)
    seen = []
    while (next_ := step(state, max_resends=2)) != Step.FINISH:
        seen.append(next_)
        if next_ == Step.SEND:
            state = placing.advance(state, Event.SEND)
            state = placing.advance(state, Event.MAYBE_SENT, error=ERROR)
        elif next_ == Step.LOOK_UP:
            state = placing.advance(state, Event.NOT_FOUND)
        elif next_ == Step.GIVE_UP:
            state = placing.advance(state, Event.GIVE_UP)
    assert seen == [Step.SEND, Step.LOOK_UP] * 3 + [Step.GIVE_UP]
    assert state.phase == Phase.FAILED
    assert state.order_exists is False
