"""When to send a broker request again, and how long to wait first.

The schedule is the predecessor's: up to 3 retries after 750, 1500 and 3000 ms. What may be
retried depends on whether a repeat could do harm:

- a 429 was refused before it ran: always retried, waiting at least ``Retry-After``;
- a connection that never opened proves the request never ran: always retried;
- a timeout, a dropped connection or a 5xx may have taken effect: retried only for requests
  that are safe to repeat (reads, login, modify to absolute values, cancel). A place is
  handed back to the caller, which looks the order up by its tag before sending again;
- business rejections, other 4xx and auth failures are final.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tenacity import AsyncRetrying, RetryCallState

from worker.broker.errors import BrokerRateLimited, BrokerUnavailable

Sleep = Callable[[float], Awaitable[None]]
MAX_RETRY_AFTER_S = 60.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """The waits (seconds) before each retry; its length is the number of retries."""

    schedule: tuple[float, ...] = (0.75, 1.5, 3.0)

    @classmethod
    def from_ms(cls, text: str) -> RetryPolicy:
        """Parse ``"750,1500,3000"`` (an empty string means no retries)."""
        parts = [p.strip() for p in text.split(",") if p.strip()]
        try:
            waits = tuple(float(p) / 1000 for p in parts)
        except ValueError:
            raise ValueError(
                f"retry schedule must be comma-separated milliseconds, got {text!r}"
            ) from None
        # float() reads "inf" and "nan": a wait of either never ends (asyncio.sleep(nan) hangs).
        if any(not math.isfinite(w) or w < 0 for w in waits):
            raise ValueError(f"retry schedule waits must be finite and >= 0, got {text!r}")
        return cls(waits)


def may_retry(error: BaseException, *, idempotent: bool) -> bool:
    """Whether sending the same request again is both useful and harmless."""
    if isinstance(error, BrokerRateLimited):
        return True
    if isinstance(error, BrokerUnavailable):
        return idempotent or not error.sent
    return False


def wait_before(retry_number: int, error: BaseException | None, policy: RetryPolicy) -> float:
    """Seconds to wait before retry ``retry_number`` (1-based)."""
    step = policy.schedule[min(retry_number, len(policy.schedule)) - 1] if policy.schedule else 0.0
    if isinstance(error, BrokerRateLimited) and error.retry_after is not None:
        # Honoured, but within reason: a gateway asking for minutes is better answered by
        # giving up (the intent expires) than by a worker slot held that long.
        return max(step, min(error.retry_after, MAX_RETRY_AFTER_S))
    return step


def retrying(
    policy: RetryPolicy,
    *,
    idempotent: bool,
    deadline: float | None,
    sleep: Sleep,
    clock: Callable[[], float] = time.monotonic,
    on_retry: Callable[[], None] | None = None,
) -> AsyncRetrying:
    """A tenacity controller for one request.

    ``deadline`` is a ``clock()`` time after which no retry starts: an intent nobody waits
    for any more must not reach the broker late.
    """

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        return wait_before(state.attempt_number, error, policy)

    def stop(state: RetryCallState) -> bool:
        if state.attempt_number > len(policy.schedule):
            return True
        return deadline is not None and clock() + state.upcoming_sleep > deadline

    def retry(state: RetryCallState) -> bool:
        error = state.outcome.exception() if state.outcome else None
        return error is not None and may_retry(error, idempotent=idempotent)

    def before_sleep(state: RetryCallState) -> None:
        if on_retry is not None:
            on_retry()

    return AsyncRetrying(
        retry=retry, wait=wait, stop=stop, sleep=sleep, reraise=True, before_sleep=before_sleep
    )
