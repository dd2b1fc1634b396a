"""The paper venue over real HTTP: prices set by the test, each order type's fill rule,
brackets, partial fills, positions, trades with P&L and fees, closing, the daily loss limit.

MNQ sits at 21000 until moved; its spread is one tick (bid = last, ask = last + 0.25); it
moves $2 a point and costs $0.37 a contract per fill.
"""

import asyncio
import dataclasses
from decimal import Decimal
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from simulator.app import create_app
from simulator.orders import StopThroughMarket
from tests.integration.simulator.conftest import MakeClient
from tests.integration.simulator.helpers import (
    ACCOUNT,
    CONFIG,
    MNQ,
    Client,
    call,
    login,
    order,
    sim_orders,
)
from tests.unit.simulator.recorder import Recorder

OK = {"success": True, "errorCode": 0, "errorMessage": None}
EVER = "2000-01-01T00:00:00Z"
BUY, SELL = 0, 1
LIMIT, MARKET, STOP_LIMIT, STOP, TRAILING, JOIN_BID, JOIN_ASK = 1, 2, 3, 4, 5, 6, 7
OPEN, FILLED, CANCELLED, SUSPENDED = 1, 2, 3, 8


async def set_price(client: Client, price: float, **target: object) -> dict[str, Any]:
    """POST /_sim/price for MNQ unless a contractId or symbol is given."""
    body = {"price": price, **(target or {"contractId": MNQ})}
    response = await client.post("/_sim/price", json=body)
    assert response.status == 200, await response.text()
    answer: dict[str, Any] = await response.json()
    return answer


async def place(client: Client, token: str, **fields: object) -> int:
    answer = await call(client, "/api/Order/place", token, order(**fields))
    assert answer["success"] is True, answer
    order_id: int = answer["orderId"]
    return order_id


async def orders_by_id(client: Client, token: str) -> dict[int, dict[str, Any]]:
    body = {"accountId": ACCOUNT, "startTimestamp": EVER}
    found = (await call(client, "/api/Order/search", token, body))["orders"]
    return {o["id"]: o for o in found}


async def open_ids(client: Client, token: str) -> list[int]:
    found = await call(client, "/api/Order/searchOpen", token, {"accountId": ACCOUNT})
    return [o["id"] for o in found["orders"]]


async def positions(client: Client, token: str) -> list[dict[str, Any]]:
    body = {"accountId": ACCOUNT}
    found: list[dict[str, Any]] = (await call(client, "/api/Position/searchOpen", token, body))[
        "positions"
    ]
    return found


async def trades(client: Client, token: str, **window: str) -> list[dict[str, Any]]:
    body = {"accountId": ACCOUNT, "startTimestamp": EVER, **window}
    found: list[dict[str, Any]] = (await call(client, "/api/Trade/search", token, body))["trades"]
    return found


async def account(client: Client, token: str) -> dict[str, Any]:
    found = await call(client, "/api/Account/search", token, {"onlyActiveAccounts": True})
    mine: dict[str, Any] = found["accounts"][0]
    assert mine["id"] == ACCOUNT
    return mine


# --- prices ----------------------------------------------------------------------------


async def test_a_price_is_set_and_read_by_contract_or_symbol(client: Client) -> None:
    market = await set_price(client, 21010.5)
    assert market == {
        "contractId": MNQ,
        "lastPrice": 21010.5,
        "bestBid": 21010.5,
        "bestAsk": 21010.75,
    }
    read = await client.get("/_sim/price", params={"symbol": "mnq"})
    assert await read.json() == market
    es = await set_price(client, 6001, symbol="ES")
    assert es["contractId"] == "CON.F.US.EP.Z25"  # a symbol means the front month
    nxt = await client.get("/_sim/price", params={"contractId": "CON.F.US.EP.H26"})
    assert (await nxt.json())["lastPrice"] == 6000  # the next month has its own price


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"contractId": MNQ, "price": 21000.1}, "is not on the tick grid"),
        ({"contractId": MNQ, "price": 0}, "is below 0.25, the lowest the spread allows"),
        ({"contractId": "CON.F.US.MNQ.U25", "price": 21000}, "no active contract"),
        ({"symbol": "ZZZ", "price": 1}, "no active contract 'ZZZ'"),
        ({"price": 1}, "give exactly one of contractId and symbol"),
        ({"symbol": "MNQ", "contractId": MNQ, "price": 1}, "give exactly one"),
        ({"symbol": "MNQ", "price": 1, "volume": -1}, "Expected `int` >= 0"),
        ({"symbol": "MNQ", "price": 1, "nope": 1}, "unknown field `nope`"),
    ],
)
async def test_a_bad_price_is_refused(client: Client, body: dict[str, Any], error: str) -> None:
    response = await client.post("/_sim/price", json=body)
    assert response.status == 400
    assert error in (await response.json())["error"]
    assert (await (await client.get("/_sim/price", params={"contractId": MNQ})).json())[
        "lastPrice"
    ] == 21000


