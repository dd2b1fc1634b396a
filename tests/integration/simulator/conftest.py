"""Fixtures: the simulator app served over real HTTP on 127.0.0.1."""

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp.test_utils import TestClient, TestServer

from simulator.app import create_app
from simulator.config import SimConfig
from tests.integration.simulator.helpers import CONFIG, Client, login

MakeClient = Callable[[SimConfig], Awaitable[Client]]


@pytest.fixture
async def make_client() -> AsyncIterator[MakeClient]:
    """Start simulators with the given configs; all are stopped after the test."""
    clients: list[Client] = []

    async def make(config: SimConfig) -> Client:
        client: Client = TestClient(TestServer(create_app(config), host="127.0.0.1"))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
async def client(make_client: MakeClient) -> Client:
    """A simulator with the tests' default config."""
    return await make_client(CONFIG)


@pytest.fixture
async def token(client: Client) -> str:
    """A token for user "demo" on `client`."""
    return await login(client)
