"""Every gateway endpoint over HTTP: happy paths, in-band errors and HTTP 400s."""

import re
from decimal import Decimal
from typing import Any

import pytest

from tests.integration.simulator.helpers import (
    ACCOUNT,
    MNQ,
    Client,
    bearer,
    call,
    order,
    sim_orders,
)

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$")
UNKNOWN_ACCOUNT = 99


def failure(code: int, message: str, **payload: object) -> dict[str, object]:
    return {**payload, "success": False, "errorCode": code, "errorMessage": message}


async def place(client: Client, token: str, **fields: object) -> int:
    answer = await call(client, "/api/Order/place", token, order(**fields))
    assert answer["success"] is True, answer
    order_id: int = answer["orderId"]
    return order_id


async def search(client: Client, token: str) -> list[dict[str, Any]]:
    body = {"accountId": ACCOUNT, "startTimestamp": "2000-01-01T00:00:00Z"}
    orders: list[dict[str, Any]] = (await call(client, "/api/Order/search", token, body))["orders"]
    return orders


# --- Account and Contract --------------------------------------------------------------


async def test_account_search(client: Client, token: str) -> None:
    answer = await call(client, "/api/Account/search", token, {"onlyActiveAccounts": True})
    assert answer["success"] is True
    assert [a["id"] for a in answer["accounts"]] == [12345678, 12345679, 12345680]
    assert answer["accounts"][0] == {
        "id": 12345678,
        "name": "SIM-12345678",
        "balance": 50000,
        "canTrade": True,
        "isVisible": True,
        "simulated": True,
    }


async def test_contract_search(client: Client, token: str) -> None:
    answer = await call(client, "/api/Contract/search", token, {"live": False, "searchText": "NQ"})
    # Front and next month of each product, front first; the expired month is not listed.
    assert [c["id"] for c in answer["contracts"]] == [
        MNQ,
        "CON.F.US.MNQ.H26",
        "CON.F.US.ENQ.Z25",
        "CON.F.US.ENQ.H26",
    ]
    assert answer["contracts"][0] == {
        "id": MNQ,
        "name": "MNQZ5",
        "description": "Micro E-mini Nasdaq-100: December 2025",
        "tickSize": 0.25,
        "tickValue": 0.5,
        "activeContract": True,
        "symbolId": "F.US.MNQ",
    }
    # docs/gateway.md §4.1: TopstepX answers an empty list with live=true.
    live = await call(client, "/api/Contract/search", token, {"live": True, "searchText": "NQ"})
    assert live == {"contracts": [], "success": True, "errorCode": 0, "errorMessage": None}


async def test_contract_search_by_id(client: Client, token: str) -> None:
    path = "/api/Contract/searchById"
    found = await call(client, path, token, {"contractId": "CON.F.US.CLE.F26"})
    assert found["contract"]["name"] == "CLF6"
    assert found["contract"]["tickSize"] == 0.01
    missing = await call(client, path, token, {"contractId": "CON.F.US.CLE.F20"})
    assert missing == failure(1, "Contract not found", contract=None)
    # §4.2: an expired month still resolves by ID, as not active.
    expired = await call(client, path, token, {"contractId": "CON.F.US.MNQ.U25"})
    assert (expired["contract"]["name"], expired["contract"]["activeContract"]) == (
        "MNQU5",
        False,
    )


async def test_available_contracts(client: Client, token: str) -> None:
    for live in (False, True):
        answer = await call(client, "/api/Contract/available", token, {"live": live})
        assert len(answer["contracts"]) == 8


# --- Order -----------------------------------------------------------------------------


async def test_place_and_search(client: Client, token: str) -> None:
    order_id = await place(client, token, customTag="t-1", size=2)
    assert order_id == 1001
    [placed] = await search(client, token)
    assert placed["id"] == order_id
    assert (placed["status"], placed["type"], placed["side"]) == (2, 2, 0)
    assert (placed["size"], placed["fillVolume"], placed["customTag"]) == (2, 2, "t-1")
    assert (placed["limitPrice"], placed["stopPrice"], placed["parentOrderId"]) == (
        None,
        None,
        None,
    )
    assert placed["symbolId"] == "F.US.MNQ"
    assert ISO.match(placed["creationTimestamp"])
    assert ISO.match(placed["updateTimestamp"])
    assert Decimal(str(placed["filledPrice"])) % Decimal("0.25") == 0


