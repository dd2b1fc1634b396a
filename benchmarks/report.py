"""What a run found, and how it is written down: ``results.json`` and ``results.md``.

Every figure is a row that says what it measures. Latency rows carry their percentiles
(and, for the sequential scenarios, every sample, so a reader can recompute anything);
other rows carry one value with its unit. Counts say, per scenario, how many intents were
sent and answered; a run with an unanswered intent fails.
"""

from __future__ import annotations

import importlib.metadata
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec

from benchmarks.stats import summarize


class Figure(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One measured figure: a latency distribution or a single value."""

    key: str
    """Stable name, e.g. ``ours.place`` or ``throughput.workers1.rate``."""
    scenario: str
    what: str
    """What it measures, in words."""
    unit: str
    n: int | None = None
    mean: float | None = None
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    max: float | None = None
    value: float | None = None
    samples: list[float] | None = None


class Count(msgspec.Struct, kw_only=True):
    """Intents one scenario sent and how many were answered, with their statuses."""

    sent: int = 0
    answered: int = 0
    statuses: dict[str, int] = msgspec.field(default_factory=dict)

    def add(self, part: Mapping[str, Any]) -> None:
        """Add a load generator's ``sent``, ``answered`` and ``statuses``."""
        self.sent += int(part.get("sent", 0))
        self.answered += int(part.get("answered", 0))
        merged = Counter(self.statuses)
        merged.update({str(k): int(v) for k, v in part.get("statuses", {}).items()})
        self.statuses = dict(merged)

    @property
    def unanswered(self) -> int:
        """Intents sent that got no answer."""
        return self.sent - self.answered


class Target(msgspec.Struct, kw_only=True):
    """One target (issues 5 and 14), judged against this run's figures."""

    target: str
    figure: str
    goal: str
    met: bool | None
    """None when the figure it needs was not measured."""
    absolute: str = ""
    """Issue 5's absolute goal and whether this run meets it: information, not judged."""


class Results(msgspec.Struct, kw_only=True):
    """Everything a run writes to ``results.json``."""

    mode: str
    machine: dict[str, Any]
    started_at: str
    duration_s: float = 0.0
    sizes: dict[str, Any] = msgspec.field(default_factory=dict)
    figures: list[Figure] = msgspec.field(default_factory=list)
    counts: dict[str, Count] = msgspec.field(default_factory=dict)
    curves: dict[str, list[list[float]]] = msgspec.field(default_factory=dict)
    """Series for the plot: ``[x, y, ...]`` points (throughput vs workers, vs bound; RSS)."""
    targets: list[Target] = msgspec.field(default_factory=list)
    notes: list[str] = msgspec.field(default_factory=list)
    """What a reader needs to read the figures right (added by the harness)."""
    error: str | None = None

    def latency(
        self,
        key: str,
        scenario: str,
        what: str,
        samples: Sequence[float],
        *,
        keep_samples: bool = True,
        unit: str = "ms",
    ) -> Figure:
        """Add a latency row (percentiles, and the samples unless told not to)."""
        summary = summarize(samples)
        figure = Figure(
            key=key,
            scenario=scenario,
            what=what,
            unit=unit,
            n=summary.n,
            mean=_finite(summary.mean),
            p50=_finite(summary.p50),
            p95=_finite(summary.p95),
            p99=_finite(summary.p99),
            max=_finite(summary.max),
            samples=[round(s, 4) for s in samples] if keep_samples else None,
        )
        self.figures.append(figure)
        return figure

    def scalar(self, key: str, scenario: str, what: str, value: float, unit: str) -> Figure:
        """Add a single-value row."""
        figure = Figure(key=key, scenario=scenario, what=what, unit=unit, value=_finite(value))
        self.figures.append(figure)
        return figure

    def figure(self, key: str) -> Figure | None:
        """The row with this key, if it was measured."""
        return next((f for f in self.figures if f.key == key), None)

    def count(self, scenario: str) -> Count:
        """The counts of a scenario (created empty on first use)."""
        return self.counts.setdefault(scenario, Count())

    @property
    def unanswered(self) -> int:
        """Intents sent in any scenario that got no answer."""
        return sum(c.unanswered for c in self.counts.values())


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 4)


