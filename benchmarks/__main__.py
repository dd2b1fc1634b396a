"""``python -m benchmarks``: every scenario of issue 5 in one run, on a stack of its own.

Starts a private redis-server and the broker simulator on free ports, runs the six
scenarios (each with its own workers and load generators as separate processes, each
warmed up before it is measured), and writes ``results.json``, ``results.md`` and
``results.png`` to the output folder. Exits 1 if any intent went unanswered or a
scenario failed; figures that miss a target do not fail the run (they are reported).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from benchmarks.harness import FULL, QUICK, Bench, progress
from benchmarks.plot import write_plot
from benchmarks.report import (
    Results,
    machine_facts,
    now_iso,
    standard_notes,
    write_json,
    write_markdown,
)
from benchmarks.scenarios import SCENARIOS, run_all
from benchmarks.targets import evaluate

DEFAULT_OUT = Path(__file__).parent / "results"

_EPILOG = """\
scenarios, in order (names for --only):
  1 floor       bare Python XADD -> XREADGROUP -> XADD reply + XACK -> XREAD loop,
                one at a time and with as many in flight as the throughput runs
  2 ours        OrderClient -> Redis -> one worker -> simulator, one intent at a time
  3 direct      the same calls straight to the simulator on one aiohttp session
  4 arq         arq as a plain job queue: default settings, then 1 ms polling
  5 throughput  1 and 2 workers at zero broker latency; in-flight bounds at 20 ms
  6 soak        worker RSS draining a backlog, and over a long run
  7 peers       the same place through streaq and taskiq (skipped when not installed)
  8 burst       new orders at once into the gateway's 200 / 60 s, default budget
  9 sustained   orders offered at the limit's rate for 3 windows: requests per window
 10 requests    broker requests per new order, without and with a risk limit (from
                the mirror, and from REST with the user hub off)
 11 lifecycle   a fill at the simulator until events() yields it, through the user
                hub and the leader's mirror
 12 market      a price set at the simulator until 5 strategies' MarketFeed.quotes()
                yield it (10 symbols, 1,000 quotes/s), against one Redis stream hop

outputs (in --out): results.json (every figure, with samples), results.md (tables:
figures, targets met / not met, intents sent and answered), results.png (plots);
process logs of the latest run go to <out>/tmp/logs/, the taskiq peer's virtual
environment to <out>/tmp/venvs/. A quick run takes under a minute (a scaled-down rate
limit, no installs), a full one about ten.
Needs redis-server on PATH and the test extra installed (pip install -e '.[test]');
streaq comes with the bench extra (pip install -e '.[test,bench]').
"""


def _names(text: str) -> frozenset[str]:
    names = frozenset(part.strip() for part in text.split(",") if part.strip())
    known = {name for name, _, _ in SCENARIOS}
    if not names or not names <= known:
        raise argparse.ArgumentTypeError(
            f"expected names among {', '.join(sorted(known))}; got {text!r}"
        )
    return names


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Latency, throughput and memory of the order worker against the floor, "
        "direct broker calls, arq, streaq and taskiq, and its behaviour at the gateway's "
        "rate limit, in one run (issues 5 and 14).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small sample counts and a short soak (a smoke test; under a minute)",
    )
    parser.add_argument(
        "--only",
        type=_names,
        metavar="NAME,...",
        help=f"run only these scenarios ({', '.join(name for name, _, _ in SCENARIOS)}); "
        "targets that need the others show as not measured",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="folder for the results (default: benchmarks/results in the repository)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run everything; 0 when every intent was answered and every scenario completed."""
    args = _parser().parse_args(argv)
    sizes = QUICK if args.quick else FULL
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    # Logs of the latest run only: a full run's worker logs run to tens of MB.
    log_dir = out / "tmp" / "logs"
    shutil.rmtree(log_dir, ignore_errors=True)
    results = Results(
        mode="quick" if args.quick else "full",
        machine=machine_facts(),
        started_at=now_iso(),
        sizes=sizes.describe(),
    )
    progress(
        f"{results.mode} run of {len(SCENARIOS)} scenarios; results to {out}, logs to {log_dir}"
    )
    started = time.monotonic()
    try:
        with Bench.running(log_dir) as bench:
            run_all(bench, sizes, results, args.only)
    except Exception:
        results.error = traceback.format_exc()
        progress(f"failed:\n{results.error}")
    results.duration_s = time.monotonic() - started
    results.targets = evaluate(results)
    results.notes = [*standard_notes(results), *results.notes]
    write_json(results, out / "results.json")
    write_markdown(results, out / "results.md")
    write_plot(results, out / "results.png")
    missed = sum(1 for t in results.targets if t.met is False)
    progress(
        f"done in {results.duration_s:.0f} s: {len(results.figures)} figures, "
        f"{len(results.targets) - missed} of {len(results.targets)} targets met; "
        f"{out / 'results.md'}"
    )
    if results.unanswered:
        progress(f"{results.unanswered} intents went unanswered")
    return 1 if results.error is not None or results.unanswered else 0


if __name__ == "__main__":
    sys.exit(main())
