"""Per-login sliding-window rate limiting, as the gateway documents it (docs/gateway.md §7).

Pure: the caller passes the current monotonic time in.
"""

from collections import deque
from typing import Annotated

import msgspec


class RateLimit(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """At most `requests` requests in any `seconds`-long window."""

    requests: Annotated[int, msgspec.Meta(ge=1)]
    seconds: Annotated[float, msgspec.Meta(gt=0)]


# §7: "All other Endpoints: 200 requests / 60 seconds".
GATEWAY_LIMIT = RateLimit(requests=200, seconds=60)
# §7: retrieveBars has its own, smaller budget (50 / 30 s in the current page).
BARS_PATH = "/api/History/retrieveBars"
BARS_LIMIT = RateLimit(requests=50, seconds=30)


class SlidingWindowLimiter:
    """Counts requests per (login, budget) over a sliding window.

    Simulator choices, since §7 leaves them undocumented: the window slides (no fixed
    buckets), the key is the login's user name, and refused requests do not use up budget.
    """

    def __init__(self) -> None:
        self._windows: dict[tuple[str, str], deque[float]] = {}

    def allow(self, user: str, path: str, limit: RateLimit | None, now: float) -> bool:
        """Record a request and say whether it is within budget.

        `limit` is the budget of every endpoint but retrieveBars, which always has its own;
        None switches rate limiting off altogether.
        """
        if limit is None:
            return True
        bucket = "*"
        if path == BARS_PATH:
            bucket, limit = BARS_PATH, BARS_LIMIT
        window = self._windows.setdefault((user, bucket), deque())
        horizon = now - limit.seconds
        while window and window[0] <= horizon:
            window.popleft()
        if len(window) >= limit.requests:
            return False
        window.append(now)
        return True

    def reset(self) -> None:
        """Forget every window."""
        self._windows.clear()
