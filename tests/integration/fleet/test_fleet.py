"""Several worker processes acting as one careful client: one rate budget, one token, risk
limits and the kill switch, against one real Redis and the simulator."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import redis

from producer import OrderClient, OrderResult
from tests.faults.harness import Fleet
from worker.local.pytest_plugin import DEMO_ACCOUNT

OTHER_ACCOUNT = 12345679


def cli(fleet: Fleet, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "worker", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={"REDIS_URL": fleet.redis_url, "PATH": "/usr/bin:/bin"},
        check=True,
    )


async def burst(fleet: Fleet, count: int, timeout: float) -> list[OrderResult]:
    async with OrderClient(fleet.redis_url, account_id=DEMO_ACCOUNT, timeout=timeout + 5) as client:
        ids = [
            await client.submit(client.make_place("MES", "BUY", 1, timeout=timeout))
            for _ in range(count)
        ]
        return list(await asyncio.gather(*(client.wait(r) for r in ids)))


async def test_the_fleet_stays_within_the_brokers_rate_limit(fleet: Callable[..., Fleet]) -> None:
    """Thousands of intents, three workers, a limit of 40 requests per 4 s at the broker."""
    budgeted = fleet(sim_args=["--rate-limit", "40/4"], env={"PROJECTX_RATE_LIMIT": "40/4"})
    for name in ("w1", "w2", "w3"):
        budgeted.start_worker(name)
    results = await burst(budgeted, 2000, timeout=3.0)

    outcomes = Counter(r.status for r in results)
    assert budgeted.broker.stats()["rate_limited"] == 0
    assert outcomes["accepted"] >= 10  # the burst went out, then the refill
    # What could not be sent in time expired by its deadline rather than queueing for ever.
    assert outcomes["accepted"] + outcomes["expired"] == 2000
    assert any(r.error_code == "rate_budget" for r in results)

    unbudgeted = fleet(sim_args=["--rate-limit", "40/4"], env={"PROJECTX_RATE_LIMIT": "off"})
    for name in ("w1", "w2", "w3"):
        unbudgeted.start_worker(name)
    await burst(unbudgeted, 300, timeout=3.0)
    # The same load without the budget hits the broker's limit: the test can fail.
    assert unbudgeted.broker.stats()["rate_limited"] > 0


async def test_one_login_for_the_fleet_across_token_expiry_and_a_401(
    fleet: Callable[..., Fleet],
) -> None:
    stack = fleet(sim_args=["--token-ttl", "3"])
    for name in ("w1", "w2", "w3"):
        stack.start_worker(name)
    async with OrderClient(stack.redis_url, account_id=DEMO_ACCOUNT) as client:
        started = time.monotonic()
        statuses = []
        while time.monotonic() - started < 7:  # two token lifetimes and more
            batch = await asyncio.gather(*(client.place_order("MNQ", "BUY", 1) for _ in range(6)))
            statuses += [r.status for r in batch]
            await asyncio.sleep(0.1)
        stats = stack.broker.stats()
        assert set(statuses) == {"accepted"}
        assert stats["logins"] == 1
        assert stats["validations"] >= 2

        # The broker forgets the fleet's token: every worker meets a 401, one logs in.
        shared = redis.Redis.from_url(stack.redis_url)
        try:
            token = json.loads(shared.get("ow:token") or b"{}")["value"]  # type: ignore[arg-type]
        finally:
            shared.close()
        logout = urllib.request.Request(  # noqa: S310 (our own local simulator)
            f"{stack.broker_url}/api/Auth/logout",
            data=b"{}",
            method="POST",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        await asyncio.to_thread(lambda: urllib.request.urlopen(logout, timeout=5).close())  # noqa: S310
        after = await asyncio.gather(*(client.place_order("ES", "SELL", 1) for _ in range(30)))
        assert {r.status for r in after} == {"accepted"}
        assert stack.broker.stats()["logins"] == 2


async def test_risk_breaches_are_rejected_without_a_broker_call(
    fleet: Callable[..., Fleet], tmp_path: Path
) -> None:
    config = tmp_path / "risk.toml"
    config.write_text(
        f"""
[default]
max_order_size = 5
allowed_symbols = ["MNQ", "ES"]

[accounts.{DEMO_ACCOUNT}]
max_order_size = 2
max_position = 3