# --- the fill rules --------------------------------------------------------------------

# (fields of the order, prices set one after the other, status and fill after each)
RULES = [
    pytest.param({"type": MARKET}, [], [], (FILLED, 21000.25), id="market buy at the ask"),
    pytest.param(
        {"type": MARKET, "side": SELL}, [], [], (FILLED, 21000), id="market sell at the bid"
    ),
    pytest.param(
        {"type": LIMIT, "limitPrice": 21005}, [], [], (FILLED, 21000.25), id="marketable limit"
    ),
    pytest.param(
        {"type": LIMIT, "limitPrice": 20990},
        [20990, 20989.75],
        [(OPEN, None), (FILLED, 20990)],
        (FILLED, 20990),
        id="resting limit",
    ),
    pytest.param(
        {"type": STOP, "stopPrice": 21010},
        [21009.75, 21012],
        [(OPEN, None), (FILLED, 21012.25)],
        (FILLED, 21012.25),
        id="buy stop",
    ),
    pytest.param(
        {"type": STOP, "side": SELL, "stopPrice": 20990},
        [20950],
        [(FILLED, 20950)],
        (FILLED, 20950),
        id="sell stop through a gap",
    ),
    pytest.param(
        {"type": STOP_LIMIT, "stopPrice": 21010, "limitPrice": 21011},
        [21020, 21010.75],
        [(OPEN, None), (FILLED, 21011)],
        (FILLED, 21011),
        id="stop limit",
    ),
    pytest.param(
        {"type": TRAILING, "side": SELL, "trailPrice": 2},
        [21005, 21003.25, 21003],
        [(OPEN, None), (OPEN, None), (FILLED, 21003)],
        (FILLED, 21003),
        id="trailing stop",
    ),
    pytest.param(
        {"type": JOIN_BID},
        [20999.75],
        [(FILLED, 21000)],
        (FILLED, 21000),
        id="join bid",
    ),
    pytest.param(
        {"type": JOIN_ASK, "side": SELL},
        [21000, 21000.25],
        [(OPEN, None), (FILLED, 21000.25)],
        (FILLED, 21000.25),
        id="join ask",
    ),
]


@pytest.mark.parametrize(("fields", "prices", "after", "final"), RULES)
async def test_each_order_type_fills_by_its_rule(
    client: Client,
    token: str,
    fields: dict[str, object],
    prices: list[float],
    after: list[tuple[int, float | None]],
    final: tuple[int, float],
) -> None:
    order_id = await place(client, token, **fields)
    for price, (status, filled) in zip(prices, after, strict=True):
        await set_price(client, price)
        found = (await orders_by_id(client, token))[order_id]
        assert (found["status"], found["filledPrice"]) == (status, filled), price
    found = (await orders_by_id(client, token))[order_id]
    assert (found["status"], found["filledPrice"], found["fillVolume"]) == (*final, 1)


async def test_a_stop_through_the_market_is_refused(client: Client, token: str) -> None:
    body = order(type=STOP, stopPrice=20990)
    answer = await call(client, "/api/Order/place", token, body)
    assert answer == {
        "orderId": None,
        "success": False,
        "errorCode": 2,
        "errorMessage": "Invalid price. Price is outside allowed range.",
    }


