"""Smoke test of the benchmark harness: a ``--quick`` run completes and answers everything.

It asserts no timing (the figures are reported, never asserted: the machine may be busy);
it asserts that the run finishes, writes its three files, covers every scenario, and that
every intent sent in every scenario was answered.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

_SCENARIOS = (
    "1 floor",
    "2 ours",
    "3 direct",
    "4 arq",
    "5 throughput",
    "6 memory",
    "8 burst",
    "9 sustained",
    "10 requests",
    "12 market",
)
"""Every scenario but the peers, which a quick run skips unless they are installed."""


@pytest.mark.timeout(180)
def test_quick_run_completes_and_answers_every_intent(tmp_path: Path) -> None:
    out = tmp_path / "results"
    run = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=Path(__file__).parents[2],
    )
    assert run.returncode == 0, run.stderr[-5000:]
    for name in ("results.json", "results.md", "results.png"):
        assert (out / name).stat().st_size > 0, name

    results = msgspec.json.decode((out / "results.json").read_bytes())
    assert results["error"] is None
    counts: dict[str, dict[str, int]] = results["counts"]
    for prefix in _SCENARIOS:
        assert any(name.startswith(prefix) for name in counts), f"no counts for {prefix}"
    for name, count in counts.items():
        assert count["sent"] > 0, name
        assert count["answered"] == count["sent"], f"{name}: {count}"
    for peer in ("streaq", "taskiq"):
        measured = f"7 peers, {peer}" in counts
        noted = any(note.startswith(f"Peer {peer} not measured") for note in results["notes"])
        assert measured or noted, f"{peer}: neither measured nor said why not"
    assert {"cores", "python", "platform"} <= results["machine"].keys()
    assert all(figure["what"] for figure in results["figures"])
    markdown = (out / "results.md").read_text()
    assert "## Targets" in markdown
