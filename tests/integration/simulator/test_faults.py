"""Fault injection changed at run time: errors, commit-then-fail, stalls, latency."""

import asyncio
import time
from typing import Any

import aiohttp
import pytest

from tests.integration.simulator.helpers import (
    Client,
    bearer,
    order,
    sim_orders,
    sim_stats,
)

PLACE = "/api/Order/place"


async def set_faults(client: Client, **settings: object) -> dict[str, Any]:
    response = await client.post("/_sim/faults", json=settings)
    assert response.status == 200, await response.text()
    config: dict[str, Any] = await response.json()
    return config


async def test_error_rate_answers_500_without_effect(client: Client, token: str) -> None:
    await set_faults(client, error_rate=1.0)
    for _ in range(3):
        response = await client.post(PLACE, json=order(), headers=bearer(token))
        assert response.status == 500
    assert await sim_orders(client) == []
    assert (await sim_stats(client))["errors_injected"] == 3


async def test_faults_can_be_scoped_to_endpoints(client: Client, token: str) -> None:
    await set_faults(client, error_rate=1.0, endpoints=[PLACE])
    assert (await client.post(PLACE, json=order(), headers=bearer(token))).status == 500
    search = {"onlyActiveAccounts": True}
    response = await client.post("/api/Account/search", json=search, headers=bearer(token))
    assert response.status == 200


async def test_commit_then_fail_takes_effect_then_fails(client: Client, token: str) -> None:
    await set_faults(client, commit_then_fail_rate=1.0)
    seen = []
    for i in range(8):
        try:
            response = await client.post(
                PLACE, json=order(customTag=f"c{i}"), headers=bearer(token)
            )
        except aiohttp.ServerDisconnectedError:
            seen.append("dropped")
        else:
            assert response.status == 500
            assert await response.read() == b""
            seen.append("500")
    assert set(seen) == {"dropped", "500"}  # the seed gives both within 8 requests
    orders = await sim_orders(client)
    assert [o["customTag"] for o in orders] == [f"c{i}" for i in range(8)]
    assert all(o["status"] == 2 for o in orders)
    assert (await sim_stats(client))["commit_then_fail"] == 8


async def test_commit_then_fail_spares_reads(client: Client, token: str) -> None:
    await set_faults(client, commit_then_fail_rate=1.0)
    body = {"accountId": 12345678}
    response = await client.post("/api/Order/searchOpen", json=body, headers=bearer(token))
    assert response.status == 200


async def test_stall_takes_effect_after_the_client_gave_up(client: Client, token: str) -> None:
    await set_faults(client, stall_rate=1.0, stall_ms=800)
    with pytest.raises(TimeoutError):
        await client.post(
            PLACE,
            json=order(customTag="late"),
            headers=bearer(token),
            timeout=aiohttp.ClientTimeout(total=0.1),
        )
    assert await sim_orders(client) == []  # held, not processed yet
    await asyncio.sleep(1.0)  # the stall ends 0.8 s after the request was sent
    assert [o["customTag"] for o in await sim_orders(client)] == ["late"]
    assert (await sim_stats(client))["stalls"] == 1


async def test_latency_delays_every_request(client: Client, token: str) -> None:
    await set_faults(client, latency_ms=150)
    started = time.monotonic()
    response = await client.post(
        "/api/Order/searchOpen", json={"accountId": 12345678}, headers=bearer(token)
    )
    assert response.status == 200
    assert time.monotonic() - started >= 0.15
