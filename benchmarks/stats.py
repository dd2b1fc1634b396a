"""Percentiles and summaries of latency samples: one definition for every scenario.

Every figure in the report comes through ``summarize``, so "p95" means the same thing for
the floor, the queue, the direct calls and arq.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

import msgspec


class Summary(msgspec.Struct, frozen=True, kw_only=True):
    """The usual order statistics of a list of samples (all in the samples' unit)."""

    n: int
    mean: float
    min: float
    p50: float
    p95: float
    p99: float
    max: float


def percentile(ordered: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of samples sorted ascending.

    Linear interpolation between the closest ranks (numpy's default), so a p99 of a few
    hundred samples does not jump to the maximum.
    """
    if not ordered:
        return math.nan
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0-100, got {q}")
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarize(samples: Sequence[float]) -> Summary:
    """n, mean, min, p50, p95, p99 and max of the samples (NaN for an empty list)."""
    ordered = sorted(samples)
    if not ordered:
        nan = math.nan
        return Summary(n=0, mean=nan, min=nan, p50=nan, p95=nan, p99=nan, max=nan)
    return Summary(
        n=len(ordered),
        mean=sum(ordered) / len(ordered),
        min=ordered[0],
        p50=percentile(ordered, 50),
        p95=percentile(ordered, 95),
        p99=percentile(ordered, 99),
        max=ordered[-1],
    )


def cdf(samples: Sequence[float]) -> tuple[list[float], list[float]]:
    """Points of the empirical CDF: sorted samples and the share at or below each."""
    ordered = sorted(samples)
    count = len(ordered)
    return ordered, [(index + 1) / count for index in range(count)]


def difference(minuends: Sequence[float], subtrahends: Sequence[float]) -> list[float]:
    """Pairwise ``a - b`` (e.g. end-to-end minus time at the broker, per intent)."""
    if len(minuends) != len(subtrahends):
        raise ValueError(f"lengths differ: {len(minuends)} and {len(subtrahends)}")
    return [a - b for a, b in zip(minuends, subtrahends, strict=True)]


def window_counts(
    readings: Sequence[tuple[float, float]], window: float, windows: int
) -> tuple[list[float], float]:
    """Counts per window from readings of a running total, ``(time, total)`` ascending.

    Returns the count in each of ``windows`` consecutive windows from time 0, and the most
    in any window of that length (sliding). Readings come only every so often, so both are
    bounds from above: a window's count is taken from the last reading at or before its
    start to the first at or after its end, and the sliding bound is off by at most what
    two reading intervals hold. Readings must start before time 0 and before anything was
    counted, so every window has a reading at or before its start.
    """
    if not readings:
        return [0.0] * windows, 0.0
    times = [t for t, _ in readings]
    totals = [c for _, c in readings]

    def at_or_before(moment: float) -> float:
        return totals[max(0, bisect.bisect_right(times, moment) - 1)]

    def at_or_after(moment: float) -> float:
        return totals[min(len(totals) - 1, bisect.bisect_left(times, moment))]

    fixed = [at_or_after((k + 1) * window) - at_or_before(k * window) for k in range(windows)]
    # A window ending between readings i-1 and i holds at most total_i minus the last
    # reading at or before (time_{i-1} - window).
    sliding = max(
        (totals[i] - at_or_before(times[i - 1] - window) for i in range(1, len(readings))),
        default=0.0,
    )
    return fixed, sliding
