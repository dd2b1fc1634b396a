"""Growing waits for retry loops that must neither spin nor wait too long."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

Jitter = Callable[[float], float]


def full_jitter(ceiling: float) -> float:
    """A wait drawn uniformly from [0, ceiling]: processes that failed together (a fleet
    losing Redis at once) do not come back in lock-step."""
    return random.uniform(0.0, ceiling)


@dataclass(slots=True)
class Backoff:
    """Delays up to ``first``, ``first * factor``, ... capped at ``cap`` (seconds).

    Each delay is ``jitter(ceiling)`` (full jitter by default); ``jitter=None`` gives the
    ceilings themselves.
    """

    first: float
    cap: float
    factor: float = 2.0
    jitter: Jitter | None = full_jitter
    _next: float = field(init=False)

    def __post_init__(self) -> None:
        self._next = self.first

    def next(self) -> float:
        """The delay to wait now; the one after may be longer, up to the cap."""
        ceiling = self._next
        self._next = min(ceiling * self.factor, self.cap)
        return ceiling if self.jitter is None else self.jitter(ceiling)

    def reset(self) -> None:
        """Start again from ``first`` (after a success)."""
        self._next = self.first
