"""``results.png``: latency CDFs, throughput vs workers and vs the in-flight bound, RSS.

Drawn with matplotlib's Agg backend (no display needed) from ``Results`` alone, so a
plot can be redrawn from a saved ``results.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

from benchmarks.report import Results
from benchmarks.stats import cdf

# (figure key, legend label, line style)
_CDF_LINES: Final = (
    ("floor.rtt", "floor (bare stream round trip)", "-"),
    ("ours.place", "ours: place", "-"),
    ("ours.modify", "ours: modify", ":"),
    ("ours.cancel", "ours: cancel", "--"),
    ("direct.place", "direct: place", "-"),
    ("arq_1ms.place", "arq 1 ms polling: place", "-"),
)


def write_plot(results: Results, path: Path) -> None:
    """Four panels: latency CDFs, intents/s vs workers, vs in-flight bound, RSS over time."""
    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    _latency_cdfs(axes[0][0], results)
    _vs_workers(axes[0][1], results)
    _vs_bound(axes[1][0], results)
    _rss(axes[1][1], results)
    m = results.machine
    fig.suptitle(
        f"order-worker benchmarks ({results.mode}, {results.started_at}; "
        f"{m.get('cores')} cores, Python {m.get('python')})"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _latency_cdfs(ax: Any, results: Results) -> None:
    for key, label, style in _CDF_LINES:
        figure = results.figure(key)
        if figure is None or not figure.samples:
            continue
        xs, ys = cdf(figure.samples)
        ax.plot(xs, ys, style, label=f"{label} (p50 {figure.p50:.2f} ms)")
    ax.set_xscale("log")
    ax.set_xlabel("end-to-end latency, ms (log)")
    ax.set_ylabel("share of intents at or below")
    ax.set_title("Sequential latency, zero broker latency")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")


def _vs_workers(ax: Any, results: Results) -> None:
    points = results.curves.get("throughput_vs_workers", [])
    if points:
        workers = [p[0] for p in points]
        rates = [p[1] for p in points]
        bars = ax.bar([str(int(w)) for w in workers], rates, color="tab:blue")
        ax.bar_label(bars, labels=[f"{r:,.0f}" for r in rates])
    ax.set_xlabel("worker processes")
    ax.set_ylabel("intents / s")
    ax.set_title("Throughput, zero broker latency")
    ax.grid(True, axis="y", alpha=0.3)


def _vs_bound(ax: Any, results: Results) -> None:
    points = results.curves.get("throughput_vs_bound", [])
    if points:
        bounds = [p[0] for p in points]
        ax.plot(bounds, [p[1] for p in points], "o-", label="measured")
        ax.plot(bounds, [p[2] for p in points], "k--", label="bound / latency")
        ax.plot(bounds, [0.8 * p[2] for p in points], ":", color="grey", label="80 % of that")
        ax.set_xticks(bounds, [str(int(b)) for b in bounds])
        ax.set_xlim(left=0)
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=8)
    ax.set_xlabel("WORKER_MAX_IN_FLIGHT (one worker)")
    ax.set_ylabel("intents / s")
    ax.set_title("Throughput vs in-flight bound, 20 ms broker latency")
    ax.grid(True, alpha=0.3)


def _rss(ax: Any, results: Results) -> None:
    for key, label in (("rss_backlog", "draining a backlog"), ("rss_soak", "soak")):
        points = results.curves.get(key, [])
        if points:
            ax.plot([p[0] for p in points], [p[1] for p in points], label=label)
    ax.set_ylim(bottom=0)  # from zero, so a flat line looks flat
    ax.set_xlabel("seconds since sampling began")
    ax.set_ylabel("worker RSS, MiB")
    ax.set_title("Worker memory")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
