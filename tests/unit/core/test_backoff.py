"""Growing waits: doubling from ``first``, never above ``cap``, back to ``first`` on reset;
with full jitter, each wait drawn below that ceiling."""

from __future__ import annotations

import random

import pytest

from ow_core.backoff import Backoff, full_jitter


def test_delays_double_up_to_the_cap() -> None:
    backoff = Backoff(0.1, 1.0, jitter=None)
    assert [backoff.next() for _ in range(6)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])


def test_the_factor_is_configurable() -> None:
    backoff = Backoff(0.002, 0.25, factor=3.0, jitter=None)
    assert [backoff.next() for _ in range(6)] == pytest.approx(
        [0.002, 0.006, 0.018, 0.054, 0.162, 0.25]
    )


def test_reset_starts_again_from_the_first_delay() -> None:
    backoff = Backoff(0.5, 5.0, jitter=None)
    for _ in range(10):
        backoff.next()
    assert backoff.next() == 5.0
    backoff.reset()
    assert [backoff.next(), backoff.next()] == [0.5, 1.0]


def test_a_factor_of_one_is_a_constant_wait() -> None:
    backoff = Backoff(0.05, 5.0, factor=1.0, jitter=None)
    assert {backoff.next() for _ in range(5)} == {0.05}


def test_each_backoff_keeps_its_own_state() -> None:
    a, b = Backoff(1.0, 8.0, jitter=None), Backoff(1.0, 8.0, jitter=None)
    a.next()
    a.next()
    assert b.next() == 1.0
    assert a.next() == 4.0


def test_the_total_wait_is_bounded_by_the_cap_per_step() -> None:
    backoff = Backoff(0.5, 5.0, jitter=None)
    delays = [backoff.next() for _ in range(100)]
    assert max(delays) == 5.0
    assert sum(delays) <= 5.0 * 100
    assert delays == sorted(delays)


def test_full_jitter_draws_each_wait_below_its_ceiling() -> None:
    draws = random.Random(3)
    backoff = Backoff(0.1, 1.0, jitter=lambda ceiling: draws.uniform(0.0, ceiling))
    ceilings = [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0, 1.0]
    delays = [backoff.next() for _ in ceilings]
    assert all(0.0 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    # Not the ceilings themselves: two workers failing together come back apart.
    assert delays != ceilings


def test_jitter_is_on_by_default_and_spreads_a_fleet() -> None:
    fleet = [Backoff(1.0, 8.0) for _ in range(20)]
    firsts = {backoff.next() for backoff in fleet}
    assert len(firsts) > 10
    assert all(0.0 <= d <= 1.0 for d in firsts)
    assert Backoff(1.0, 8.0).jitter is full_jitter
