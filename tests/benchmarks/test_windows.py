"""Requests per window from readings of the simulator's running total (benchmarks.stats)."""

from __future__ import annotations

from benchmarks.stats import window_counts


def test_counts_each_window_from_the_readings_around_it() -> None:
    # 10 requests per second, read every half second, from a reading before the start.
    readings = [(-0.5, 0.0)] + [(t / 2, 5.0 * (t + 1)) for t in range(13)]
    fixed, most = window_counts(readings, window=2.0, windows=3)
    # Window 1 runs from the reading at 0 s (5) to the one at 2 s (25), and so on.
    assert fixed == [20.0, 20.0, 20.0]
    assert most == 25.0  # a bound from above: off by what one reading interval holds


def test_a_burst_inside_a_window_is_caught_wherever_the_windows_fall() -> None:
    readings = [(-1.0, 0.0), (0.0, 0.0), (1.4, 0.0), (1.6, 30.0), (2.6, 30.0), (4.0, 31.0)]
    fixed, most = window_counts(readings, window=2.0, windows=2)
    assert fixed == [30.0, 1.0]
    assert most >= 30.0


def test_never_below_the_true_count_of_any_window() -> None:
    # Requests at known times, read every 0.3 s; check every window on a fine grid.
    sent = [0.1 * i for i in range(40)] + [5.0 + 0.01 * i for i in range(50)]
    readings = [(-0.3, 0.0)]
    moment = 0.0
    while moment < 8.0:
        readings.append((moment, float(sum(1 for s in sent if s <= moment))))
        moment += 0.3
    _, most = window_counts(readings, window=1.0, windows=1)
    true_most = max(
        sum(1 for s in sent if end - 1.0 < s <= end) for end in (i / 100 for i in range(800))
    )
    # Over by at most two reading intervals of the densest stretch (0.3 s at 100/s each).
    assert true_most <= most <= true_most + 2 * 30


def test_no_readings_count_nothing() -> None:
    assert window_counts([], window=60.0, windows=3) == ([0.0, 0.0, 0.0], 0.0)
