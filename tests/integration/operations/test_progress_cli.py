"""Long commands show a progress bar on stderr (a line per tenth when not on a terminal)."""

from __future__ import annotations

from pathlib import Path

from producer import OrderClient
from producer.replay import IntentLog
from tests.integration.pipeline.test_replay_and_cli import run_cli
from worker.local.pytest_plugin import WorkerStack


async def test_replay_shows_progress(order_worker: WorkerStack, tmp_path: Path) -> None:
    path = tmp_path / "intents.jsonl"
    log = IntentLog(path)
    client = OrderClient(order_worker.redis_url, account_id=12345678)
    for _ in range(5):
        log.append(client.make_place("MNQ", "BUY", 1))
    log.close()

    done = run_cli("replay", str(path), redis_url=order_worker.redis_url)
    assert done.returncode == 0, done.stderr
    bars = [line for line in done.stderr.splitlines() if line.startswith("replay: answered [")]
    assert len(bars) == 5
    assert bars[-1] == f"replay: answered [{'#' * 30}] 5/5"
    assert "replayed 5 intents: 5 accepted" in done.stderr


def test_demo_shows_progress(tmp_path: Path) -> None:
    done = run_cli(
        "demo", "--orders", "20", "--workers", "1", "--logs", str(tmp_path), redis_url="",
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    bars = [line for line in done.stderr.splitlines() if line.startswith("  placed [")]
    assert bars == [f"  placed [{'#' * 15}{'.' * 15}] 10/20", f"  placed [{'#' * 30}] 20/20"]
