"""``order-worker status``, run as an operator runs it, against real worker processes."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis

from ow_core.keys import Keys
from producer import OrderClient
from producer.contract import encode_intent
from tests.faults.harness import Fleet
from tests.integration.pipeline.test_replay_and_cli import run_cli
from worker.local.pytest_plugin import WorkerStack

STATUS_KEYS = {
    "at",
    "prefix",
    "intents",
    "dead_letters",
    "workers",
    "halt",
    "budget_pause_ms",
}


def status_json(redis_url: str) -> dict[str, Any]:
    done = run_cli("status", "--json", redis_url=redis_url)
    assert done.returncode == 0, done.stderr
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


async def until(check: Callable[[], Any], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"{what}: not after {timeout} s"
        await asyncio.sleep(0.05)


async def test_status_shows_workers_pending_entries_dead_letters_and_the_halt(
    order_worker: WorkerStack, order_client: OrderClient
) -> None:
    for _ in range(3):
        assert (await order_client.place_order("MNQ", "BUY", 1)).status == "accepted"
    redis = aioredis.Redis.from_url(order_worker.redis_url)
    try:
        # Two entries taken by a consumer with no heartbeat: a worker that died holding them.
        # One transaction, so the live worker's blocked read cannot take them first.
        async with redis.pipeline(transaction=True) as pipe:
            for _ in range(2):
                pipe.xadd("ow:intents", encode_intent(order_client.make_place("ES", "BUY", 1)))
            pipe.xreadgroup("ow:workers", "ghost", {"ow:intents": ">"}, count=2)
            await pipe.execute()
        await redis.xadd("ow:intents", {"v": "1", "d": "not json"})
        await until(lambda: redis.xlen("ow:dead"), "dead letter")

        async def counted() -> bool:
            beat = await redis.get("ow:worker:test-worker-1")
            return beat is not None and json.loads(beat)["handled"] >= 3

        await until(counted, "heartbeat with the handled count")
    finally:
        await redis.aclose()
    for halt in (["--reason", "news at 8:30"], ["--account", "12345679"]):
        halted = run_cli("halt", *halt, redis_url=order_worker.redis_url)
        assert halted.returncode == 0, halted.stderr

    shown = run_cli("status", redis_url=order_worker.redis_url)
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    print(text)
    assert "ow:intents: 6 on stream, 0 not yet delivered, 2 pending" in text
    assert "ow:dead: 1 dead letter  (order-worker dead-letters list)" in text
    assert "ALL ACCOUNTS HALTED: 'news at 8:30' by " in text
    assert "\n          account 12345679 HALTED: 'halted by an operator'" in text
    assert "budget    not paused" in text
    assert "workers alive: 1" in text
    workers, consumers_table = text.split("consumers of ow:workers")
    [worker_row] = [line for line in workers.splitlines() if line.startswith("  test-worker-1 ")]
    assert str(order_worker.workers[0].popen.pid) in worker_row.split()
    assert worker_row.split()[-1] == "ok"
    [ghost_row] = [line for line in consumers_table.splitlines() if line.startswith("  ghost ")]
    assert ghost_row.split()[1] == "2"
    assert "NONE: its pending entries will be reclaimed" in ghost_row

    snapshot = status_json(order_worker.redis_url)
    assert set(snapshot) == STATUS_KEYS
    intents = snapshot["intents"]
    assert set(intents) == {
        "stream", "length", "group", "group_exists", "lag", "entries_read",
        "last_delivered_id", "pending", "consumers",
    }  # fmt: skip
    assert (intents["length"], intents["lag"], intents["pending"]) == (6, 0, 2)
    assert intents["entries_read"] == 6
    consumers = {c["name"]: c for c in intents["consumers"]}
    assert consumers["ghost"]["pending"] == 2
    assert consumers["ghost"]["alive"] is False
    assert consumers["ghost"]["oldest_pending_idle_ms"] >= 0
    assert consumers["test-worker-1"]["alive"] is True
    assert consumers["test-worker-1"]["oldest_pending_idle_ms"] is None
    [worker] = snapshot["workers"]
    assert set(worker) == {
        "name", "host", "pid", "started_at", "heartbeat_age_ms", "in_flight", "handled",
        "healthy", "problem",
    }  # fmt: skip
    assert (worker["healthy"], worker["problem"]) == (True, "")
    assert worker["name"] == "test-worker-1"
    assert worker["pid"] == order_worker.workers[0].popen.pid
    assert worker["handled"] >= 3
    assert worker["heartbeat_age_ms"] < 10_000
    assert snapshot["dead_letters"] == {"stream": "ow:dead", "length": 1}
    assert snapshot["halt"]["all_accounts"]["reason"] == "news at 8:30"
    assert list(snapshot["halt"]["accounts"]) == ["12345679"]
    assert snapshot["budget_pause_ms"] is None


async def test_status_shows_the_backlog_while_no_worker_runs(order_worker: WorkerStack) -> None:
    order_worker.workers[0].stop()
    redis = aioredis.Redis.from_url(order_worker.redis_url)
    client = OrderClient(order_worker.redis_url, account_id=12345678)
    try:
        for _ in range(3):
            await redis.xadd("ow:intents", encode_intent(client.make_place("MNQ", "SELL", 1)))
        # A stopped worker leaves its consumer behind when it has nothing pending.
        await redis.xgroup_createconsumer("ow:intents", "ow:workers", "old-worker")
        await redis.set(Keys().budget_pause("sim-user"), b"429", px=30_000)
    finally:
        await redis.aclose()

    snapshot = status_json(order_worker.redis_url)
    assert snapshot["workers"] == []
    assert (snapshot["intents"]["length"], snapshot["intents"]["lag"]) == (3, 3)
    assert 0 < snapshot["budget_pause_ms"] <= 30_000
    assert snapshot["halt"] == {"all_accounts": None, "accounts": {}}

    text = run_cli("status", redis_url=order_worker.redis_url).stdout
    assert "3 on stream, 3 not yet delivered, 0 pending" in text
    assert "workers alive: 0" in text
    assert "(1 stopped consumers with nothing pending not shown)" in text
    assert "halt      off (new orders allowed)" in text
    assert "budget    PAUSED for " in text


def test_status_before_any_worker_started(redis_server: Any, clean_stack: None) -> None:
    done = run_cli("status", redis_url=redis_server.url)
    assert done.returncode == 0, done.stderr
    assert "ow:intents: 0 on stream, no consumer group yet" in done.stdout
    snapshot = status_json(redis_server.url)
    assert snapshot["intents"]["group_exists"] is False
    assert snapshot["intents"]["consumers"] == []


def test_status_says_when_redis_is_unreachable() -> None:
    done = run_cli("status", redis_url="redis://127.0.0.1:1/0")
    assert done.returncode == 2
    assert "cannot reach Redis at redis://127.0.0.1:1/0" in done.stderr
    assert done.stdout == ""


class Watch:
    """``order-worker status --watch`` as an operator runs it; its output read as it comes,
    so a test waits for what it needs to see rather than for a fixed time (the process
    takes a while to start on a busy machine)."""

    def __init__(self, redis_url: str, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "worker", "status", "--watch", "0.2", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={"REDIS_URL": redis_url, "PATH": "/usr/bin:/bin"},
        )
        self._lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.append(line)

    @property
    def out(self) -> str:
        return "".join(self._lines)

    def wait_for(self, text: str, count: int = 1, timeout: float = 30.0) -> None:
        """Until ``text`` has been printed ``count`` times."""
        deadline = time.monotonic() + timeout
        while self.out.count(text) < count:
            assert self.process.poll() is None, self.process.communicate()[1]
            assert time.monotonic() < deadline, f"no {count} x {text!r} in {self.out!r}"
            time.sleep(0.05)

    def interrupt(self) -> str:
        """Ctrl-C; everything it printed. It must end cleanly."""
        self.process.send_signal(signal.SIGINT)
        _, err = self.process.communicate(timeout=15)
        self._reader.join(timeout=5)
        assert self.process.returncode == 0, err
        return self.out


def test_watch_refreshes_until_ctrl_c(order_worker: WorkerStack) -> None:
    table = Watch(order_worker.redis_url)
    lines = Watch(order_worker.redis_url, "--json")
    table.wait_for("order-worker status ", count=3)
    lines.wait_for('"workers"', count=3)
    out = table.interrupt()
    assert out.count("order-worker status ") >= 3
    assert "(every 0.2 s, Ctrl-C to stop)" in out
    assert "\x1b[" not in out  # not a terminal: no screen clearing
    out = lines.interrupt()
    snapshots = [json.loads(line) for line in out.splitlines()]
    assert len(snapshots) >= 3
    assert all(s["workers"][0]["name"] == "test-worker-1" for s in snapshots)


async def test_watch_rides_out_a_redis_restart(fleet: Callable[..., Fleet]) -> None:
    stack = fleet()
    watching = Watch(stack.redis_url)
    try:
        watching.wait_for("order-worker status ")
        stack.redis.kill()
        watching.wait_for("Redis unreachable at")
        stack.redis.start()
        up = watching.out.count("order-worker status ")
        watching.wait_for("order-worker status ", count=up + 1)
    finally:
        out = watching.interrupt()
    down = out.index("Redis unreachable at redis://127.0.0.1:")
    assert "order-worker status " in out[:down]
    assert "order-worker status " in out[down:]  # and back once Redis was


def test_health_says_whether_the_workers_are_alive_and_healthy(order_worker: WorkerStack) -> None:
    env = {"REDIS_URL": order_worker.redis_url, "PATH": "/usr/bin:/bin"}

    def health(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "worker", "health", *args],
            capture_output=True,
            text=True,
            timeout=30,
            env=env,
            check=False,
        )

    mine = health()  # this host's workers: the test's own
    assert mine.returncode == 0, mine.stderr
    assert "test-worker-1: healthy" in mine.stdout
    assert health("--all").returncode == 0
    missing = health("--name", "no-such-worker")
    assert missing.returncode == 1
    assert "no live worker to check" in missing.stderr
