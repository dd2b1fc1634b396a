"""worker/broker/retry.py: what is retried, the waits, the schedule parser, the deadline."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from producer.errors import InvalidOrder
from worker.broker.errors import (
    BrokerAuthError,
    BrokerBadRequest,
    BrokerProtocolError,
    BrokerRateLimited,
    BrokerRejected,
    BrokerUnavailable,
)
from worker.broker.retry import RetryPolicy, may_retry, retrying, wait_before

DEFAULT = RetryPolicy()


def unavailable(*, sent: bool) -> BrokerUnavailable:
    return BrokerUnavailable("down", endpoint="/api/Order/place", sent=sent)


@pytest.mark.parametrize(
    ("error", "idempotent", "expected"),
    [
        # 429: refused before it ran, always safe to send again.
        (BrokerRateLimited("/e", None), False, True),
        (BrokerRateLimited("/e", 2.0), True, True),
        # Never reached the broker: safe for anything.
        (unavailable(sent=False), False, True),
        (unavailable(sent=False), True, True),
        # May have taken effect: only requests safe to repeat.
        (unavailable(sent=True), False, False),
        (unavailable(sent=True), True, True),
        (BrokerProtocolError("garbled", endpoint="/e", sent=True), False, False),
        (BrokerProtocolError("garbled", endpoint="/e", sent=True), True, True),
        # Final answers.
        (BrokerRejected("/e", 2, "no"), True, False),
        (BrokerRejected("/e", 2, "no"), False, False),
        (BrokerBadRequest("/e", 400, "bad"), True, False),
        (BrokerAuthError("refused", endpoint="/e"), True, False),
        (InvalidOrder("bad", code="invalid_quantity"), True, False),
        (ValueError("anything else"), True, False),
    ],
)
def test_may_retry_matrix(error: BaseException, idempotent: bool, expected: bool) -> None:
    assert may_retry(error, idempotent=idempotent) is expected


@pytest.mark.parametrize(("retry_number", "wait"), [(1, 0.75), (2, 1.5), (3, 3.0), (4, 3.0)])
def test_wait_before_follows_the_schedule(retry_number: int, wait: float) -> None:
    assert wait_before(retry_number, unavailable(sent=False), DEFAULT) == wait


@pytest.mark.parametrize(
    ("retry_number", "retry_after", "wait"),
    [(1, 2.0, 2.0), (2, 2.0, 2.0), (3, 2.0, 3.0), (1, 0.1, 0.75), (1, None, 0.75), (2, 0, 1.5)],
)
def test_wait_before_a_429_is_at_least_retry_after(
    retry_number: int, retry_after: float | None, wait: float
) -> None:
    error = BrokerRateLimited("/e", retry_after)
    assert wait_before(retry_number, error, DEFAULT) == wait


def test_wait_before_ignores_retry_after_on_anything_but_a_429() -> None:
    error = unavailable(sent=False)
    error.retry_after = 30.0  # type: ignore[attr-defined]
    assert wait_before(1, error, DEFAULT) == 0.75
    assert wait_before(1, None, DEFAULT) == 0.75


def test_wait_before_with_an_empty_schedule() -> None:
    empty = RetryPolicy(())
    assert wait_before(1, unavailable(sent=False), empty) == 0.0
    assert wait_before(1, BrokerRateLimited("/e", 5.0), empty) == 5.0


@pytest.mark.parametrize(
    ("text", "schedule"),
    [
        ("750,1500,3000", (0.75, 1.5, 3.0)),
        (" 100 , 200 ", (0.1, 0.2)),
        ("0", (0.0,)),
        ("250.5", (0.2505,)),
        ("", ()),
        (" , ", ()),
        ("5,", (0.005,)),
    ],
)
def test_from_ms_parses_milliseconds(text: str, schedule: tuple[float, ...]) -> None:
    assert RetryPolicy.from_ms(text).schedule == pytest.approx(schedule)


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("abc", "comma-separated milliseconds"),
        ("750;1500", "comma-separated milliseconds"),
        ("750,x,3000", "comma-separated milliseconds"),
        ("-1", "finite and >= 0"),
        ("750,-5", "finite and >= 0"),
        ("inf", "finite and >= 0"),  # a wait that never ends
        ("nan", "finite and >= 0"),  # asyncio.sleep(nan) never returns either
        ("1e400", "finite and >= 0"),
    ],
)
def test_from_ms_rejects_bad_schedules(text: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint) as raised:
        RetryPolicy.from_ms(text)
    assert repr(text) in str(raised.value)


def test_default_policy_is_the_predecessors() -> None:
    assert DEFAULT.schedule == (0.75, 1.5, 3.0)


class FakeTime:
    """A clock that only moves when the fake sleep is called."""

    def __init__(self) -> None:
        self.now = 100.0
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


@dataclass
class Run:
    """What a controller did: attempts made, waits slept, and how it ended."""

    attempts: int
    waits: list[float]
    error: BaseException | None
    ended_at: float


async def run(
    errors: list[BaseException | None],
    *,
    idempotent: bool,
    deadline: float | None = None,
    policy: RetryPolicy = DEFAULT,
) -> Run:
    """Drive a controller over attempts that raise ``errors`` in turn (None: succeed)."""
    time = FakeTime()
    attempts = 0
    controller = retrying(
        policy, idempotent=idempotent, deadline=deadline, sleep=time.sleep, clock=time.clock
    )
    try:
        async for attempt in controller:
            with attempt:
                attempts += 1
                error = errors[min(attempts, len(errors)) - 1]
                if error is not None:
                    raise error
    except Exception as error:  # the controller re-raises the last attempt's error
        return Run(attempts, time.waits, error, time.now)
    return Run(attempts, time.waits, None, time.now)


async def test_controller_retries_on_schedule_then_reraises_the_last_error() -> None:
    error = unavailable(sent=True)
    outcome = await run([error], idempotent=True)
    assert outcome.error is error  # the error itself, not a tenacity wrapper
    assert outcome.attempts == 4
    assert outcome.waits == [0.75, 1.5, 3.0]


async def test_controller_retries_a_request_that_never_ran_even_if_not_idempotent() -> None:
    outcome = await run([unavailable(sent=False)], idempotent=False)
    assert outcome.attempts == 4
    assert outcome.waits == [0.75, 1.5, 3.0]


async def test_controller_returns_once_an_attempt_succeeds() -> None:
    outcome = await run(
        [unavailable(sent=True), BrokerRateLimited("/e", None), None], idempotent=True
    )
    assert (outcome.attempts, outcome.error) == (3, None)
    assert outcome.waits == [0.75, 1.5]


async def test_controller_never_repeats_a_place_that_may_have_run() -> None:
    outcome = await run([unavailable(sent=True)], idempotent=False)
    assert isinstance(outcome.error, BrokerUnavailable)
    assert (outcome.attempts, outcome.waits) == (1, [])


@pytest.mark.parametrize(
    "error",
    [
        BrokerRejected("/e", 2, "no"),
        BrokerBadRequest("/e", 404, "x"),
        BrokerAuthError("x", endpoint="/e"),
    ],
)
async def test_controller_does_not_retry_final_answers(error: BaseException) -> None:
    outcome = await run([error], idempotent=True)
    assert outcome.error is error
    assert (outcome.attempts, outcome.waits) == (1, [])


async def test_controller_stops_at_the_deadline() -> None:
    outcome = await run([unavailable(sent=True)], idempotent=True, deadline=102.5)
    # Attempts at 100, 100.75 and 102.25; the next would start at 105.25, past 102.5.
    assert isinstance(outcome.error, BrokerUnavailable)
    assert outcome.attempts == 3
    assert outcome.waits == [0.75, 1.5]
    assert outcome.ended_at <= 102.5


async def test_controller_with_a_past_deadline_makes_one_attempt() -> None:
    outcome = await run([unavailable(sent=False)], idempotent=True, deadline=50.0)
    assert (outcome.attempts, outcome.waits) == (1, [])


async def test_controller_deadline_counts_a_long_retry_after() -> None:
    # The schedule's first wait would fit before the deadline; Retry-After 10 s does not.
    outcome = await run([BrokerRateLimited("/e", 10.0)], idempotent=False, deadline=105.0)
    assert isinstance(outcome.error, BrokerRateLimited)
    assert (outcome.attempts, outcome.waits) == (1, [])


async def test_controller_success_ignores_the_deadline() -> None:
    outcome = await run([None], idempotent=False, deadline=50.0)
    assert (outcome.attempts, outcome.error) == (1, None)


async def test_controller_with_no_retries_configured() -> None:
    outcome = await run([unavailable(sent=False)], idempotent=True, policy=RetryPolicy(()))
    assert (outcome.attempts, outcome.waits) == (1, [])
