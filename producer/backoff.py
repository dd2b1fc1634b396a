"""Growing waits for retry loops that must neither spin nor wait too long."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Backoff:
    """Delays ``first``, ``first * factor``, ... capped at ``cap`` (seconds)."""

    first: float
    cap: float
    factor: float = 2.0
    _next: float = field(init=False)

    def __post_init__(self) -> None:
        self._next = self.first

    def next(self) -> float:
        """The delay to wait now; the one after will be longer, up to the cap."""
        delay = self._next
        self._next = min(delay * self.factor, self.cap)
        return delay

    def reset(self) -> None:
        """Start again from ``first`` (after a success)."""
        self._next = self.first
