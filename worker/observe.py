"""Observability hooks: the core reports events here, and observers turn them into log
lines, metrics or health (``logs.py``, ``metrics.py``, ``health.py``). Nothing in the core
formats a metric or a log line of its own for these events.
"""

from __future__ import annotations

from collections.abc import Sequence

from producer.contract import OrderResult


class Observer:
    """Receives the worker's events; every method does nothing unless overridden."""

    def intent_finished(self, result: OrderResult) -> None:
        """An intent got its final result (once per request, when it was written)."""

    def broker_request(self, endpoint: str, outcome: str, seconds: float) -> None:
        """One HTTP request to the broker: ``outcome`` is the status code, or the kind of
        transport failure (``timeout``, ``connection``, ``refused``)."""

    def broker_retry(self, endpoint: str) -> None:
        """A broker request is about to be sent again."""

    def broker_login(self, ok: bool, message: str) -> None:
        """A login worked (``ok``), or the broker refused it (``message`` says why)."""

    def redis_trouble(self, where: str) -> None:
        """A Redis command failed for want of a connection."""

    def redis_ok(self) -> None:
        """Redis answered (the consumer reports this once per read)."""

    def reclaimed(self, deliveries: int) -> None:
        """An entry left pending by a stopped or stalled worker was taken over."""

    def dead_lettered(self, reason: str) -> None:
        """An entry went to the dead-letter stream."""

    def in_flight(self, count: int) -> None:
        """Intents being executed by this worker now."""


class Observers(Observer):
    """Several observers as one."""

    def __init__(self, observers: Sequence[Observer]) -> None:
        self._all = tuple(observers)

    def intent_finished(self, result: OrderResult) -> None:
        for observer in self._all:
            observer.intent_finished(result)

    def broker_request(self, endpoint: str, outcome: str, seconds: float) -> None:
        for observer in self._all:
            observer.broker_request(endpoint, outcome, seconds)

    def broker_retry(self, endpoint: str) -> None:
        for observer in self._all:
            observer.broker_retry(endpoint)

    def broker_login(self, ok: bool, message: str) -> None:
        for observer in self._all:
            observer.broker_login(ok, message)

    def redis_trouble(self, where: str) -> None:
        for observer in self._all:
            observer.redis_trouble(where)

    def redis_ok(self) -> None:
        for observer in self._all:
            observer.redis_ok()

    def reclaimed(self, deliveries: int) -> None:
        for observer in self._all:
            observer.reclaimed(deliveries)

    def dead_lettered(self, reason: str) -> None:
        for observer in self._all:
            observer.dead_lettered(reason)

    def in_flight(self, count: int) -> None:
        for observer in self._all:
            observer.in_flight(count)
