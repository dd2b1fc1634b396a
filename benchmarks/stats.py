"""Percentiles and summaries of latency samples: one definition for every scenario.

Every figure in the report comes through ``summarize``, so "p95" means the same thing for
the floor, the queue, the direct calls and arq.
"""

from __future__ import annotations

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
