"""Issue 5's targets, judged against one run's figures (reported, never asserted).

Each target is judged per intent kind where it names latency, so a miss on one kind shows
as its own row instead of hiding in an average.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from benchmarks.report import Figure, Results, Target
from benchmarks.workload import KINDS

QUEUE_SHARE_P50_MS: Final = 0.5
QUEUE_SHARE_P99_FLOOR_FACTOR: Final = 2.0
E2E_P95_MS: Final = {"place": 2.5, "modify": 1.5, "cancel": 1.5}
DIRECT_P50_GAP_MS: Final = 0.5
ARQ_DEFAULT_P50_FACTOR: Final = 100.0
ARQ_1MS_P95_FACTOR: Final = 3.0
ONE_WORKER_RATE: Final = 2000.0
BOUND_SHARE: Final = 0.8
RSS_MB: Final = 120.0


def _stat(figure: Figure | None, pick: Callable[[Figure], float | None]) -> float | None:
    return None if figure is None else pick(figure)


def _target(name: str, shown: str, goal: str, met: bool | None) -> Target:
    return Target(target=name, figure=shown, goal=goal, met=met)


def evaluate(results: Results) -> list[Target]:
    """Every target as met / not met / not measured, with the figures it was judged on."""
    return [
        *_queue_share(results),
        *_end_to_end(results),
        *_against_arq(results),
        *_throughput(results),
        *_memory(results),
    ]


def _queue_share(results: Results) -> list[Target]:
    rows = []
    floor_p99 = _stat(results.figure("floor.rtt"), lambda f: f.p99)
    for kind in KINDS:
        share = results.figure(f"ours.queue.{kind}")
        p50 = _stat(share, lambda f: f.p50)
        rows.append(
            _target(
                f"queue share p50, {kind}",
                "-" if p50 is None else f"{p50:.3f} ms",
                f"<= {QUEUE_SHARE_P50_MS} ms",
                None if p50 is None else p50 <= QUEUE_SHARE_P50_MS,
            )
        )
        p99 = _stat(share, lambda f: f.p99)
        name = f"queue share p99 vs floor p99, {kind}"
        goal = f"<= {QUEUE_SHARE_P99_FLOOR_FACTOR:g} x floor p99"
        if p99 is None or floor_p99 is None:
            rows.append(_target(name, "-", goal, None))
            continue
        rows.append(
            _target(
                name,
                f"{p99:.3f} ms vs floor {floor_p99:.3f} ms",
                goal,
                p99 <= QUEUE_SHARE_P99_FLOOR_FACTOR * floor_p99,
            )
        )
    return rows


def _end_to_end(results: Results) -> list[Target]:
    rows = []
    for kind in KINDS:
        ours = results.figure(f"ours.{kind}")
        p95 = _stat(ours, lambda f: f.p95)
        limit = E2E_P95_MS[kind]
        rows.append(
            _target(
                f"end-to-end p95, {kind}",
                "-" if p95 is None else f"{p95:.3f} ms",
                f"< {limit} ms",
                None if p95 is None else p95 < limit,
            )
        )
    for kind in KINDS:
        ours_p50 = _stat(results.figure(f"ours.{kind}"), lambda f: f.p50)
        direct_p50 = _stat(results.figure(f"direct.{kind}"), lambda f: f.p50)
        if ours_p50 is None or direct_p50 is None:
            rows.append(_target(f"p50 vs direct, {kind}", "-", "", None))
            continue
        gap = ours_p50 - direct_p50
        rows.append(
            _target(
                f"p50 vs direct, {kind}",
                f"{ours_p50:.3f} - {direct_p50:.3f} = {gap:.3f} ms",
                f"<= {DIRECT_P50_GAP_MS} ms more than direct",
                gap <= DIRECT_P50_GAP_MS,
            )
        )
    return rows


def _against_arq(results: Results) -> list[Target]:
    rows = []
    for kind in KINDS:
        ours = results.figure(f"ours.{kind}")
        for key, stat, factor, label in (
            ("arq_default", "p50", ARQ_DEFAULT_P50_FACTOR, "default arq"),
            ("arq_1ms", "p95", ARQ_1MS_P95_FACTOR, "1 ms-polling arq"),
        ):
            theirs = results.figure(f"{key}.{kind}")
            a: float | None = None if ours is None else getattr(ours, stat)
            b: float | None = None if theirs is None else getattr(theirs, stat)
            name = f"{stat} vs {label}, {kind}"
            if a is None or b is None or a <= 0:
                rows.append(_target(name, "-", "", None))
                continue
            rows.append(
                _target(
                    name,
                    f"{b:.2f} / {a:.3f} ms = {b / a:.1f}x",
                    f">= {factor:g}x lower",
                    b / a >= factor,
                )
            )
    return rows


def _throughput(results: Results) -> list[Target]:
    rows = []
    rate = _stat(results.figure("throughput.workers1.rate"), lambda f: f.value)
    rows.append(
        _target(
            "one worker, zero broker latency",
            "-" if rate is None else f"{rate:,.0f} intents/s",
            f">= {ONE_WORKER_RATE:,.0f} intents/s",
            None if rate is None else rate >= ONE_WORKER_RATE,
        )
    )
    for figure in results.figures:
        if not (figure.key.startswith("throughput.bound") and figure.key.endswith(".share")):
            continue
        bound = figure.key.split(".")[1].removeprefix("bound")
        share = figure.value
        rows.append(
            _target(
                f"in-flight bound {bound} at 20 ms broker latency",
                "-" if share is None else f"{share:.0%} of bound / latency",
                f">= {BOUND_SHARE:.0%} of bound / latency",
                None if share is None else share >= BOUND_SHARE,
            )
        )
    return rows


def _memory(results: Results) -> list[Target]:
    peak = [
        f.value
        for f in results.figures
        if f.key.endswith(".rss_max") and f.key.startswith("soak.") and f.value is not None
    ]
    growth = _stat(results.figure("soak.run.rss_growth"), lambda f: f.value)
    flat = _stat(results.figure("soak.run.flat"), lambda f: f.value)
    return [
        _target(
            "worker RSS, backlog and soak",
            "-" if not peak else f"max {max(peak):.1f} MB",
            f"<= {RSS_MB:g} MB",
            None if not peak else max(peak) <= RSS_MB,
        ),
        _target(
            "worker RSS flat over the soak",
            "-" if growth is None else f"{growth:+.1f} MB from start to end of the soak",
            "no growth (see soak.run.flat)",
            None if flat is None else flat >= 1,
        ),
    ]