async def test_prices_carry_nine_decimals(client: Client, token: str) -> None:
    await place(client, token, type=1, limitPrice=20000.5)
    body = {"accountId": ACCOUNT, "startTimestamp": "2000-01-01T00:00:00+00:00"}
    response = await client.post("/api/Order/search", json=body, headers=bearer(token))
    assert '"limitPrice":20000.500000000' in await response.text()


async def test_search_window(client: Client, token: str) -> None:
    await place(client, token)
    [placed] = await search(client, token)
    created = placed["creationTimestamp"]
    path = "/api/Order/search"
    inside = {"accountId": ACCOUNT, "startTimestamp": created, "endTimestamp": created}
    assert len((await call(client, path, token, inside))["orders"]) == 1
    later = {"accountId": ACCOUNT, "startTimestamp": "2999-01-01T00:00:00Z"}
    assert (await call(client, path, token, later))["orders"] == []
    naive = {"accountId": ACCOUNT, "startTimestamp": "2000-01-01T00:00:00"}
    assert len((await call(client, path, token, naive))["orders"]) == 1
    other = {"accountId": UNKNOWN_ACCOUNT, "startTimestamp": created}
    assert await call(client, path, token, other) == failure(1, "Account not found", orders=None)


async def test_bracket_legs_show_up_as_orders(client: Client, token: str) -> None:
    brackets = {
        "stopLossBracket": {"ticks": -10, "type": 4},
        "takeProfitBracket": {"ticks": 20, "type": 1},
    }
    entry_id = await place(client, token, **brackets)
    entry, stop, target = await search(client, token)
    assert entry["id"] == entry_id
    assert (stop["type"], stop["side"], stop["status"], stop["parentOrderId"]) == (
        4,
        1,
        1,
        entry_id,
    )
    assert (target["type"], target["side"], target["status"], target["parentOrderId"]) == (
        1,
        1,
        1,
        entry_id,
    )
    assert stop["stopPrice"] == entry["filledPrice"] - 2.5
    assert target["limitPrice"] == entry["filledPrice"] + 5.0


async def test_bracket_sign_rejection(client: Client, token: str) -> None:
    body = order(side=1, takeProfitBracket={"ticks": 426, "type": 1})
    answer = await call(client, "/api/Order/place", token, body)
    assert answer == failure(
        2,
        "Invalid take profit ticks (426). Ticks should be less than zero when going short.",
        orderId=None,
    )


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"accountId": UNKNOWN_ACCOUNT}, failure(1, "Account not found", orderId=None)),
        ({"contractId": "CON.F.US.MNQ.H20"}, failure(8, "Contract not found", orderId=None)),
        ({"size": 0}, failure(2, "Invalid order size", orderId=None)),
        ({"type": 1}, failure(2, "Invalid limit price. Limit price not set.", orderId=None)),
        (
            {"type": 4, "stopPrice": 21000.1},
            failure(2, "Invalid stop price. Price is not aligned to tick size", orderId=None),
        ),
        ({"type": 5}, failure(2, "Invalid trail price. Trail price not set.", orderId=None)),
        ({"type": 0}, failure(2, "Unsupported order type (0)", orderId=None)),
    ],
)
async def test_place_rejections(
    client: Client, token: str, fields: dict[str, object], expected: dict[str, object]
) -> None:
    assert await call(client, "/api/Order/place", token, order(**fields)) == expected
    assert await sim_orders(client) == []


async def test_duplicate_tag(client: Client, token: str) -> None:
    await place(client, token, customTag="dup")
    again = await call(client, "/api/Order/place", token, order(customTag="dup"))
    assert again == failure(2, "Specified custom tag is already in use", orderId=None)
    assert len(await sim_orders(client)) == 1


async def test_search_open_modify_and_cancel(client: Client, token: str) -> None:
    resting = await place(client, token, type=1, limitPrice=20000)
    await place(client, token)
    open_body = {"accountId": ACCOUNT}
    [working] = (await call(client, "/api/Order/searchOpen", token, open_body))["orders"]
    assert (working["id"], working["status"]) == (resting, 1)

    modify = {"accountId": ACCOUNT, "orderId": resting, "size": 3, "limitPrice": 20001.25}
    ok = {"success": True, "errorCode": 0, "errorMessage": None}
    assert await call(client, "/api/Order/modify", token, modify) == ok
    [working] = (await call(client, "/api/Order/searchOpen", token, open_body))["orders"]
    assert (working["size"], working["limitPrice"]) == (3, 20001.25)

    cancel = {"accountId": ACCOUNT, "orderId": resting}
    assert await call(client, "/api/Order/cancel", token, cancel) == ok
    assert (await call(client, "/api/Order/searchOpen", token, open_body))["orders"] == []
    assert await call(client, "/api/Order/cancel", token, cancel) == failure(
        3, "Order is already cancelled"
    )
    assert await call(client, "/api/Order/modify", token, modify) == failure(
        3, "Order is not open (status Cancelled)"
    )