async def test_a_stop_through_the_market_triggers_when_configured(
    make_client: MakeClient,
) -> None:
    client = await make_client(
        dataclasses.replace(CONFIG, stop_through_market=StopThroughMarket.TRIGGER)
    )
    token = await login(client)
    order_id = await place(client, token, type=STOP, stopPrice=20990)
    found = (await orders_by_id(client, token))[order_id]
    assert (found["status"], found["filledPrice"]) == (FILLED, 21000.25)


# --- brackets and partial fills --------------------------------------------------------


async def test_brackets_are_suspended_then_open_then_one_cancels_the_other(
    client: Client, token: str
) -> None:
    entry = await place(
        client,
        token,
        type=LIMIT,
        limitPrice=20990,
        size=2,
        stopLossBracket={"ticks": -8, "type": STOP},
        takeProfitBracket={"ticks": 16, "type": LIMIT},
    )
    orders = await orders_by_id(client, token)
    stop, target = (o for o in orders.values() if o["parentOrderId"] == entry)
    assert (stop["status"], stop["stopPrice"]) == (SUSPENDED, 20988)
    assert (target["status"], target["limitPrice"]) == (SUSPENDED, 20994)
    assert await open_ids(client, token) == [entry]  # Suspended legs are not open orders

    await set_price(client, 20989.75)
    assert await open_ids(client, token) == [stop["id"], target["id"]]
    [position] = await positions(client, token)
    assert (position["type"], position["size"], position["averagePrice"]) == (1, 2, 20990)

    await set_price(client, 20994)
    orders = await orders_by_id(client, token)
    assert (orders[target["id"]]["status"], orders[stop["id"]]["status"]) == (FILLED, CANCELLED)
    assert await open_ids(client, token) == []
    assert await positions(client, token) == []


async def test_partial_fills_move_fill_volume_in_steps(client: Client, token: str) -> None:
    response = await client.post("/_sim/faults", json={"max_fill_size": 2})
    assert (await response.json())["max_fill_size"] == 2
    order_id = await place(client, token, size=5)
    steps = []
    for price in (21000, 21001, 21002):
        found = (await orders_by_id(client, token))[order_id]
        steps.append((found["status"], found["fillVolume"]))
        await set_price(client, price)
    found = (await orders_by_id(client, token))[order_id]
    steps.append((found["status"], found["fillVolume"]))
    assert steps == [(OPEN, 2), (OPEN, 4), (FILLED, 5), (FILLED, 5)]
    # 2 @ 21000.25, 2 @ 21000.25, 1 @ 21001.25.
    assert found["filledPrice"] == 21000.45
    assert [t["size"] for t in await trades(client, token)] == [1, 2, 2]


# --- positions, trades, closing --------------------------------------------------------


