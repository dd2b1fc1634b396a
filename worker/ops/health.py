"""Is this worker healthy? Pure bookkeeping of when Redis and the broker last failed.

A worker that has lost Redis or the broker for longer than a threshold reports unhealthy
(``/healthz`` on the metrics port answers 503, ``order-worker health`` exits 1), so an
orchestrator can restart or page. A broker nobody asked anything is not a broker lost.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import msgspec

from worker.observe import Observer

_TRANSPORT_FAILURES = ("timeout", "connection", "refused", "5xx")


class Health(msgspec.Struct, frozen=True):
    """A health report."""

    healthy: bool
    redis_down_s: float
    broker_down_s: float
    reason: str = ""


class HealthState(Observer):
    """Tracks outages from the worker's events."""

    def __init__(self, threshold_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold_s = threshold_s
        self._clock = clock
        self._redis_down_since: float | None = None
        self._broker_down_since: float | None = None
        self._login_refused = ""

    def redis_trouble(self, where: str) -> None:
        if self._redis_down_since is None:
            self._redis_down_since = self._clock()

    def redis_ok(self) -> None:
        self._redis_down_since = None

    def broker_request(self, endpoint: str, outcome: str, seconds: float) -> None:
        failed = outcome in _TRANSPORT_FAILURES or outcome.startswith("5")
        if not failed:
            self._broker_down_since = None
        elif self._broker_down_since is None:
            self._broker_down_since = self._clock()

    def broker_login(self, ok: bool, message: str) -> None:
        # A refused login is an outage at once: nothing can be sent until it works.
        self._login_refused = "" if ok else message

    def report(self) -> Health:
        """Healthy unless Redis or the broker has been failing for the threshold."""
        now = self._clock()
        redis_down = 0.0 if self._redis_down_since is None else now - self._redis_down_since
        broker_down = 0.0 if self._broker_down_since is None else now - self._broker_down_since
        reasons = []
        if redis_down > self.threshold_s:
            reasons.append(f"Redis unreachable for {redis_down:.0f} s")
        if broker_down > self.threshold_s:
            reasons.append(f"broker failing for {broker_down:.0f} s")
        if self._login_refused:
            reasons.append(f"the broker refuses the login: {self._login_refused}")
        return Health(not reasons, round(redis_down, 1), round(broker_down, 1), "; ".join(reasons))
