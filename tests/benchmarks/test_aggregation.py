"""Smoke test of ``python -m benchmarks.aggregation --quick``: it runs, both sides agree.

No timing is asserted (the machine may be busy); the run itself checks that ours and
pandas produce the same history bars, so a run that completes compared one job.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_quick_aggregation_run_prints_every_figure() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "benchmarks.aggregation", "--quick"],
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
        cwd=Path(__file__).parents[2],
    )
    assert run.returncode == 0, run.stderr[-5000:]
    rows = [line for line in run.stdout.splitlines() if line.startswith("| live")]
    assert len(rows) == 4
    rows = [line for line in run.stdout.splitlines() if line.startswith("| history")]
    assert len(rows) == 5
