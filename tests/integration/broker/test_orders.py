"""Orders over HTTP: place (market, limit, stop; brackets signed as the live gateway wants),
modify, cancel, search, searchOpen and find_order, checked against the simulator's book."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.integration.broker.helpers import (
    ACCOUNT,
    ASK,
    BID,
    CANCELLED,
    FILLED,
    LIMIT,
    MARKET,
    OPEN,
    OTHER_ACCOUNT,
    STOP,
    SUSPENDED,
    an_hour_ago,
    legs_of,
    sim_order,
)
from worker.broker.client import GatewayClient
from worker.broker.models import Order
from worker.broker.transport import CallStats
from worker.local.pytest_plugin import BrokerSim

TICK = 0.25  # MNQ
PRICE = 20000.0  # on MNQ's tick grid, below the market (MNQ sits at 21000)
# Prices at which an entry rests: limits away from the market, stops on its far side. A
# limit through the market fills at once, and a stop through it is refused.
RESTING = {
    ("limit", "BUY"): PRICE,
    ("limit", "SELL"): PRICE + 2000,
    ("stop", "BUY"): PRICE + 2000,
    ("stop", "SELL"): PRICE,
}


def entry_price(order: dict[str, Any]) -> float:
    """The price a bracketed entry's legs are measured from."""
    if order["type"] == MARKET:
        price: float = order["filledPrice"]
    elif order["type"] == LIMIT:
        price = order["limitPrice"]
    else:
        price = order["stopPrice"]
    return price


@pytest.mark.parametrize("order_type", ["market", "limit", "stop"])
@pytest.mark.parametrize("side", ["BUY", "SELL"])
async def test_place_with_brackets_puts_the_legs_on_the_right_sides(
    client: GatewayClient, broker_sim: BrokerSim, order_type: str, side: str
) -> None:
    prices: dict[str, float] = {}
    if order_type != "market":
        prices[f"{order_type}_price"] = RESTING[order_type, side]
    stats = CallStats()

    order_id = await client.place_order(
        account_id=ACCOUNT,
        symbol="MNQ",
        side=side,
        quantity=2,
        order_type=order_type,
        stop_loss_ticks=10,
        take_profit_ticks=20,
        custom_tag=f"bracket-{order_type}-{side}",
        stats=stats,
        limit_price=prices.get("limit_price"),
        stop_price=prices.get("stop_price"),
    )

    assert stats.attempts == 2  # contract search, place
    entry = sim_order(broker_sim, order_id)
    assert entry["type"] == {"market": MARKET, "limit": LIMIT, "stop": STOP}[order_type]
    assert entry["side"] == (BID if side == "BUY" else ASK)
    assert entry["size"] == 2
    assert entry["customTag"] == f"bracket-{order_type}-{side}"
    assert entry["status"] == (FILLED if order_type == "market" else OPEN)
    if order_type != "market":
        assert entry_price(entry) == RESTING[order_type, side]

    legs = legs_of(broker_sim, order_id)
    assert set(legs) == {STOP, LIMIT}
    stop_loss, take_profit = legs[STOP], legs[LIMIT]
    base = entry_price(entry)
    # Long: stop below, target above. Short: the reverse. Always the exit side, same size.
    direction = 1 if side == "BUY" else -1
    assert stop_loss["stopPrice"] == base - direction * 10 * TICK
    assert take_profit["limitPrice"] == base + direction * 20 * TICK
    for leg in (stop_loss, take_profit):
        assert leg["side"] == (ASK if side == "BUY" else BID)
        assert leg["size"] == 2
        # Legs of a resting entry wait, Suspended, for it to fill.
        assert leg["status"] == (OPEN if order_type == "market" else SUSPENDED)


async def test_place_without_brackets_has_no_legs(
    client: GatewayClient, broker_sim: BrokerSim
) -> None:
    order_id = await client.place_order(
        account_id=ACCOUNT, symbol="MNQ", side="sell", quantity=1, order_type="MARKET"
    )
    entry = sim_order(broker_sim, order_id)
    assert (entry["side"], entry["type"], entry["status"]) == (ASK, MARKET, FILLED)
    assert entry["customTag"] is None
    assert legs_of(broker_sim, order_id) == {}


async def test_place_with_one_bracket_only(client: GatewayClient, broker_sim: BrokerSim) -> None:
    order_id = await client.place_order(
        account_id=ACCOUNT,
        symbol="MNQ",
        side="BUY",
        quantity=1,
        order_type="limit",
        limit_price=PRICE,
        take_profit_ticks=8,
    )
    legs = legs_of(broker_sim, order_id)
    assert set(legs) == {LIMIT}
    assert legs[LIMIT]["limitPrice"] == PRICE + 8 * TICK


async def test_modify_changes_size_and_price(client: GatewayClient, broker_sim: BrokerSim) -> None:
    limit_id = await client.place_order(
        account_id=ACCOUNT,
        symbol="MNQ",
        side="BUY",
        quantity=1,
        order_type="limit",
        limit_price=PRICE,
    )
    stop_id = await client.place_order(
        account_id=ACCOUNT,
        symbol="MNQ",
        side="SELL",
        quantity=1,
        order_type="stop",
        stop_price=PRICE,
    )
    stats = CallStats()

    await client.modify_order(
        account_id=ACCOUNT, order_id=limit_id, quantity=3, limit_price=PRICE - 2.5, stats=stats
    )
    await client.modify_order(account_id=ACCOUNT, order_id=stop_id, stop_price=PRICE - 5)

    assert stats.attempts == 1
    limit = sim_order(broker_sim, limit_id)
    assert (limit["size"], limit["limitPrice"], limit["status"]) == (3, PRICE - 2.5, OPEN)
    assert sim_order(broker_sim, stop_id)["stopPrice"] == PRICE - 5
    # Modify sends absolute values: sending the same again changes nothing and succeeds.
    await client.modify_order(account_id=ACCOUNT, order_id=limit_id, quantity=3)
    assert sim_order(broker_sim, limit_id)["size"] == 3


