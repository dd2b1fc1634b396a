"""pytest plugin: run your strategy's tests against the real stack.

Installed with the package (a ``pytest11`` entry point), it gives any test suite:

- ``redis_server``: a private ``redis-server`` on a free port (one per test session),
- ``broker_sim``: the broker simulator on a free port (one per session), with helpers to
  read its orders and stats and to set faults,
- ``order_worker``: one worker process for the test, against both (Redis flushed and the
  simulator reset first, so each test starts clean),
- ``order_client``: an ``OrderClient`` connected to it, for account 12345678,
- ``replay_intents(path)``: replay a recorded JSON-lines file through ``order_client``.

Every process binds 127.0.0.1 only; nothing reaches the internet.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import redis

from producer.client import OrderClient
from producer.contract import OrderResult
from producer.replay import read_intents, replay
from worker.local.stack import Process, RedisServer, start_simulator, start_worker, worker_env

DEMO_ACCOUNT = 12345678


@dataclass
class BrokerSim:
    """A running simulator and the introspection endpoints tests need."""

    url: str
    process: Process

    def _request(self, method: str, path: str, body: object | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 (a local http:// URL of our own)
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return json.loads(response.read() or b"null")

    def orders(self) -> list[dict[str, Any]]:
        """Every order the simulator ever recorded (``GET /_sim/orders``)."""
        answer: list[dict[str, Any]] = self._request("GET", "/_sim/orders")
        return answer

    def stats(self) -> dict[str, Any]:
        """Its counters (``GET /_sim/stats``)."""
        answer: dict[str, Any] = self._request("GET", "/_sim/stats")
        return answer

    def faults(self, **settings: object) -> dict[str, Any]:
        """Change fault settings at run time (``POST /_sim/faults``); returns them all."""
        answer: dict[str, Any] = self._request("POST", "/_sim/faults", settings)
        return answer

    def reset(self) -> None:
        """Clear orders, stats and faults (``POST /_sim/reset``)."""
        self._request("POST", "/_sim/reset", {})

    def price(self, symbol: str) -> float:
        """The symbol's last price (``GET /_sim/price``)."""
        return float(self._request("GET", f"/_sim/price?symbol={symbol}")["lastPrice"])

    def move_price(self, symbol: str, price: float, volume: int = 1) -> dict[str, Any]:
        """Print a trade at ``price``: working orders meet the new market (fills, stops,
        bracket legs), and the hubs push what changed (``POST /_sim/price``)."""
        answer: dict[str, Any] = self._request(
            "POST", "/_sim/price", {"symbol": symbol, "price": price, "volume": volume}
        )
        return answer

    def hubs(self) -> dict[str, Any]:
        """The open hub connections and their counters (``GET /_sim/hubs``)."""
        answer: dict[str, Any] = self._request("GET", "/_sim/hubs")
        return answer

    def drop_hubs(self, hub: str | None = None) -> int:
        """Close every hub connection (or every one of ``hub``) now; how many."""
        body = {} if hub is None else {"hub": hub}
        return int(self._request("POST", "/_sim/hubs/drop", body)["dropped"])


@dataclass
class WorkerStack:
    """What ``order_worker`` started, and a way to start more workers on the same stack."""

    redis_url: str
    broker: BrokerSim
    log_dir: Path
    workers: list[Process]

    def start_worker(self, name: str, env: Mapping[str, str] | None = None) -> Process:
        """One more worker process (stopped with the others at the end of the test)."""
        process = start_worker(self.log_dir, worker_env(self.redis_url, self.broker.url, name, env))
        self.workers.append(process)
        return process


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A private redis-server for the test session."""
    server = RedisServer(tmp_path_factory.mktemp("redis-logs")).start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def broker_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerSim]:
    """The ProjectX Gateway simulator for the test session (no rate limit, fixed seed)."""
    process, url = start_simulator(
        tmp_path_factory.mktemp("sim-logs"), ["--no-rate-limit", "--seed", "7"]
    )
    try:
        yield BrokerSim(url, process)
    finally:
        process.stop()


@pytest.fixture
def clean_stack(redis_server: RedisServer, broker_sim: BrokerSim) -> None:
    """Redis flushed and the simulator reset, so a test starts from nothing."""
    client = redis.Redis.from_url(redis_server.url)
    try:
        client.flushall()
    finally:
        client.close()
    broker_sim.reset()


@pytest.fixture
def order_worker(
    redis_server: RedisServer,
    broker_sim: BrokerSim,
    clean_stack: None,
    tmp_path: Path,
) -> Iterator[WorkerStack]:
    """One worker process against the session's Redis and simulator, for this test."""
    stack = WorkerStack(redis_server.url, broker_sim, tmp_path / "logs", [])
    stack.start_worker("test-worker-1")
    try:
        yield stack
    finally:
        for process in stack.workers:
            process.stop()


@pytest_asyncio.fixture
async def order_client(order_worker: WorkerStack) -> AsyncIterator[OrderClient]:
    """An OrderClient on the test's stack, for account 12345678."""
    async with OrderClient(order_worker.redis_url, account_id=DEMO_ACCOUNT) as client:
        yield client


@pytest.fixture
def replay_intents(
    order_client: OrderClient,
) -> Callable[..., Awaitable[list[OrderResult | None]]]:
    """``await replay_intents(path, keep_ids=False)``: the results of a recorded file."""

    async def run(
        path: str | Path, *, keep_ids: bool = False, timeout: float = 10.0
    ) -> list[OrderResult | None]:
        return await replay(
            order_client, list(read_intents(path)), keep_ids=keep_ids, timeout=timeout
        )

    return run
