"""Record and replay, and the order-worker command line, run as a user runs them."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import redis.asyncio as aioredis

from producer import OrderClient, read_intents, record_stream
from worker.local.pytest_plugin import BrokerSim, WorkerStack


def run_cli(*args: str, redis_url: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "worker", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={"REDIS_URL": redis_url, "PATH": "/usr/bin:/bin"},
        check=False,
    )


async def test_recorded_intents_replay_as_new_orders_or_from_stored_results(
    order_worker: WorkerStack, order_client: OrderClient, broker_sim: BrokerSim, tmp_path: Path
) -> None:
    originals = [await order_client.place_order("MNQ", "BUY", 1) for _ in range(5)]
    redis = aioredis.Redis.from_url(order_worker.redis_url)
    try:
        recorded = await record_stream(redis, tmp_path / "run.jsonl")
    finally:
        await redis.aclose()
    assert recorded == 5
    assert [i.request_id for i in read_intents(tmp_path / "run.jsonl")] == [
        r.request_id for r in originals
    ]

    kept = run_cli(
        "replay",
        str(tmp_path / "run.jsonl"),
        "--keep-ids",
        "--json",
        redis_url=order_worker.redis_url,
    )
    assert kept.returncode == 0, kept.stderr
    kept_results = [json.loads(line) for line in kept.stdout.splitlines()]
    assert [r["order_id"] for r in kept_results] == [r.order_id for r in originals]
    assert len([o for o in broker_sim.orders() if o["parentOrderId"] is None]) == 5

    fresh = run_cli("replay", str(tmp_path / "run.jsonl"), redis_url=order_worker.redis_url)
    assert fresh.returncode == 0, fresh.stderr
    assert "replayed 5 intents: 5 accepted" in fresh.stderr
    assert len([o for o in broker_sim.orders() if o["parentOrderId"] is None]) == 10


def test_replay_names_the_bad_line_of_a_broken_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.jsonl"
    path.write_text('{"kind": "cancel"}\n')
    done = run_cli("replay", str(path), redis_url="redis://127.0.0.1:1/0")
    assert done.returncode == 2
    assert f"{path}:1: not an intent" in done.stderr


async def test_submit_from_the_shell_prints_the_result(order_worker: WorkerStack) -> None:
    done = run_cli(
        "submit", "place", "--account", "12345678", "--symbol", "ES", "--side", "SELL",
        "--quantity", "2", "--stop-loss-ticks", "8", "--take-profit-ticks", "16",
        redis_url=order_worker.redis_url,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "accepted"
    assert isinstance(result["order_id"], int)


def test_submit_refuses_a_bad_order_before_enqueueing_it() -> None:
    done = run_cli(
        "submit", "place", "--account", "12345678", "--symbol", "ES", "--side", "HOLD",
        "--quantity", "1", redis_url="redis://127.0.0.1:1/0",
    )  # fmt: skip
    assert done.returncode == 2
    assert "side must be BUY or SELL" in done.stderr


def test_every_command_has_help() -> None:
    from worker.ops.cli import parser

    commands = next(
        action.choices
        for action in parser()._actions
        if isinstance(action, argparse._SubParsersAction)
    )
    assert {"run", "demo", "status", "health", "halt", "dead-letters"} <= set(commands)
    for command in ([], *([name] for name in commands), ["dead-letters", "retry"]):
        done = run_cli(*command, "--help", redis_url="redis://127.0.0.1:1/0")
        assert done.returncode == 0, (command, done.stderr)
        assert "usage: order-worker" in done.stdout


def test_run_without_credentials_says_what_is_missing() -> None:
    done = run_cli("run", redis_url="redis://127.0.0.1:1/0")
    assert done.returncode == 2
    assert "PROJECTX_USERNAME and PROJECTX_API_KEY must be set" in done.stderr