async def test_cancel_cancels_the_order_and_its_legs(
    client: GatewayClient, broker_sim: BrokerSim
) -> None:
    order_id = await client.place_order(
        account_id=ACCOUNT,
        symbol="MNQ",
        side="BUY",
        quantity=1,
        order_type="limit",
        limit_price=PRICE,
        stop_loss_ticks=10,
        take_profit_ticks=10,
    )
    stats = CallStats()

    await client.cancel_order(account_id=ACCOUNT, order_id=order_id, stats=stats)

    assert stats.attempts == 1
    assert sim_order(broker_sim, order_id)["status"] == CANCELLED
    assert {leg["status"] for leg in legs_of(broker_sim, order_id).values()} == {CANCELLED}


async def test_search_orders_decodes_the_gateway_order_model(client: GatewayClient) -> None:
    started = datetime.now(UTC)
    market_id = await client.place_order(
        account_id=ACCOUNT, symbol="MNQ", side="BUY", quantity=1, custom_tag="s-market"
    )
    limit_id = await client.place_order(
        account_id=ACCOUNT,
        symbol="MNQ",
        side="SELL",
        quantity=2,
        order_type="limit",
        limit_price=PRICE + 2000,  # above the market: it rests
        custom_tag="s-limit",
    )
    contract_id = client.get_contract_id("MNQ")

    orders = {o.id: o for o in await client.search_orders(ACCOUNT, an_hour_ago())}

    assert set(orders) == {market_id, limit_id}
    market, limit = orders[market_id], orders[limit_id]
    assert isinstance(market, Order)
    assert (market.status, market.type, market.side, market.size) == (FILLED, MARKET, BID, 1)
    assert market.fill_volume == 1
    assert market.filled_price is not None
    assert market.custom_tag == "s-market"
    assert (limit.status, limit.type, limit.side, limit.size) == (OPEN, LIMIT, ASK, 2)
    assert limit.limit_price == PRICE + 2000
    assert limit.filled_price is None
    assert {market.contract_id, limit.contract_id} == {contract_id}
    assert market.account_id == ACCOUNT
    created = datetime.fromisoformat(market.creation_timestamp)
    assert created.utcoffset() == timedelta(0)
    assert started - timedelta(seconds=5) <= created <= datetime.now(UTC) + timedelta(seconds=5)


async def test_search_orders_honours_its_window_and_account(client: GatewayClient) -> None:
    await client.place_order(account_id=ACCOUNT, symbol="MNQ", side="BUY", quantity=1)
    long_ago = datetime.now(UTC) - timedelta(days=2)
    assert await client.search_orders(ACCOUNT, long_ago, long_ago + timedelta(hours=1)) == []
    assert await client.search_orders(OTHER_ACCOUNT, an_hour_ago()) == []
    assert len(await client.search_orders(ACCOUNT, an_hour_ago())) == 1


async def test_search_open_orders_lists_only_working_orders(client: GatewayClient) -> None:
    filled = await client.place_order(account_id=ACCOUNT, symbol="MNQ", side="BUY", quantity=1)
    working = await client.place_order(
        account_id=ACCOUNT,
        symbol="MNQ",
        side="BUY",
        quantity=1,
        order_type="limit",
        limit_price=PRICE,
    )
    cancelled = await client.place_order(
        account_id=ACCOUNT,
        symbol="MNQ",
        side="BUY",
        quantity=1,
        order_type="limit",
        limit_price=PRICE,
    )
    await client.cancel_order(account_id=ACCOUNT, order_id=cancelled)

    open_ids = [o.id for o in await client.search_open_orders(ACCOUNT)]

    assert open_ids == [working]
    assert filled not in open_ids


async def test_find_order_by_tag_and_by_id(client: GatewayClient) -> None:
    since = datetime.now(UTC)
    first = await client.place_order(
        account_id=ACCOUNT, symbol="MNQ", side="BUY", quantity=1, custom_tag="find-me"
    )
    second = await client.place_order(
        account_id=ACCOUNT, symbol="MNQ", side="SELL", quantity=1, custom_tag="not-me"
    )

    by_tag = await client.find_order(ACCOUNT, custom_tag="find-me", since=since)
    by_id = await client.find_order(ACCOUNT, order_id=second, since=since)

    assert by_tag is not None
    assert by_tag.id == first
    assert by_tag.custom_tag == "find-me"
    assert by_id is not None
    assert by_id.id == second
    assert by_id.custom_tag == "not-me"
    assert await client.find_order(ACCOUNT, custom_tag="never-used", since=since) is None
    assert await client.find_order(ACCOUNT, order_id=10**12, since=since) is None
    # The window opens a few minutes early, so a small clock skew does not hide the order.
    skewed = await client.find_order(
        ACCOUNT, custom_tag="find-me", since=since + timedelta(minutes=2)
    )
    assert skewed is not None
    assert skewed.id == first
