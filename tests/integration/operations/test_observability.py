"""Metrics, health and logs of a running worker process, as an operator sees them."""

from __future__ import annotations

import asyncio
import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import cast

import redis

from producer import OrderClient
from tests.faults.harness import Fleet
from worker.local.pytest_plugin import DEMO_ACCOUNT
from worker.local.stack import free_port


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (local)
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def sample(metrics: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 if absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    pattern = rf"^{re.escape(name)}(?:\{{([^}}]*)\}})? ([0-9.e+-]+)$"
    for line in metrics.splitlines():
        match = re.match(pattern, line)
        if match and ",".join(sorted((match.group(1) or "").split(","))) == wanted:
            return float(match.group(2))
    return 0.0


async def test_metrics_move_and_health_is_reported(fleet: Callable[..., Fleet]) -> None:
    port = free_port()
    stack = fleet(env={"METRICS_PORT": str(port)})
    stack.start_worker("w1")
    base = f"http://127.0.0.1:{port}"
    _, before = await asyncio.to_thread(get, f"{base}/metrics")
    async with OrderClient(stack.redis_url, account_id=DEMO_ACCOUNT) as client:
        results = await asyncio.gather(*(client.place_order("MNQ", "BUY", 1) for _ in range(25)))
        await client.place_order("XYZ", "BUY", 1)
    assert {r.status for r in results} == {"accepted"}
    status, after = await asyncio.to_thread(get, f"{base}/metrics")
    assert status == 200
    accepted = ("orderworker_intents_total", {"kind": "place", "status": "accepted"})
    assert sample(before, accepted[0], **accepted[1]) == 0
    assert sample(after, accepted[0], **accepted[1]) == 25
    assert sample(after, "orderworker_intents_total", kind="place", status="rejected") == 1
    places = sample(
        after, "orderworker_broker_requests_total", endpoint="/api/Order/place", status="200"
    )
    assert places == 25
    assert sample(after, "orderworker_end_to_end_ms_count", kind="place") == 26
    assert "orderworker_in_flight " in after
    health_status, health = await asyncio.to_thread(get, f"{base}/healthz")
    assert health_status == 200
    assert json.loads(health)["healthy"] is True


async def test_a_worker_that_lost_the_broker_reports_unhealthy(fleet: Callable[..., Fleet]) -> None:
    port = free_port()
    stack = fleet(env={"METRICS_PORT": str(port), "HEALTH_MAX_OUTAGE_S": "1", "WARM_SYMBOLS": ""})
    dead_broker = f"http://127.0.0.1:{free_port()}"
    stack.start_worker("w1", broker_url=dead_broker)
    async with OrderClient(stack.redis_url, account_id=DEMO_ACCOUNT) as client:
        # Intents keep it asking the broker (and failing) for a few seconds.
        asks = [
            asyncio.create_task(client.place_order("MNQ", "BUY", 1, timeout=4)) for _ in range(3)
        ]
        await asyncio.sleep(2.5)
        status, body = await asyncio.to_thread(get, f"http://127.0.0.1:{port}/healthz")
        results = await asyncio.gather(*asks)
    assert status == 503
    assert "broker failing" in json.loads(body)["reason"]
    assert {r.status for r in results} == {"expired"}  # never sent; none lost


async def test_logs_are_json_lines_with_one_line_per_outcome_and_no_secrets(
    fleet: Callable[..., Fleet],
) -> None:
    stack = fleet()
    worker = stack.start_worker("w1")
    async with OrderClient(stack.redis_url, account_id=DEMO_ACCOUNT) as client:
        placed = await client.place_order("ES", "SELL", 2, custom_tag="logs")
    await asyncio.sleep(0.2)
    lines = [json.loads(line) for line in worker.output().splitlines() if line.startswith("{")]
    outcome = [line for line in lines if line.get("request_id") == placed.request_id]
    assert len(outcome) == 1
    assert outcome[0]["status"] == "accepted"
    assert outcome[0]["order_id"] == placed.order_id
    assert outcome[0]["logger"] == "worker.outcome"
    assert {"queued_ms", "broker_ms", "worker_ms", "attempts"} <= outcome[0].keys()
    assert "demo-key" not in worker.output()  # the API key of the local stack
    shared = redis.Redis.from_url(stack.redis_url)
    try:
        token = json.loads(cast(bytes, shared.get("ow:token")))["value"]
    finally:
        shared.close()
    assert token not in worker.output()