async def test_order_error_envelopes(client: Client, token: str) -> None:
    filled = await place(client, token)
    cancel = await call(client, "/api/Order/cancel", token, {"accountId": ACCOUNT, "orderId": 5})
    assert cancel == failure(2, "Order not found")
    cancel = await call(
        client, "/api/Order/cancel", token, {"accountId": ACCOUNT, "orderId": filled}
    )
    assert cancel == failure(3, "Order is already filled")
    modify = {"accountId": UNKNOWN_ACCOUNT, "orderId": filled, "size": 2}
    assert await call(client, "/api/Order/modify", token, modify) == failure(1, "Account not found")
    search_open = await call(client, "/api/Order/searchOpen", token, {"accountId": UNKNOWN_ACCOUNT})
    assert search_open == failure(1, "Account not found", orders=None)


# --- Position --------------------------------------------------------------------------


async def test_positions_and_close(client: Client, token: str) -> None:
    await place(client, token, size=2)
    body = {"accountId": ACCOUNT}
    [position] = (await call(client, "/api/Position/searchOpen", token, body))["positions"]
    assert (position["accountId"], position["contractId"]) == (ACCOUNT, MNQ)
    assert (position["type"], position["size"]) == (1, 2)
    assert ISO.match(position["creationTimestamp"])

    close = {"accountId": ACCOUNT, "contractId": MNQ}
    ok = {"success": True, "errorCode": 0, "errorMessage": None}
    assert await call(client, "/api/Position/closeContract", token, close) == ok
    assert (await call(client, "/api/Position/searchOpen", token, body))["positions"] == []
    assert await call(client, "/api/Position/closeContract", token, close) == failure(
        2, "Position not found"
    )
    flatten = (await sim_orders(client))[-1]
    assert (flatten["type"], flatten["side"], flatten["size"], flatten["status"]) == (2, 1, 2, 2)
    unknown = {"accountId": UNKNOWN_ACCOUNT}
    assert await call(client, "/api/Position/searchOpen", token, unknown) == failure(
        1, "Account not found", positions=None
    )


# --- HTTP 400 --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "error_key", "message"),
    [
        (b"{not json", "$", "JSON is malformed"),
        (
            b'{"accountId": 12345678, "contractId": "X", "type": 2, "side": 0, "size": "1"}',
            "$.size",
            "Expected `int`, got `str` - at `$.size`",
        ),
        (
            b'{"contractId": "X", "type": 2, "side": 0, "size": 1}',
            "$",
            "Object missing required field `accountId`",
        ),
        (
            b'{"accountId": 4294967296, "contractId": "X", "type": 2, "side": 0, "size": 1}',
            "$.accountId",
            "Expected `int` <= 2147483647",
        ),
        (b"null", "$", "Expected `object`, got `null`"),
        (b"", "request", "The request field is required."),
    ],
)
async def test_malformed_bodies_get_a_validation_problem(
    client: Client, token: str, body: bytes, error_key: str, message: str
) -> None:
    headers = {**bearer(token), "Content-Type": "application/json"}
    response = await client.post("/api/Order/place", data=body, headers=headers)
    assert response.status == 400
    assert response.content_type == "application/problem+json"
    problem = await response.json(content_type=None)
    assert problem["title"] == "One or more validation errors occurred."
    assert problem["status"] == 400
    assert "success" not in problem
    [(key, [text])] = problem["errors"].items()
    assert key == error_key
    assert message in text
    assert await sim_orders(client) == []


# --- what the gateway does not serve ---------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/Order/nope",
        "/nope",
        # Not in the spec's paths (jaypatrick/TopstepApi) nor in the docs' endpoint index.
        "/api/Order/searchById",
    ],
)
async def test_unknown_paths_get_an_empty_404(client: Client, token: str, path: str) -> None:
    response = await client.post(path, json={}, headers=bearer(token))
    assert response.status == 404
    assert await response.read() == b""


async def test_a_wrong_method_gets_an_empty_405(client: Client) -> None:
    response = await client.get("/api/Order/place")
    assert response.status == 405
    assert response.headers["Allow"] == "POST"
    assert await response.read() == b""
