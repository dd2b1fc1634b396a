"""Scenario 8: network faults between a worker and Redis, and between a worker and the
broker: dropped, black-holed, delayed and reset connections, through a proxy."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import pytest

from tests.faults.harness import Fleet, audit, drive_while
from tests.faults.proxy import FaultyProxy, Mode


@pytest.fixture
def proxies() -> Iterator[list[FaultyProxy]]:
    made: list[FaultyProxy] = []
    yield made
    for proxy in made:
        proxy.stop()


def through(proxies: list[FaultyProxy], url: str) -> FaultyProxy:
    parts = urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    proxy = FaultyProxy(parts.hostname, parts.port).start()
    proxies.append(proxy)
    return proxy


async def faults(proxy: FaultyProxy, plan: list[tuple[Mode, float, float]]) -> None:
    """Apply (mode, delay_ms, seconds) steps, then let traffic flow again."""
    await asyncio.sleep(0.5)
    for mode, delay_ms, seconds in plan:
        proxy.set(mode, delay_ms)
        await asyncio.sleep(seconds)
        proxy.set("pass")
        await asyncio.sleep(0.3)


async def test_network_faults_to_redis_and_to_the_broker_lose_and_duplicate_nothing(
    fleet: Callable[..., Fleet], proxies: list[FaultyProxy]
) -> None:
    stack = fleet(sim_args=["--latency-ms", "5"])
    to_redis = through(proxies, stack.redis_url)
    to_broker = through(proxies, stack.broker_url)
    # w1 reaches both through the proxies; w2 is direct and picks up what w1 cannot finish.
    stack.start_worker(
        "w1",
        redis_url=f"redis://{to_redis.url_host}/0",
        broker_url=f"http://{to_broker.url_host}",
    )
    stack.start_worker("w2")
    broker_plan: list[tuple[Mode, float, float]] = [
        ("delay", 300, 1.0),
        ("blackhole", 0, 1.5),
        ("reset", 0, 0.5),
        ("drop", 0, 0.5),
    ]
    redis_plan: list[tuple[Mode, float, float]] = [
        ("reset", 0, 0.5),
        ("delay", 200, 1.0),
        ("blackhole", 0, 2.5),
        ("drop", 0, 0.5),
    ]
    chaos = asyncio.gather(faults(to_broker, broker_plan), faults(to_redis, redis_plan))
    run = await drive_while(stack.redis_url, chaos, producers=3, places=150, batch=5)
    report = audit("network faults", run, stack.broker.orders())
    assert all(process.alive for process in stack.workers.values())
    assert report.outcomes["place accepted"] >= report.intents * 0.6
