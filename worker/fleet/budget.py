"""One rate budget per login for the whole fleet: a sliding window in Redis, taken in Lua.

The gateway allows 200 requests per 60 s per login, and retrieveBars 50 per 30 s on its
own (docs/gateway.md §7), counted over a sliding window. The budget counts the same way:
each login keeps a sorted set of its sends in Redis, and a request goes at once whenever
fewer than the limit were sent in the trailing window, whichever worker sent them. A
burst of up to the limit leaves together; only what is beyond it waits, for the oldest
send to leave the window. (A token bucket, the budget before this one, must keep
``burst + rate * window`` under the limit: a burst of 47 and then 2.4 a second, so 120
orders at once took 36 s.)

Two margins keep the fleet under the gateway's count though the two clocks differ: the
window holds ``limit - margin`` sends (2 %, at least one), and a send counts for the window
plus a pad (2 % of it, at most 1 s), since a request sent early in our window may reach the
gateway late and one sent after it early.

When the window is nearly full, cancels and the way out (close, flatten) go first, then
modifies, then new orders: new orders may fill only the window less a reserve
(``_RESERVE``), modifies less a smaller one, cancels all of it. A 429 from the broker
pauses the whole fleet (for ``Retry-After`` when sent).
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

_RESERVE: Final[dict[str, float]] = {"cancel": 0.0, "modify": 0.1, "place": 0.2}
"""Share of the window a request of each priority must leave to those above it."""
_MARGIN: Final = 0.02
_PAD: Final = 0.02
_MAX_PAD_MS: Final = 1000
HISTORY_ENDPOINT: Final = "/api/History/retrieveBars"

# budget.lua defines take_budget(); the ledger's claim loads it too, so the first request
# of an intent costs no extra round trip.
BUDGET_LUA: Final = files("worker.fleet") / "budget.lua"
_TAKE: Final = Script.from_files(BUDGET_LUA, files("worker.fleet") / "take.lua")


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``requests`` in any ``seconds``-long window."""

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
        # The margin takes one request: a window needs room for one more.
        if limit.requests < 2 or not math.isfinite(limit.seconds) or limit.seconds <= 0:
            raise ValueError(
                f"expected REQUESTS/SECONDS with at least 2 requests, such as 200/60; got {text!r}"
            )
        return limit

    @property
    def capacity(self) -> int:
        """Sends the window holds: the limit less the margin for the gateway's clock."""
        return self.requests - max(1, math.ceil(self.requests * _MARGIN))

    @property
    def window_ms(self) -> int:
        """How long a send counts: the window and a pad for the time a request travels."""
        window = self.seconds * 1000
        return math.ceil(window + min(_MAX_PAD_MS, window * _PAD))

    def allowance(self, priority: Priority) -> int:
        """Sends a request of this priority may find in the window and still go."""
        return max(1, self.capacity - math.floor(self.capacity * _RESERVE[priority]))


HISTORY_LIMIT: Final = RateLimit(50, 30.0)
"""retrieveBars' own limit (docs/gateway.md §7)."""


@dataclass(frozen=True, slots=True)
class Window:
    """One of a login's limits, as its keys in Redis: the sends, and the pause after a 429."""

    limit: RateLimit
    key: str
    pause: str

    @classmethod
    def of(cls, keys: Keys, login: str, limit: RateLimit, kind: str = "orders") -> Window:
        """The window of ``login``'s ``kind`` of requests (``orders``: all but history)."""
        return cls(limit, keys.budget(login, kind), keys.budget_pause(login, kind))

    def args(self, priority: Priority) -> tuple[int, int]:
        """The take script's arguments for one request: (allowance, window_ms)."""
        return self.limit.allowance(priority), self.limit.window_ms


def priority_of(endpoint: str) -> Priority:
    """New orders wait first, modifies next; everything else (cancels, the look-ups that
    resolve orders in doubt, logins) goes ahead."""
    if endpoint.endswith("/Order/place"):
        return "place"
    if endpoint.endswith("/Order/modify"):
        return "modify"
    return "cancel"


class RateBudget:
    """The fleet's shared budget of one login, as one worker takes from it."""

    def __init__(self, redis: Redis, orders: Window, history: Window | None = None) -> None:
        self.orders = orders
        self.history = history
        self._redis = redis
        self._take = redis.register_script(_TAKE.source)

    def window(self, endpoint: str) -> Window | None:
        """The window ``endpoint`` counts in (None: retrieveBars with its limit off)."""
        if endpoint.endswith(HISTORY_ENDPOINT):
            return self.history
        return self.orders

    async def take(self, endpoint: str, deadline: float | None) -> None:
        """Wait for a slot for one request to ``endpoint``.

        Raises ``BrokerRateLimited`` (nothing was sent) when none comes before
        ``deadline`` (a ``time.monotonic()`` time).
        """
        window = self.window(endpoint)
        if window is None:
            return
        args = window.args(priority_of(endpoint))
        while True:
            wait_ms = int(await self._take(keys=[window.key, window.pause], args=args))
            if wait_ms <= 0:
                return
            wait = wait_ms / 1000
            if deadline is not None and time.monotonic() + wait > deadline:
                raise BrokerRateLimited(endpoint, wait)
            await asyncio.sleep(min(wait, 1.0))

    async def pause(self, endpoint: str, seconds: float) -> None:
        """Hold the whole fleet back from ``endpoint``'s window (after a 429)."""
        window = self.window(endpoint)
        if window is not None:
            await self._redis.set(window.pause, b"429", px=max(1, int(seconds * 1000)))