[accounts.{OTHER_ACCOUNT}]
max_new_orders_per_minute = 3
"""
    )
    stack = fleet(env={"RISK_CONFIG": str(config)})
    stack.start_worker("w1")
    async with OrderClient(stack.redis_url, account_id=DEMO_ACCOUNT) as client:
        too_big = await client.place_order("MNQ", "BUY", 3)
        not_allowed = await client.place_order("NQ", "BUY", 1)
        first = await client.place_order("MNQ", "BUY", 2)
        over_position = await client.place_order("MNQ", "BUY", 2)
        other_way = await client.place_order("MNQ", "SELL", 2)
        resting = await client.place_order("ES", "BUY", 1, order_type="limit", limit_price=4000.0)
        assert resting.order_id is not None
        bigger = await client.modify_order(resting.order_id, quantity=4)
        rates = [
            await client.place_order("ES", "BUY", 4, account_id=OTHER_ACCOUNT) for _ in range(4)
        ]
    assert (too_big.status, too_big.error_code) == ("rejected", "risk_max_order_size")
    assert (not_allowed.status, not_allowed.error_code) == ("rejected", "risk_symbol_not_allowed")
    assert first.status == "accepted"
    assert (over_position.status, over_position.error_code) == ("rejected", "risk_max_position")
    assert other_way.status == "accepted"
    assert (bigger.status, bigger.error_code) == ("rejected", "risk_max_order_size")
    assert [r.status for r in rates] == ["accepted"] * 3 + ["rejected"]
    assert rates[-1].error_code == "risk_order_rate"
    # Only the orders that passed reached the broker.
    places = stack.broker.stats()["endpoints"]["/api/Order/place"]
    assert places == 2 + 1 + 3
    assert "/api/Order/modify" not in stack.broker.stats()["endpoints"]


async def test_halt_stops_new_orders_within_a_second_while_cancels_pass(
    fleet: Callable[..., Fleet],
) -> None:
    stack = fleet()
    for name in ("w1", "w2"):
        stack.start_worker(name)
    async with OrderClient(stack.redis_url, account_id=DEMO_ACCOUNT) as client:
        resting = await client.place_order("MNQ", "BUY", 1, order_type="limit", limit_price=15000.0)
        assert resting.order_id is not None

        shown = cli(stack, "halt", "--reason", "fire drill").stdout
        # From the moment the switch is in Redis (the command has returned), not from the
        # command's own start-up, which a busy machine can make take seconds.
        halted_at = time.monotonic()
        refused = await client.place_order("MNQ", "BUY", 1)
        took = time.monotonic() - halted_at
        cancelled = await client.cancel_order(resting.order_id)

        # The switch survives a worker restart: it lives in Redis.
        stack.workers["w1"].stop()
        stack.start_worker("w1")
        still = await asyncio.gather(*(client.place_order("ES", "BUY", 1) for _ in range(4)))

        cli(stack, "resume")
        resumed = await client.place_order("MNQ", "BUY", 1)

        cli(stack, "halt", "--account", str(OTHER_ACCOUNT))
        this_one = await client.place_order("MNQ", "BUY", 1)
        that_one = await client.place_order("MNQ", "BUY", 1, account_id=OTHER_ACCOUNT)

    assert "halted: no new orders for all accounts" in shown
    assert (refused.status, refused.error_code) == ("rejected", "halted")
    assert "fire drill" in (refused.message or "")
    assert took < 1.0
    assert cancelled.status == "accepted"
    assert {(r.status, r.error_code) for r in still} == {("rejected", "halted")}
    assert resumed.status == "accepted"
    assert this_one.status == "accepted"
    assert (that_one.status, that_one.error_code) == ("rejected", "halted")


async def test_contracts_are_searched_once_for_the_fleet_and_can_be_pinned(
    fleet: Callable[..., Fleet],
) -> None:
    stack = fleet(env={"WARM_SYMBOLS": "", "CONTRACT_REFRESH_S": "0.2"})
    stack.start_worker("w1")
    async with OrderClient(stack.redis_url, account_id=DEMO_ACCOUNT) as client:
        assert (await client.place_order("MNQ", "BUY", 1)).status == "accepted"
        stack.start_worker("w2")
        stack.workers["w1"].stop()  # only the newcomer is left
        assert (await client.place_order("MNQ", "BUY", 1)).status == "accepted"
        assert stack.broker.stats()["endpoints"]["/api/Contract/search"] == 1

        # An operator pins MNQ to another (here: made-up) contract; the fleet follows.
        cli(stack, "contract", "set", "MNQ", "CON.F.US.MNQ.X99", "--tick-size", "0.25")
        await asyncio.sleep(0.3)
        pinned = await client.place_order("MNQ", "BUY", 1)
        shown = cli(stack, "contract", "show", "MNQ").stdout
        cli(stack, "contract", "clear", "MNQ")
        await asyncio.sleep(0.3)
        cleared = await client.place_order("MNQ", "BUY", 1)

    assert (pinned.status, pinned.error_code) == ("rejected", "broker_rejected")
    assert pinned.broker_error_code == 8  # ContractNotFound: it really used the pinned ID
    assert '"pinned":true' in shown
    assert cleared.status == "accepted"
