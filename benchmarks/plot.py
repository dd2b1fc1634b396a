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
    ("streaq.place", "streaq: place", "-."),
    ("taskiq.place", "taskiq 1 ms polling: place", "-."),
)


def write_plot(results: Results, path: Path) -> None:
    """Six panels: latency CDFs, intents/s vs workers, vs in-flight bound, RSS over time,
    the burst's answers over time and the sustained run's requests at the simulator."""
    fig, axes = plt.subplots(3, 2, figsize=(13, 13))
    _latency_cdfs(axes[0][0], results)
    _vs_workers(axes[0][1], results)
    _vs_bound(axes[1][0], results)
    _rss(axes[1][1], results)
    _burst(axes[2][0], results)
    _sustained(axes[2][1], results)
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
    if ax.get_legend_handles_labels()[0]:
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
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)


def _burst(ax: Any, results: Results) -> None:
    points = results.curves.get("burst_answers", [])
    if points:
        ax.step([0.0] + [p[0] for p in points], [0] + [p[1] for p in points], where="post")
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("seconds since the orders were submitted")
    ax.set_ylabel("orders answered")
    ax.set_title("Burst into the rate limit")
    ax.grid(True, alpha=0.3)


def _sustained(ax: Any, results: Results) -> None:
    points = results.curves.get("sustained_requests", [])
    limit = results.curves.get("sustained_limit", [])
    if points and limit:
        window, requests = limit[0]
        times = [p[0] for p in points]
        totals = [p[1] for p in points]
        ax.plot(times, totals, label="requests at the simulator")
        # The most the limit allows by each time: one full window per window elapsed.
        steps = int(max(times) // window) + 2
        ax.step(
            [k * window for k in range(steps)],
            [(k + 1) * requests for k in range(steps)],
            "k--",
            where="post",
            label=f"limit: {requests:.0f} per {window:g} s window",
        )
        ax.legend(fontsize=8)
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("seconds since the first order")
    ax.set_ylabel("requests (running total)")
    ax.set_title("Orders offered at the limit's rate")
    ax.grid(True, alpha=0.3)
