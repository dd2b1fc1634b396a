"""Issue 10's defects, each as a user met it, on real processes: hostile input straight onto
the stream, operators' slips, a wrong key, stops and interrupts, bad settings.

Each test names the defect it pins (the numbers are the issue's); the unit-level variants
of each class are in tests/unit/worker/test_hostile_entries.py and
tests/unit/producer/test_validation.py.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
import redis.asyncio as aioredis

from producer import InvalidConfig, InvalidOrder, OrderClient, QueueUnavailable
from producer.contract import DATA_FIELD, VERSION_FIELD
from tests.faults.harness import Fleet
from worker.local.pytest_plugin import DEMO_ACCOUNT
from worker.local.stack import RedisServer, free_port

REPO = Path(__file__).resolve().parents[2]


def raw_place(reply_to: str, **fields: Any) -> dict[bytes, bytes]:
    now = int(time.time() * 1000)
    intent = {
        "kind": "place",
        "request_id": f"raw-{uuid.uuid4().hex[:12]}",
        "reply_to": reply_to,
        "account_id": DEMO_ACCOUNT,
        "created_at": now,
        "deadline": now + 10_000,
        "symbol": "MNQ",
        "side": "BUY",
        "quantity": 1,
        **fields,
    }
    return {VERSION_FIELD: b"1", DATA_FIELD: msgspec.json.encode(intent)}


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 30) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "worker", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={"PATH": os.environ["PATH"], **(env or {})},
        check=False,
    )


# --- 1, 2, 4, 5: hostile entries on a real Redis ----------------------------------------


async def test_hostile_entries_never_reach_the_broker_and_never_vanish(
    fleet: Callable[..., Fleet],
) -> None:
    stack = fleet()
    stack.start_worker("w1")
    redis = aioredis.Redis.from_url(stack.redis_url)
    async with OrderClient(stack.redis_url, account_id=DEMO_ACCOUNT) as client:
        reply = client.reply_stream
        # 1: a good-til-time the worker cannot schedule, and 2: a reserved request ID.
        for refused in (
            {"order_type": "limit", "limit_price": 2.0, "cancel_after": 1e15},
            {"order_type": "limit", "limit_price": 2.0, "cancel_after": 1e300},
            {"request_id": "GTTX1:gtt"},
        ):
            with pytest.raises(InvalidOrder):
                client.make_place("MNQ", "BUY", 1, **refused)
            fields = raw_place(reply, **refused)
            request_id = msgspec.json.decode(fields[DATA_FIELD])["request_id"]
            await redis.xadd(client.keys.intents, fields)
            answer = await client.wait(request_id, 10)
            assert answer.status == "rejected", answer
            assert answer.error_code in ("invalid_cancel_after", "invalid_request_id")

        # 2 continued: the real GTTX1's timed cancel is sent and answered as such.
        placed = await client.place_order(
            "MNQ", "BUY", 1, order_type="limit", limit_price=15000.0, cancel_after=1,
            request_id="GTTX1",
        )  # fmt: skip
        timed = await client.result("GTTX1:gtt", timeout=10)
        assert timed is not None
        assert (timed.kind, timed.status, timed.order_state) == ("cancel", "accepted", "cancelled")
        assert placed.order_id is not None

        # 4: reply_to names an existing key that is not a stream (of several types).
        for kind in ("string", "hash", "list"):
            key = client.keys.reply(f"not-a-stream-{kind}")
            if kind == "string":
                await redis.set(key, "x")
            elif kind == "hash":
                await redis.hset(key, "a", "b")
            else:
                await redis.rpush(key, "x")
            await redis.xadd(client.keys.intents, raw_place(key))
            malformed = raw_place(key, quantity="many")
            await redis.xadd(client.keys.intents, malformed)
            assert await redis.type(key) == kind.encode()

        # 5: a result key holding something that is not a result of ours.
        await redis.set(client.keys.result("xyz"), "keepme")
        poisoned = await client.place_order("MNQ", "BUY", 1, request_id="xyz")
        assert poisoned.error_code == "key_conflict"

        async def settled() -> bool:
            summary = await redis.xpending(client.keys.intents, client.keys.group)
            return bool(summary["pending"] == 0 and await redis.xlen(client.keys.dead_letters) >= 7)

        deadline = time.monotonic() + 15
        while not await settled():
            assert time.monotonic() < deadline, "entries left pending"
            await asyncio.sleep(0.1)
    assert await redis.get(client.keys.result("xyz")) == b"keepme"
    dead = await redis.xlen(client.keys.dead_letters)
    await redis.aclose()
    # Only the real GTTX1 reached the broker; nothing was delivered again and again.
    orders = stack.broker.orders()
    assert [o["id"] for o in orders] == [placed.order_id]
    assert dead == 7  # 3 reply_to x 2 entries, and the poisoned result


# --- 3: the kill switch's account ---------------------------------------------------------


def test_halt_refuses_account_zero_and_negatives_and_says_what_it_halted(
    fleet: Callable[..., Fleet],
) -> None:
    stack = fleet()
    env = {"REDIS_URL": stack.redis_url}
    for bad in ("0", "-5", "abc"):
        done = cli("halt", "--account", bad, env=env)
        assert done.returncode == 2, done.stderr
        assert "broker account ID" in done.stderr
        assert "halted" not in done.stdout
    done = cli("halt", "--account", str(DEMO_ACCOUNT), env=env)
    assert done.returncode == 0
    assert f"no new orders for account {DEMO_ACCOUNT}" in done.stdout
    assert cli("resume", "--account", "0", env=env).returncode == 2
    keys = [k for k in stack_keys(stack) if k.startswith("ow:halt")]
    assert keys == [f"ow:halt:{DEMO_ACCOUNT}"]


def stack_keys(stack: Fleet) -> list[str]:
    import redis as sync_redis

    client = sync_redis.Redis.from_url(stack.redis_url)
    try:
        return sorted(k.decode() for k in client.scan_iter("ow:*"))
    finally:
        client.close()


# --- 6: a routine rolling restart loses no answer -----------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_a_stopped_worker_hands_back_what_it_read_ahead(
    fleet: Callable[..., Fleet], signum: signal.Signals
) -> None:
    # The idle reclaim limit is long (10 s): only the hand-back can save these answers. The
    # drain is short (1 s), so some places are cut off mid-call and handed back too.
    stack = fleet(
        env={
            "WORKER_CLAIM_IDLE_MS": "10000",
            "WORKER_DRAIN_TIMEOUT_S": "1",
            "BROKER_TIMEOUT_MS": "3000",
        }
    )
    for name in ("w1", "w2"):
        stack.start_worker(name)
    stack.broker.faults(latency_ms=1000)
    async with OrderClient(stack.redis_url, account_id=DEMO_ACCOUNT) as client:
        ids = [
            await client.submit(client.make_place("MNQ", "SELL", 1, timeout=9)) for _ in range(300)
        ]
        await asyncio.sleep(0.5)
        stopped = stack.workers["w1"]
        stopped.popen.send_signal(signum)
        assert await asyncio.to_thread(stopped.popen.wait, 15) == 0
        results = await asyncio.gather(*(client.wait(i, 12) for i in ids))
    assert "handed" in stopped.output()
    assert [r.status for r in results] == ["accepted"] * 300
    assert len(stack.broker.orders()) == 300


# --- 7: a wrong API key ---------------------------------------------------------------------


async def test_a_wrong_api_key_is_one_outage_not_a_login_stampede(
    fleet: Callable[..., Fleet],
) -> None:
    stack = fleet(sim_args=["--api-key", "right"])
    stack.start_worker("w1")  # demo-key: wrong
    async with OrderClient(stack.redis_url, account_id=DEMO_ACCOUNT) as client:
        results = await asyncio.gather(
            *(client.place_order("MNQ", "BUY", 1, timeout=5) for _ in range(300))
        )
    assert {(r.status, r.error_code, r.order_exists) for r in results} == {
        ("failed", "broker_auth_failed", False)
    }
    logins = stack.broker.stats()["endpoints"].get("/api/Auth/loginKey", 0)
    assert 1 <= logins <= 8, logins  # one per back-off step, not one per intent
    health = cli("health", "--name", "w1", env={"REDIS_URL": stack.redis_url})
    assert health.returncode == 1
    assert "the broker refuses the login" in health.stdout
    log = stack.workers["w1"].output()
    assert log.count("no order can be sent until a login works") == 1


# --- 8: stopping with Redis gone --------------------------------------------------------------


def test_a_worker_stops_within_its_bound_with_redis_gone(fleet: Callable[..., Fleet]) -> None:
    stack = fleet()
    worker = stack.start_worker("w1")
    stack.redis.kill()
    time.sleep(0.5)
    started = time.monotonic()
    worker.popen.send_signal(signal.SIGTERM)
    code = worker.popen.wait(30)
    took = time.monotonic() - started
    # WORKER_DRAIN_TIMEOUT_S is 5 here; Docker's grace period is 30 s.
    assert took < 15, took
    assert code == 0, worker.output()[-2000:]
    assert "Traceback" not in worker.output()


# --- 9: the demo, interrupted, leaves nothing running ------------------------------------------


def _processes_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


@pytest.mark.parametrize(
    ("signum", "after"), [(signal.SIGINT, 1.5), (signal.SIGTERM, 4.0)], ids=["SIGINT", "SIGTERM"]
)
def test_the_demo_interrupted_leaves_no_process_behind(
    tmp_path: Path, signum: signal.Signals, after: float
) -> None:
    marker = f"OW_DEMO_TEST={uuid.uuid4().hex}"
    name, value = marker.split("=")
    demo = subprocess.Popen(
        [sys.executable, "-m", "worker", "demo", "--logs", str(tmp_path)],
        env={**os.environ, name: value},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(after)
    demo.send_signal(signum)
    demo.wait(60)
    deadline = time.monotonic() + 10
    while _processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _processes_with(marker) == []


# --- 10: the client's errors are the client's ----------------------------------------------


async def test_open_with_redis_down_raises_queue_unavailable_and_opens_later(
    tmp_path: Path,
) -> None:
    server = RedisServer(tmp_path)
    client = OrderClient(server.url, account_id=DEMO_ACCOUNT)
    with pytest.raises(QueueUnavailable, match="cannot reach Redis"):
        await client.open()
    server.start()
    try:
        await client.open()
        request_id = await client.submit(client.make_place("MNQ", "BUY", 1))
        assert request_id
        server.kill()
        with pytest.raises(QueueUnavailable):
            await client.submit(client.make_place("MNQ", "BUY", 1, timeout=0.5))
        with pytest.raises(QueueUnavailable):
            await client.result(request_id)
        await client.close()
    finally:
        server.cleanup()


# --- 11, 12 and the rough edges: one line for every bad setting ------------------------------


def _run_with(**env: str) -> Any:
    base = {
        "PROJECTX_BASE_URL": "http://127.0.0.1:9",
        "PROJECTX_USERNAME": "u",
        "PROJECTX_API_KEY": "k",
        "LOG_FORMAT": "text",
    }
    return cli("run", env={**base, **env}, timeout=60)


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"REDIS_URL": "redis://:pw@127.0.0.1:99999/0"}, "REDIS_URL"),
        ({"REDIS_URL": "redis://127.0.0.1:6379/abc"}, "database must be a number"),
        ({"METRICS_PORT": "99999"}, "METRICS_PORT must be 1 to 65535"),
    ],
    ids=["port 99999", "database abc", "metrics port 99999"],
)
def test_a_bad_setting_is_one_line_and_exit_2(env: dict[str, str], says: str) -> None:
    done = _run_with(**env)
    assert done.returncode == 2
    assert says in done.stderr
    assert "Traceback" not in done.stderr
    assert "pw" not in done.stderr


def test_a_metrics_port_in_use_is_one_line_and_exit_2(fleet: Callable[..., Fleet]) -> None:
    stack = fleet()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _run_with(REDIS_URL=stack.redis_url, METRICS_PORT=str(port), WORKER_NAME="m1")
    assert done.returncode == 2
    assert f"METRICS_PORT {port}" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_risk_file_limit_below_one_is_refused(tmp_path: Path) -> None:
    risk = tmp_path / "risk.toml"
    risk.write_text("[default]\nmax_order_size = -5\n")
    done = _run_with(RISK_CONFIG=str(risk))
    assert done.returncode == 2
    assert "RISK_CONFIG" in done.stderr
    assert ">= 1" in done.stderr


def test_a_misspelt_variable_is_warned_about(fleet: Callable[..., Fleet]) -> None:
    stack = fleet()
    process = subprocess.Popen(
        [sys.executable, "-m", "worker", "run"],
        env={
            "PATH": os.environ["PATH"],
            "REDIS_URL": stack.redis_url,
            "PROJECTX_BASE_URL": stack.broker_url,
            "PROJECTX_USERNAME": "u",
            "PROJECTX_API_KEY": "k",
            "WORKER_NAME": "speller",
            "RISK_MAX_POSITON": "4",
            "LOG_FORMAT": "text",
        },
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    first = process.stderr.readline()
    process.send_signal(signal.SIGTERM)
    process.wait(30)
    assert "RISK_MAX_POSITON (did you mean RISK_MAX_POSITION?) is not a setting" in first


def test_client_settings_that_cannot_work_are_refused_at_once() -> None:
    with pytest.raises(InvalidConfig):
        OrderClient("redis://127.0.0.1:99999/0")
    with pytest.raises(InvalidOrder) as timeout:
        OrderClient(timeout=float("inf"))
    assert timeout.value.code == "invalid_timeout"
    client = OrderClient(account_id=DEMO_ACCOUNT)
    with pytest.raises(InvalidOrder) as empty:
        client.make_place("MNQ", "BUY", 1, request_id="")
    assert empty.value.code == "invalid_request_id"
    with pytest.raises(InvalidOrder) as long_tag:
        client.make_place("MNQ", "BUY", 1, custom_tag="t" * 64)
    assert long_tag.value.code == "invalid_custom_tag"


def test_commands_that_need_redis_say_so_when_it_is_down() -> None:
    down = {"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    done = cli("contract", "show", "MNQ", env=down)
    assert done.returncode == 2
    assert "cannot reach Redis" in done.stderr
    bad = cli("status", "--redis-url", "redis://127.0.0.1:99999/0")
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr


def test_status_watch_started_while_redis_is_down_shows_it_and_carries_on(
    tmp_path: Path,
) -> None:
    server = RedisServer(tmp_path)
    watch = subprocess.Popen(
        [sys.executable, "-m", "worker", "status", "--watch", "0.2"],
        env={"PATH": os.environ["PATH"], "REDIS_URL": server.url},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.5)
        assert watch.poll() is None  # still watching
        server.start()
        time.sleep(1.5)
    finally:
        watch.send_signal(signal.SIGINT)
        out, _ = watch.communicate(timeout=15)
        server.cleanup()
    assert "Redis unreachable at" in out
    assert "order-worker status " in out.split("Redis unreachable at")[-1]