async def test_trades_carry_fees_and_realized_pnl_and_move_the_balance(
    client: Client, token: str
) -> None:
    opening = await place(client, token, size=2)
    await set_price(client, 21010)
    closing = await place(client, token, side=SELL, size=2)
    newest, oldest = await trades(client, token)
    assert oldest["orderId"] == opening
    assert (oldest["price"], oldest["profitAndLoss"], oldest["fees"]) == (21000.25, None, 0.74)
    assert (newest["orderId"], newest["side"], newest["size"]) == (closing, SELL, 2)
    assert (newest["price"], newest["profitAndLoss"], newest["fees"]) == (21010, 39, 0.74)
    assert newest["voided"] is False
    assert (await account(client, token))["balance"] == 50037.52
    # The JSON keeps the gateway's scales: 9 decimals for money made, 4 for fees.
    body = {"accountId": ACCOUNT, "startTimestamp": EVER}
    response = await client.post(
        "/api/Trade/search", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    text = await response.text()
    assert '"profitAndLoss":39.000000000' in text
    assert '"fees":0.7400' in text


async def test_trade_search_honours_its_window_and_account(client: Client, token: str) -> None:
    await place(client, token)
    [trade] = await trades(client, token)
    created = trade["creationTimestamp"]
    assert len(await trades(client, token, startTimestamp=created, endTimestamp=created)) == 1
    assert await trades(client, token, startTimestamp="2999-01-01T00:00:00Z") == []
    unknown = await call(client, "/api/Trade/search", token, {"accountId": 99})
    assert unknown == {
        "trades": None,
        "success": False,
        "errorCode": 1,
        "errorMessage": "Account not found",
    }


async def test_close_and_partial_close_trade_off_at_market(client: Client, token: str) -> None:
    await place(client, token, size=3)
    await set_price(client, 21004)
    body = {"accountId": ACCOUNT, "contractId": MNQ, "size": 1}
    assert await call(client, "/api/Position/partialCloseContract", token, body) == OK
    [position] = await positions(client, token)
    assert position["size"] == 2
    too_many = {**body, "size": 3}
    assert await call(client, "/api/Position/partialCloseContract", token, too_many) == {
        "success": False,
        "errorCode": 5,
        "errorMessage": "Invalid close size",
    }
    close = {"accountId": ACCOUNT, "contractId": MNQ}
    assert await call(client, "/api/Position/closeContract", token, close) == OK
    assert await positions(client, token) == []
    assert await call(client, "/api/Position/partialCloseContract", token, body) == {
        "success": False,
        "errorCode": 2,
        "errorMessage": "Position not found",
    }
    # 3.75 points on 3 contracts, less six fills' fees.
    assert (await account(client, token))["balance"] == 50020.28


async def test_the_daily_loss_limit_stops_the_account_until_a_reset(
    make_client: MakeClient,
) -> None:
    client = await make_client(dataclasses.replace(CONFIG, daily_loss_limit=Decimal(100)))
    token = await login(client)
    await place(client, token, size=10)
    resting = await place(client, token, type=LIMIT, limitPrice=20000)
    await set_price(client, 20995)
    assert (await account(client, token))["canTrade"] is False
    assert await positions(client, token) == []
    assert (await orders_by_id(client, token))[resting]["status"] == CANCELLED
    refused = await call(client, "/api/Order/place", token, order())
    assert (refused["success"], refused["errorCode"]) == (False, 4)
    await client.post("/_sim/reset")
    assert (await account(client, token))["canTrade"] is True
    assert (await account(client, token))["balance"] == 50000
    assert (await call(client, "/api/Order/place", token, order()))["success"] is True


async def test_reset_restores_the_market_and_forgets_the_trades(client: Client, token: str) -> None:
    await set_price(client, 21100)
    await place(client, token)
    await client.post("/_sim/reset")
    assert (await (await client.get("/_sim/price", params={"symbol": "MNQ"})).json())[
        "lastPrice"
    ] == 21000
    assert await trades(client, token) == []
    assert await sim_orders(client) == []


async def test_the_random_walk_moves_prices_when_turned_on(make_client: MakeClient) -> None:
    client = await make_client(dataclasses.replace(CONFIG, random_walk_ms=5))
    seen: set[float] = set()
    for _ in range(500):  # at most ~5 s; a step every 5 ms moves MNQ 6 times in 7
        market = await (await client.get("/_sim/price", params={"symbol": "MNQ"})).json()
        seen.add(market["lastPrice"])
        if len(seen) > 3:
            break
        await asyncio.sleep(0.01)
    assert len(seen) > 3
    assert all(Decimal(str(p)) % Decimal("0.25") == 0 for p in seen)


async def test_the_app_hands_every_change_to_its_publisher() -> None:
    recorder = Recorder()
    client: Client = TestClient(TestServer(create_app(CONFIG, recorder), host="127.0.0.1"))
    await client.start_server()
    try:
        token = await login(client)
        await place(client, token, type=LIMIT, limitPrice=20990)
        await set_price(client, 20989.75)
    finally:
        await client.close()
    assert [(e.hub, e.target) for e in recorder.events] == [
        ("user", "GatewayUserOrder"),  # placed
        ("market", "GatewayQuote"),  # the price the test set
        ("market", "GatewayTrade"),
        ("market", "GatewayDepth"),
        ("user", "GatewayUserOrder"),  # filled
        ("user", "GatewayUserTrade"),
        ("user", "GatewayUserPosition"),
        ("user", "GatewayUserAccount"),
        ("market", "GatewayQuote"),  # the fill's print
        ("market", "GatewayTrade"),
    ]
    assert {e.key for e in recorder.events if e.hub == "user"} == {ACCOUNT}
    assert {e.key for e in recorder.events if e.hub == "market"} == {MNQ}
