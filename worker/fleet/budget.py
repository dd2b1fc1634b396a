"""One rate budget for the whole fleet: a token bucket in Redis, taken atomically in Lua.

The gateway allows 200 requests per 60 s per login (docs/gateway.md §7), counted over a
sliding window. A bucket that starts full with ``burst`` tokens and refills at ``rate``
lets through at most ``burst + rate * window`` requests in any window, so the bucket is
sized to keep that under the limit (with a small margin for clock skew between hosts).

When the budget is short, cancels go first, then modifies, then new orders: a request may
only take a token if enough are left after it, and new orders must leave the most.
A 429 from the broker pauses the whole fleet (for ``Retry-After`` when sent).
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from importlib.resources import files
from typing import Final, Literal

from redis.asyncio import Redis

from ow_core.fastlane import Script
from ow_core.keys import Keys
from worker.broker.errors import BrokerRateLimited

Priority = Literal["cancel", "modify", "place"]

# Share of the burst a request of each priority must leave in the bucket.
_RESERVE: Final[dict[str, float]] = {"cancel": 0.0, "modify": 0.1, "place": 0.25}
_SAFETY: Final = 0.95

# budget.lua defines take_budget(); the ledger's claim loads it too, so the first request
# of an intent costs no extra round trip.
BUDGET_LUA: Final = files("worker.fleet") / "budget.lua"
_TAKE: Final = Script.from_files(BUDGET_LUA, files("worker.fleet") / "take.lua")


@dataclass(frozen=True, slots=True)
class RateLimit:
    """``requests`` per ``seconds``, and the bucket that keeps under it."""

    requests: int
    seconds: float

    @classmethod
    def parse(cls, text: str) -> RateLimit | None:
        """``"200/60"``, or ``"off"`` for no budget."""
        if text.strip().lower() in ("off", "none", "0"):
            return None
        requests, _, seconds = text.partition("/")
        try:
            limit = cls(int(requests), float(seconds))
        except ValueError:
            raise ValueError(
                f"expected REQUESTS/SECONDS such as 200/60, or off; got {text!r}"
            ) from None
        # A bucket needs room for one request and some refill to stay under the limit.
        if limit.requests < 2 or not math.isfinite(limit.seconds) or limit.seconds <= 0:
            raise ValueError(
                f"expected REQUESTS/SECONDS with at least 2 requests, such as 200/60; got {text!r}"
            )
        return limit

    @property
    def burst(self) -> float:
        """Bucket capacity: a quarter of the limit (at least one request)."""
        return max(1.0, self.requests * _SAFETY / 4)

    @property
    def refill_per_ms(self) -> float:
        """Refill rate such that burst + rate * window stays under the limit."""
        return (self.requests * _SAFETY - self.burst) / (self.seconds * 1000)

    def reserve(self, priority: Priority) -> float:
        """Tokens a request of this priority must leave in the bucket."""
        return _RESERVE[priority] * self.burst

    def args(self, priority: Priority) -> list[float]:
        """The take script's arguments for one request."""
        return [self.burst, self.refill_per_ms, self.reserve(priority)]


def priority_of(endpoint: str) -> Priority:
    """New orders wait first, modifies next; everything else (cancels, the look-ups that
    resolve orders in doubt, logins) goes ahead."""
    if endpoint.endswith("/Order/place"):
        return "place"
    if endpoint.endswith("/Order/modify"):
        return "modify"
    return "cancel"


class RateBudget:
    """The fleet's shared budget, as one worker takes from it."""

    def __init__(self, redis: Redis, keys: Keys, limit: RateLimit) -> None:
        self.limit = limit
        self._redis = redis
        self._keys = keys
        self._take = redis.register_script(_TAKE.source)

    async def take(self, endpoint: str, deadline: float | None) -> None:
        """Wait for a token for one request to ``endpoint``.

        Raises ``BrokerRateLimited`` (nothing was sent) when none comes before
        ``deadline`` (a ``time.monotonic()`` time).
        """
        args = self.limit.args(priority_of(endpoint))
        while True:
            wait_ms = int(
                await self._take(keys=[self._keys.budget, self._keys.budget_pause], args=args)
            )
            if wait_ms <= 0:
                return
            wait = wait_ms / 1000
            if deadline is not None and time.monotonic() + wait > deadline:
                raise BrokerRateLimited(endpoint, wait)
            await asyncio.sleep(min(wait, 1.0))

    async def pause(self, seconds: float) -> None:
        """Hold the whole fleet back (after a 429 from the broker)."""
        await self._redis.set(self._keys.budget_pause, b"429", px=max(1, int(seconds * 1000)))
