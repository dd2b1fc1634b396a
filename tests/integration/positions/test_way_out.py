"""The way out on real processes: closes, cancel-all and flatten against the paper venue,
with its faults; and every order type resting with the gateway's number and filling by its
rule. Two workers, a real Redis, the simulator."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
import redis.asyncio as aioredis

from producer import OrderClient
from tests.faults.harness import Fleet
from tests.faults.test_hostile import cli
from tests.integration.lifecycle.venue import TICK, Rest, eventually
from worker.local.pytest_plugin import DEMO_ACCOUNT

WORKING = (1, 6, 8)  # Open, Pending, Suspended


def symbol_of(contract_id: str) -> str:
    """``CON.F.US.MNQ.Z26`` -> ``MNQ`` (the venue's front month moves with the date)."""
    return contract_id.split(".")[3]


async def venue_positions(stack: Fleet) -> dict[str, int]:
    """The venue's open positions by symbol, signed."""
    _, positions = await Rest(stack.broker_url).state()
    return {
        symbol_of(p["contractId"]): p["size"] * (1 if p["type"] == 1 else -1) for p in positions
    }


def working(stack: Fleet) -> list[dict[str, Any]]:
    return [
        o for o in stack.broker.orders()
        if o["accountId"] == DEMO_ACCOUNT and o["status"] in WORKING
    ]  # fmt: skip


async def never_reversed(stack: Fleet) -> None:
    """Replaying the venue's trades, no position ever crossed to the other side."""
    trades, _ = await Rest(stack.broker_url).state()
    held: dict[str, int] = {}
    for trade in sorted(trades, key=lambda t: t["id"]):
        before = held.get(trade["contractId"], 0)
        after = before + (trade["size"] if trade["side"] == 0 else -trade["size"])
        assert before == 0 or after == 0 or (after > 0) == (before > 0), trade
        held[trade["contractId"]] = after


async def test_a_position_of_three_closed_by_one_then_closed(
    two_workers: Fleet, strategy: OrderClient
) -> None:
    opened = await strategy.place_order("MNQ", "BUY", 3)
    assert opened.status == "accepted"
    part = await strategy.close_position("MNQ", quantity=1)
    assert (part.status, part.order_state) == ("accepted", "filled"), part
    assert part.closed is not None
    assert (part.closed[0].quantity, part.closed[0].remaining) == (1, 2)
    assert await venue_positions(two_workers) == {"MNQ": 2}
    rest = await strategy.close_position("MNQ")
    assert (rest.status, rest.order_state) == ("accepted", "flat"), rest
    assert await venue_positions(two_workers) == {}
    again = await strategy.close_position("MNQ")
    assert (again.status, again.order_state, again.closed) == ("accepted", "flat", [])
    await never_reversed(two_workers)


async def build_a_book(client: OrderClient, stack: Fleet) -> None:
    """Two positions, live bracket legs, resting limits on both symbols."""
    for result in (
        await client.place_order("MNQ", "BUY", 2, stop_loss_ticks=40, take_profit_ticks=80),
        await client.place_order("ES", "SELL", 1),
        await client.place_order("MNQ", "BUY", 1, order_type="limit", limit_price=20_000.0),
        await client.place_order("ES", "SELL", 2, order_type="limit", limit_price=7_000.0),
    ):
        assert result.status == "accepted", result
    assert len(working(stack)) == 4  # two legs, two limits
    assert len(await venue_positions(stack)) == 2


async def test_flatten_leaves_nothing_and_a_second_finds_nothing(
    two_workers: Fleet, strategy: OrderClient
) -> None:
    await build_a_book(strategy, two_workers)
    flat = await strategy.flatten()
    assert (flat.status, flat.order_state) == ("accepted", "flat"), flat
    assert flat.cancelled is not None
    assert flat.closed is not None
    assert len(flat.cancelled) == 4
    assert sorted(c.quantity for c in flat.closed) == [1, 2]
    assert working(two_workers) == []
    assert await venue_positions(two_workers) == {}
    twice = await strategy.flatten()
    assert (twice.status, twice.order_state, twice.cancelled, twice.closed) == (
        "accepted", "flat", [], []
    )  # fmt: skip
    await never_reversed(two_workers)


async def test_flatten_passes_a_halted_account_and_new_orders_do_not(
    two_workers: Fleet, strategy: OrderClient
) -> None:
    await build_a_book(strategy, two_workers)
    redis = aioredis.Redis.from_url(two_workers.redis_url)
    await redis.set(f"ow:halt:{DEMO_ACCOUNT}", b'{"reason":"test","at":1,"by":"test"}')
    await redis.aclose()
    refused = await strategy.place_order("MNQ", "BUY", 1)
    assert (refused.status, refused.error_code) == ("rejected", "halted")
    flat = await strategy.flatten()
    assert (flat.status, flat.order_state) == ("accepted", "flat"), flat
    assert working(two_workers) == []
    assert await venue_positions(two_workers) == {}


async def test_flatten_through_failing_cancels_and_closes_ends_flat_and_never_reversed(
    two_workers: Fleet, strategy: OrderClient
) -> None:
    await build_a_book(strategy, two_workers)
    # Half the cancels answer 500 having done nothing; half the closes take effect and then
    # answer 500 or drop the connection (the worst case for a close: done, but unknown).
    two_workers.broker.faults(
        error_rate=0.5, endpoints=["/api/Order/cancel"],
    )  # fmt: skip
    two_workers.broker.faults(commit_then_fail_rate=0.5)
    two_workers.broker.faults(
        endpoints=["/api/Order/cancel", "/api/Position/closeContract",
                   "/api/Position/partialCloseContract"],
    )  # fmt: skip
    flat = await strategy.flatten()
    two_workers.broker.faults(error_rate=0.0, commit_then_fail_rate=0.0, endpoints=None)
    assert (flat.status, flat.order_state) == ("accepted", "flat"), flat
    assert working(two_workers) == []
    assert await venue_positions(two_workers) == {}
    await never_reversed(two_workers)
    assert (
        two_workers.broker.stats()["errors_injected"]
        + two_workers.broker.stats()["commit_then_fail"]
        > 0
    )


async def test_cancel_all_of_one_symbol(two_workers: Fleet, strategy: OrderClient) -> None:
    await build_a_book(strategy, two_workers)
    done = await strategy.cancel_all(symbol="ES")
    assert done.status == "accepted"
    assert done.cancelled is not None
    assert len(done.cancelled) == 1
    assert {symbol_of(o["contractId"]) for o in working(two_workers)} == {"MNQ"}


@pytest.mark.parametrize(
    ("options", "gateway_type"),
    [
        ({"side": "BUY", "order_type": "stop_limit", "stop": 10, "limit": 12}, 3),
        ({"side": "SELL", "order_type": "trailing_stop", "trail_ticks": 8}, 5),
        ({"side": "BUY", "order_type": "join_bid"}, 6),
        ({"side": "SELL", "order_type": "join_ask"}, 7),
    ],
    ids=["stop_limit", "trailing_stop", "join_bid", "join_ask"],
)
async def test_each_order_type_rests_with_its_number_then_fills_by_its_rule(
    two_workers: Fleet, strategy: OrderClient, options: dict[str, Any], gateway_type: int
) -> None:
    last = two_workers.broker.price("MNQ")
    kwargs: dict[str, Any] = {"order_type": options["order_type"]}
    if "stop" in options:
        kwargs["stop_price"] = last + options["stop"] * TICK
        kwargs["limit_price"] = last + options["limit"] * TICK
    if "trail_ticks" in options:
        kwargs["trail_ticks"] = options["trail_ticks"]
    if options["order_type"] == "trailing_stop":
        assert (await strategy.place_order("MNQ", "BUY", 1)).status == "accepted"  # to protect
    placed = await strategy.place_order("MNQ", options["side"], 1, **kwargs)
    assert placed.status == "accepted", placed
    [resting] = [o for o in two_workers.broker.orders() if o["id"] == placed.order_id]
    assert (resting["type"], resting["status"]) == (gateway_type, 1)
    if gateway_type == 5:
        assert resting["stopPrice"] == last - 8 * TICK  # trailPrice = 8 ticks of 0.25
    # The move that fills it, by its rule.
    moves = {
        3: [last + 10 * TICK, last + 11 * TICK],  # triggers at the stop; the limit then takes it
        5: [last + 4 * TICK, last - 5 * TICK],  # the trail follows up, then the fall hits it
        6: [last - TICK],  # a buy at the bid fills once the ask comes down to it
        7: [last + TICK],  # a sell at the ask fills once the bid rises to it
    }[gateway_type]
    for price in moves:
        two_workers.broker.move_price("MNQ", price)

    async def filled() -> None:
        [now] = [o for o in two_workers.broker.orders() if o["id"] == placed.order_id]
        assert now["status"] == 2, now

    await eventually(filled, timeout=5)


async def test_the_daily_loss_limit_can_flatten_the_account(fleet: Callable[..., Fleet]) -> None:
    stack = fleet(env={"RISK_DAILY_LOSS_LIMIT": "50", "RISK_FLATTEN_ON_LOSS_LIMIT": "on"})
    stack.start_worker("w1")
    stack.start_worker("w2")
    async with OrderClient(stack.redis_url, account_id=DEMO_ACCOUNT, timeout=30) as client:
        await eventually(lambda: _live(client), timeout=20)
        assert (await client.place_order("MNQ", "BUY", 2)).status == "accepted"
        resting = await client.place_order(
            "MNQ", "BUY", 1, order_type="limit", limit_price=20_000.0
        )
        assert resting.status == "accepted"
        await eventually(lambda: _holds(client), timeout=10)
        # 2 contracts x 60 ticks x $0.50 = $60 open loss, over the $50 limit.
        stack.broker.move_price("MNQ", stack.broker.price("MNQ") - 60 * TICK)

        async def flattened() -> None:
            assert working(stack) == []
            assert await venue_positions(stack) == {}

        await eventually(flattened, timeout=20)
        refused = await client.place_order("MNQ", "BUY", 1)
        assert (refused.status, refused.error_code) == ("rejected", "halted")


async def _live(client: OrderClient) -> None:
    assert await client.mirror_live()


async def _holds(client: OrderClient) -> None:
    assert await client.positions() != []


async def test_the_operator_halts_and_flattens_from_the_shell(
    two_workers: Fleet, strategy: OrderClient
) -> None:
    await build_a_book(strategy, two_workers)
    env = {"PATH": os.environ["PATH"], "REDIS_URL": two_workers.redis_url}
    refused = cli("halt", "--flatten", env=env)
    assert refused.returncode == 2
    assert "needs --account" in refused.stderr
    done = cli("halt", "--flatten", "--account", str(DEMO_ACCOUNT), "--json", env=env)
    assert done.returncode == 0, done.stderr
    result = msgspec.json.decode(done.stdout.splitlines()[-1])
    assert (result["status"], result["order_state"]) == ("accepted", "flat")
    assert working(two_workers) == []
    assert await venue_positions(two_workers) == {}
    again = cli("flatten", "--account", str(DEMO_ACCOUNT), env=env)
    assert again.returncode == 0
    assert again.stdout.startswith("flat: cancelled 0 orders, closed nothing")
