"""Shared helpers of the simulator's HTTP tests."""

from datetime import date
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from simulator.config import SimConfig
from simulator.faults import FaultConfig

Client = TestClient[web.Request, web.Application]

ACCOUNT = 12345678
MNQ = "CON.F.US.MNQ.Z25"  # the MNQ front month on TRADING_DATE
TRADING_DATE = date(2025, 11, 25)
# Deterministic, and without rate limiting unless a test asks for it.
CONFIG = SimConfig(seed=7, trading_date=TRADING_DATE, faults=FaultConfig(rate_limit=None))


async def login(client: Client, user: str = "demo", api_key: str = "demo-key") -> str:
    """A token for `user` (demo mode accepts any key)."""
    answer = await call(client, "/api/Auth/loginKey", None, {"userName": user, "apiKey": api_key})
    assert answer["success"] is True, answer
    token: str = answer["token"]
    return token


def bearer(token: str) -> dict[str, str]:
    """The Authorization header of a token."""
    return {"Authorization": f"Bearer {token}"}


async def call(client: Client, path: str, token: str | None, body: object = None) -> Any:
    """POST a gateway endpoint; asserts HTTP 200 and returns the decoded answer."""
    headers = bearer(token) if token is not None else {}
    response = await client.post(path, json=body, headers=headers)
    assert response.status == 200, (response.status, await response.text())
    return await response.json()


def order(**fields: object) -> dict[str, object]:
    """An Order/place body: a 1-lot MNQ market buy on ACCOUNT unless overridden."""
    return {"accountId": ACCOUNT, "contractId": MNQ, "type": 2, "side": 0, "size": 1, **fields}


async def sim_orders(client: Client) -> list[dict[str, Any]]:
    """GET /_sim/orders."""
    response = await client.get("/_sim/orders")
    assert response.status == 200
    orders: list[dict[str, Any]] = await response.json()
    return orders


async def sim_stats(client: Client) -> dict[str, Any]:
    """GET /_sim/stats."""
    response = await client.get("/_sim/stats")
    assert response.status == 200
    stats: dict[str, Any] = await response.json()
    return stats
