"""The /_sim endpoints: faults, stats, orders and reset."""

from tests.integration.simulator.helpers import (
    Client,
    bearer,
    call,
    order,
    sim_orders,
    sim_stats,
)

DEFAULT_FAULTS = {
    "latency_ms": 0.0,
    "jitter_ms": 0.0,
    "error_rate": 0.0,
    "commit_then_fail_rate": 0.0,
    "stall_rate": 0.0,
    "stall_ms": 0.0,
    "rate_limit": None,  # the tests' start-up config
    "endpoints": None,
    "max_fill_size": None,
    "hub_delay_ms": 0.0,
    "hub_refuse": False,
    "hub_user_wrap": "none",
}


async def test_get_and_merge_faults(client: Client) -> None:
    assert await (await client.get("/_sim/faults")).json() == DEFAULT_FAULTS
    response = await client.post("/_sim/faults", json={"error_rate": 0.25, "stall_ms": 10})
    assert response.status == 200
    merged = {**DEFAULT_FAULTS, "error_rate": 0.25, "stall_ms": 10.0}
    assert await response.json() == merged
    assert await (await client.get("/_sim/faults")).json() == merged


async def test_bad_fault_settings_are_refused_and_change_nothing(client: Client) -> None:
    for body, message in [
        ({"nope": 1}, "Object contains unknown field `nope`"),
        ({"error_rate": 2}, "Expected `float` <= 1.0 - at `$.error_rate`"),
        ({"stall_ms": -5}, "Expected `float` >= 0.0 - at `$.stall_ms`"),
        ([1, 2], "Expected `object`, got `array`"),
    ]:
        response = await client.post("/_sim/faults", json=body)
        assert response.status == 400
        assert await response.json() == {"error": message}
    assert await (await client.get("/_sim/faults")).json() == DEFAULT_FAULTS


async def test_sim_orders_lists_every_recorded_order(client: Client, token: str) -> None:
    await call(client, "/api/Order/place", token, order(customTag="a", size=0))
    await call(client, "/api/Order/place", token, order(stopLossBracket={"ticks": -8, "type": 4}))
    rejected, entry, stop = await sim_orders(client)
    assert (rejected["status"], rejected["customTag"]) == (5, "a")
    assert (entry["status"], stop["parentOrderId"]) == (2, entry["id"])
    assert set(stop) >= {
        "id", "accountId", "contractId", "side", "size", "status", "customTag", "type",
        "limitPrice", "stopPrice", "filledPrice", "parentOrderId", "creationTimestamp",
    }  # fmt: skip


async def test_reset_clears_state_but_keeps_tokens(client: Client, token: str) -> None:
    await call(client, "/api/Order/place", token, order(customTag="once"))
    await client.post("/_sim/faults", json={"latency_ms": 5})
    assert (await sim_stats(client))["requests"] == 2

    response = await client.post("/_sim/reset")
    assert response.status == 200

    assert await sim_orders(client) == []
    assert await (await client.get("/_sim/faults")).json() == DEFAULT_FAULTS
    stats = await sim_stats(client)
    assert stats == {
        "requests": 0,
        "rate_limited": 0,
        "errors_injected": 0,
        "commit_then_fail": 0,
        "stalls": 0,
        "endpoints": {},
        "logins": 0,
        "validations": 0,
    }
    # The token still works, the tag is free again and IDs are not reused.
    again = await call(client, "/api/Order/place", token, order(customTag="once"))
    assert again["orderId"] == 1002
    response = await client.post(
        "/api/Position/searchOpen", json={"accountId": 12345678}, headers=bearer(token)
    )
    [position] = (await response.json())["positions"]
    assert position["size"] == 1  # the position from before the reset is gone
