"""HTTP 429 past the configured rate limit."""

import dataclasses

from simulator.faults import FaultConfig
from simulator.ratelimit import RateLimit
from tests.integration.simulator.conftest import MakeClient
from tests.integration.simulator.helpers import CONFIG, Client, bearer, login, sim_stats

SEARCH = "/api/Account/search"
ACTIVE = {"onlyActiveAccounts": True}
LIMITED = dataclasses.replace(
    CONFIG, faults=FaultConfig(rate_limit=RateLimit(requests=3, seconds=60))
)


async def statuses(client: Client, token: str, n: int) -> list[int]:
    return [
        (await client.post(SEARCH, json=ACTIVE, headers=bearer(token))).status for _ in range(n)
    ]


async def test_429_past_the_limit_with_an_empty_body_and_no_retry_after(
    make_client: MakeClient,
) -> None:
    client = await make_client(LIMITED)
    token = await login(client)  # the login is the first of the 3
    assert await statuses(client, token, 3) == [200, 200, 429]
    response = await client.post(SEARCH, json=ACTIVE, headers=bearer(token))
    assert response.status == 429
    assert "Retry-After" not in response.headers
    assert await response.read() == b""
    stats = await sim_stats(client)
    assert (stats["rate_limited"], stats["requests"]) == (2, 5)


async def test_retry_after_when_configured(make_client: MakeClient) -> None:
    client = await make_client(dataclasses.replace(LIMITED, retry_after_s=7))
    token = await login(client)
    assert await statuses(client, token, 3) == [200, 200, 429]
    response = await client.post(SEARCH, json=ACTIVE, headers=bearer(token))
    assert response.headers["Retry-After"] == "7"


async def test_budget_is_per_login_and_logins_count_under_their_user(
    make_client: MakeClient,
) -> None:
    client = await make_client(LIMITED)
    alice = await login(client, "alice")
    assert await statuses(client, alice, 3) == [200, 200, 429]
    bob = await login(client, "bob")
    assert await statuses(client, bob, 2) == [200, 200]
    body = {"userName": "alice", "apiKey": "k"}
    assert (await client.post("/api/Auth/loginKey", json=body)).status == 429
    # Introspection is never limited.
    assert all([(await client.get("/_sim/stats")).status == 200 for _ in range(10)])


async def test_rate_limit_can_be_set_at_run_time(client: Client) -> None:
    token = await login(client)
    assert await statuses(client, token, 5) == [200] * 5
    changed = await client.post("/_sim/faults", json={"rate_limit": {"requests": 2, "seconds": 60}})
    assert (await changed.json())["rate_limit"] == {"requests": 2, "seconds": 60}
    # With no limit nothing was counted, so the new budget starts empty.
    assert await statuses(client, token, 3) == [200, 200, 429]
