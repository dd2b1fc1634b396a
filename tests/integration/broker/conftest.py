"""Fixtures of the broker client's contract tests: clients on real HTTP to simulators.

The session simulator (``broker_sim``, from the project's pytest plugin) is reset before
and after every test here, so faults set by one test never reach another. Simulators that
need other start-up flags (credentials, token lifetime, rate limits) are started once per
session and stopped at the end.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any, Protocol

import aiohttp
import pytest

from tests.integration.broker.helpers import API_KEY, CLOCKS, USERNAME, FakeClock, RecordingSleep
from worker.broker.client import GatewayClient
from worker.broker.retry import Sleep
from worker.broker.transport import make_session
from worker.local.pytest_plugin import BrokerSim
from worker.local.stack import start_simulator


class MakeClient(Protocol):
    """``make_client(url=None, **options)``: a GatewayClient on the test's session."""

    def __call__(
        self,
        url: str | None = None,
        *,
        username: str = USERNAME,
        api_key: str = API_KEY,
        sleep: Sleep | None = None,
        **options: Any,
    ) -> GatewayClient: ...


@pytest.fixture(autouse=True)
def clean_sim(broker_sim: BrokerSim) -> Iterator[None]:
    """The session simulator starts each test fresh and is left without faults."""
    broker_sim.reset()
    yield
    broker_sim.reset()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """The one aiohttp session a worker keeps, closed after the test."""
    session = make_session()
    try:
        yield session
    finally:
        await session.close()


@pytest.fixture
def sleep() -> RecordingSleep:
    """The fake sleep of the test's clients: no real waiting, every wait recorded."""
    return RecordingSleep()


@pytest.fixture
def make_client(
    http: aiohttp.ClientSession, broker_sim: BrokerSim, sleep: RecordingSleep
) -> MakeClient:
    """Clients on the session simulator unless given another URL; not logged in yet.

    They wait with the test's ``sleep`` fixture unless given their own.
    """
    shared_sleep = sleep

    def make(
        url: str | None = None,
        *,
        username: str = USERNAME,
        api_key: str = API_KEY,
        sleep: Sleep | None = None,
        **options: Any,
    ) -> GatewayClient:
        clock = options.pop("clock", None) or FakeClock()
        gateway = GatewayClient(
            http,
            url or broker_sim.url,
            username=username,
            api_key=api_key,
            sleep=shared_sleep if sleep is None else sleep,
            clock=clock,
            **options,
        )
        if isinstance(clock, FakeClock):
            CLOCKS[gateway] = clock
        return gateway

    return make


@pytest.fixture
async def client(make_client: MakeClient) -> GatewayClient:
    """A client logged in to the session simulator."""
    gateway = make_client()
    await gateway.auth.login()
    return gateway


def _dedicated(factory: pytest.TempPathFactory, name: str, flags: list[str]) -> Iterator[BrokerSim]:
    process, url = start_simulator(factory.mktemp(name), flags, name=name)
    try:
        yield BrokerSim(url, process)
    finally:
        process.stop()


@pytest.fixture(scope="session")
def auth_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerSim]:
    """A simulator that accepts only USERNAME with API_KEY."""
    yield from _dedicated(
        tmp_path_factory,
        "sim-auth",
        ["--no-rate-limit", "--username", USERNAME, "--api-key", API_KEY],
    )


@pytest.fixture(scope="session")
def short_ttl_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerSim]:
    """A simulator whose tokens live one second."""
    yield from _dedicated(tmp_path_factory, "sim-ttl", ["--no-rate-limit", "--token-ttl", "1"])


@pytest.fixture(scope="session")
def dead_token_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerSim]:
    """A simulator whose tokens expire as they are issued: every Bearer request gets 401."""
    yield from _dedicated(
        tmp_path_factory, "sim-dead-token", ["--no-rate-limit", "--token-ttl", "1e-9"]
    )


@pytest.fixture(scope="session")
def rate_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerSim]:
    """A simulator allowing 3 requests per login per minute, with no Retry-After."""
    yield from _dedicated(tmp_path_factory, "sim-rate", ["--rate-limit", "3/60"])


@pytest.fixture(scope="session")
def retry_after_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerSim]:
    """Like ``rate_sim``, but its 429s carry ``Retry-After: 2``."""
    yield from _dedicated(
        tmp_path_factory, "sim-retry-after", ["--rate-limit", "3/60", "--retry-after", "2"]
    )