def machine_facts() -> dict[str, Any]:
    """Where the figures come from: cores, Python, platform, Redis, load at the start."""
    redis_version = "unknown"
    binary = shutil.which("redis-server")
    if binary is not None:
        version = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=10, check=False
        )
        redis_version = version.stdout.strip()
    try:
        loop = f"uvloop {importlib.metadata.version('uvloop')}"
    except importlib.metadata.PackageNotFoundError:
        loop = "asyncio"
    return {
        "cores": os.cpu_count(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "processor": _cpu_model(),
        "redis_server": redis_version,
        "event_loop": loop,
        "load_average_at_start": list(os.getloadavg()),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def standard_notes(results: Results) -> list[str]:
    """How to read this run: what shares the machine, how busy it was, how much was sent."""
    cores = results.machine.get("cores") or 1
    start = results.machine.get("load_average_at_start", [0.0])[0]
    end = os.getloadavg()[0]
    results.machine["load_average_at_end"] = list(os.getloadavg())
    z = results.sizes
    notes = [
        f"Every process (redis-server, the simulator, the workers, the load generators) runs "
        f"on this machine's {cores} cores: throughput figures are the whole stack's here. "
        "`throughput.workers1.ceiling` is what one worker's own CPU cost per intent would "
        "allow with a core to itself.",
        "Sequential latencies are from one caller with one intent in flight; the queue's "
        "share (`ours.queue.*`) is end to end minus the worker's own `result.broker_ms`.",
        f"Sizes: floor {z.get('floor_samples')} round trips; ours, direct "
        f"{z.get('sequential_samples')} of each intent kind after "
        f"{z.get('sequential_warmup')} warm-up rounds; arq default "
        f"{z.get('arq_default_samples')}, arq 1 ms {z.get('arq_fast_samples')} of each; "
        f"throughput windows of {z.get('window_s')} s; backlog {z.get('backlog')}; soak "
        f"{z.get('soak')} intents; peers {z.get('peer_samples')} places after "
        f"{z.get('peer_warmup')} warm-up; burst {z.get('burst')} orders, sustained 3 windows, "
        f"{z.get('per_order')} orders for requests per order, at "
        f"{_limit_text(z.get('rate_limit'))}.",
    ]
    if max(start, end) > cores / 2:
        notes.append(
            f"The machine was busy (1-minute load average {start:.2f} at the start, "
            f"{end:.2f} at the end, on {cores} cores): expect noisy figures."
        )
    return notes


def _limit_text(limit: object) -> str:
    if isinstance(limit, list | tuple) and len(limit) == 2:
        return (
            f"{limit[0]} requests / {limit[1]:g} s (scaled down; the worker's budget set to match)"
        )
    return "the gateway's 200 requests / 60 s with the worker's default budget"


def now_iso() -> str:
    """The current UTC time, to the second."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def write_json(results: Results, path: Path) -> None:
    """``results.json``: every figure, sample, count and target.

    One figure per line (samples included), so the file diffs and greps well without
    spreading tens of thousands of samples over as many lines.
    """
    fields: dict[str, Any] = msgspec.to_builtins(results)
    lines = ["{"]
    for index, (name, value) in enumerate(fields.items()):
        comma = "," if index < len(fields) - 1 else ""
        if name in ("figures", "targets") and value:
            rows = ",\n".join(f"  {msgspec.json.encode(row).decode()}" for row in value)
            lines.append(f' "{name}": [\n{rows}\n ]{comma}')
        else:
            lines.append(f' "{name}": {msgspec.json.encode(value).decode()}{comma}')
    lines.append("}")
    path.write_text("\n".join(lines) + "\n")


def _number(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if unit == "count":
        text = f"{value:,.0f}"
    elif unit in ("ms", "µs", "MB", "%", "ratio", "s", "requests"):
        text = f"{value:.2f}" if abs(value) < 1000 else f"{value:,.0f}"
    else:
        text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"
    return text


def markdown(results: Results) -> str:
    """``results.md``: machine, figures, targets and counts as Markdown tables."""
    m = results.machine
    load = ", ".join(f"{x:.2f}" for x in m.get("load_average_at_start", []))
    lines = [
        f"# Benchmark results ({results.mode} run)",
        "",
        f"Run {results.started_at}, {results.duration_s:.0f} s, by `python -m benchmarks"
        f"{' --quick' if results.mode == 'quick' else ''}`. "
        f"Machine: {m.get('cores')} cores ({m.get('processor')}), Python {m.get('python')}, "
        f"{m.get('platform')}, {m.get('redis_server')}, {m.get('event_loop')}; "
        f"load average at start {load}.",
        "",
        "## Figures",
        "",
        "| figure | what it measures | unit | n | p50 | p95 | p99 | max | value |",
        "|---|---|---|--:|--:|--:|--:|--:|--:|",
    ]
    for f in results.figures:
        cells = [
            f"`{f.key}`",
            f.what,
            f.unit,
            "-" if f.n is None else str(f.n),
            _number(f.p50, f.unit),
            _number(f.p95, f.unit),
            _number(f.p99, f.unit),
            _number(f.max, f.unit),
            _number(f.value, f.unit),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Targets",
        "",
        "Ratios to figures of this run (benchmarks/README.md says why and how each factor "
        "was chosen); the last column is issue 5's absolute target, for information only.",
        "",
        "| target | figure | goal | met | issue 5's absolute target |",
        "|---|---|---|---|---|",
    ]
    for t in results.targets:
        verdict = "not measured" if t.met is None else ("met" if t.met else "**not met**")
        lines.append(f"| {t.target} | {t.figure} | {t.goal} | {verdict} | {t.absolute} |")
    lines += [
        "",
        "## Intents sent and answered",
        "",
        "| scenario | sent | answered | statuses |",
        "|---|--:|--:|---|",
    ]
    for scenario, c in results.counts.items():
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(c.statuses.items()))
        lines.append(f"| {scenario} | {c.sent} | {c.answered} | {statuses} |")
    if results.notes:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in results.notes]
    if results.error:
        lines += ["", "## Error", "", "```", results.error, "```"]
    return "\n".join(lines) + "\n"


def write_markdown(results: Results, path: Path) -> None:
    """Write ``results.md``."""
    path.write_text(markdown(results))
