"""The real-time hubs over real WebSockets, driven by a plain client written for the tests.

The tests play the venue: they publish through the app's Publisher and check what arrives.
"""

import asyncio
import dataclasses
import time
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from simulator.app import create_app
from simulator.hubs import HubSettings
from tests.integration.simulator.conftest import MakeClient
from tests.integration.simulator.helpers import ACCOUNT, CONFIG, MNQ, Client, bearer, call, login
from tests.integration.simulator.hub_helpers import (
    HANDSHAKE,
    RS,
    HubClient,
    hubs_state,
    publisher,
    until_subscribed,
)

OTHER_ACCOUNT = 12345679
ORDER = {"id": 9056, "accountId": ACCOUNT, "contractId": MNQ, "status": 1, "fillVolume": 0}


def hubs_config(**settings: Any) -> Any:
    """The tests' config with other hub settings."""
    return dataclasses.replace(CONFIG, hubs=HubSettings(**settings))


async def set_faults(client: Client, **faults: Any) -> None:
    response = await client.post("/_sim/faults", json=faults)
    assert response.status == 200, await response.text()


# --- Handshake, invocations, events --------------------------------------------------------


async def test_subscribe_with_an_invocation_id_then_receive_order_events(
    client: Client, token: str
) -> None:
    hub = await HubClient.connect(client, "user", token)
    completion = await hub.call("SubscribeOrders", ACCOUNT)
    assert completion == {"type": 3, "invocationId": "SubscribeOrders", "result": None}
    publisher(client).user(ACCOUNT, "GatewayUserOrder", ORDER)
    assert await hub.next_message() == {
        "type": 1,
        "target": "GatewayUserOrder",
        "arguments": [ORDER],
    }


async def test_a_fire_and_forget_subscription_gets_no_answer_but_takes_effect(
    client: Client, token: str
) -> None:
    hub = await HubClient.connect(client, "user", token)
    await hub.invoke("SubscribeOrders", ACCOUNT)
    await until_subscribed(client, f"orders:{ACCOUNT}")
    publisher(client).user(ACCOUNT, "GatewayUserOrder", ORDER)
    # The event is the very next message: no Completion was sent before it.
    assert (await hub.next_message())["target"] == "GatewayUserOrder"


async def test_each_user_target_reaches_only_its_subscribers(client: Client, token: str) -> None:
    a = await HubClient.connect(client, "user", token)
    b = await HubClient.connect(client, "user", token)
    for method in ("SubscribeAccounts", "SubscribeOrders", "SubscribePositions"):
        await a.call(method, *([] if method == "SubscribeAccounts" else [ACCOUNT]))
    await b.call("SubscribeTrades", ACCOUNT)
    await b.call("SubscribeOrders", OTHER_ACCOUNT)
    # A last event both hold tells that nothing else is coming before it.
    await a.call("SubscribeOrders", 12345680)
    await b.call("SubscribeOrders", 12345680)

    events = [
        (ACCOUNT, "GatewayUserAccount", {"id": ACCOUNT, "balance": 50000}),
        (OTHER_ACCOUNT, "GatewayUserAccount", {"id": OTHER_ACCOUNT, "balance": 1}),
        (ACCOUNT, "GatewayUserOrder", ORDER),
        (ACCOUNT, "GatewayUserPosition", {"id": 1, "size": 2, "type": 1}),
        (ACCOUNT, "GatewayUserTrade", {"id": 3, "price": 21000.25, "profitAndLoss": None}),
        (OTHER_ACCOUNT, "GatewayUserOrder", {"id": 9057, "accountId": OTHER_ACCOUNT}),
        (OTHER_ACCOUNT, "GatewayUserPosition", {"id": 2}),
    ]
    for account, target, payload in events:
        publisher(client).user(account, target, payload)
    publisher(client).user(12345680, "GatewayUserOrder", {"id": 0})

    async def received(hub: HubClient) -> list[tuple[str, Any]]:
        seen = []
        while (message := await hub.next_message())["arguments"] != [{"id": 0}]:
            seen.append((message["target"], message["arguments"][0]))
        return seen

    assert await received(a) == [(t, p) for _, t, p in events[:4]]
    assert await received(b) == [(t, p) for _, t, p in (events[4], events[5])]


async def test_market_events_carry_the_contract_id_then_the_payload(
    client: Client, token: str
) -> None:
    hub = await HubClient.connect(client, "market", token)
    for method in ("SubscribeContractQuotes", "SubscribeContractTrades"):
        await hub.call(method, MNQ)
    await hub.call("SubscribeContractMarketDepth", MNQ)
    quote = {"symbol": "F.US.MNQ", "lastPrice": 21000.25, "bestBid": 21000.0, "bestAsk": 21000.5}
    trades = [{"symbolId": "F.US.MNQ", "price": 21000.25, "type": 0, "volume": 1}]
    depth = [{"type": 4, "price": 21000.0, "volume": 3, "currentVolume": 3}]
    publisher(client).market("CON.F.US.MES.Z25", "GatewayQuote", {"other": True})
    publisher(client).market(MNQ, "GatewayQuote", quote)
    publisher(client).market(MNQ, "GatewayTrade", trades)
    publisher(client).market(MNQ, "GatewayDepth", depth)
    for target, payload in [("GatewayQuote", quote), ("GatewayTrade", trades)]:
        message = await hub.next_message()
        assert message == {"type": 1, "target": target, "arguments": [MNQ, payload]}
    assert (await hub.next_message())["arguments"] == [MNQ, depth]

    assert (await hub.call("UnsubscribeContractQuotes", MNQ))["result"] is None
    publisher(client).market(MNQ, "GatewayQuote", quote)
    publisher(client).market(MNQ, "GatewayTrade", trades)
    assert (await hub.next_message())["target"] == "GatewayTrade"


async def test_the_user_hub_does_not_serve_market_methods(client: Client, token: str) -> None:
    hub = await HubClient.connect(client, "user", token)
    completion = await hub.call("SubscribeContractQuotes", MNQ)
    assert completion["error"] == (
        "Failed to invoke 'SubscribeContractQuotes' due to an error on the server. "
        "HubException: Method does not exist."
    )
    assert "result" not in completion
    wrong = await hub.call("SubscribeOrders", str(ACCOUNT))
    assert wrong["error"] == "Failed to invoke 'SubscribeOrders' due to an error on the server."
    # A streaming invocation of a plain method is refused the same way ASP.NET Core does.
    await hub.send(type=4, invocationId="s1", target="SubscribeOrders", arguments=[ACCOUNT])
    assert (await hub.next_message())["error"] == (
        "The client attempted to invoke the non-streaming 'SubscribeOrders' method "
        "with a streaming invocation."
    )
    # None of it broke the connection.
    assert "result" in await hub.call("SubscribeOrders", ACCOUNT)


async def test_records_may_be_cut_and_joined_any_way_across_frames(
    client: Client, token: str
) -> None:
    hub = await HubClient.connect(client, "user", token, handshake=False)
    await hub.send_raw(HANDSHAKE[:7])
    await hub.send_raw(HANDSHAKE[7:] + '{"type":1,"invocationId":"a","target":"Subscr')
    await hub.send_raw(
        'ibeOrders","arguments":[12345678]}' + RS + '{"type":6}' + RS + '{"type":1,"invo'
    )
    await hub.send_raw('cationId":"b","target":"SubscribeAccounts","arguments":[]}' + RS)
    assert await hub.next() == {}
    assert await hub.next() == {"type": 3, "invocationId": "a", "result": None}
    assert await hub.next() == {"type": 3, "invocationId": "b", "result": None}


async def test_a_client_close_message_ends_the_connection(client: Client, token: str) -> None:
    hub = await HubClient.connect(client, "user", token)
    await hub.send(type=7)
    assert await hub.closing() is None
    assert (await hubs_state(client))["connections"] == []


# --- Negotiation ----------------------------------------------------------------------------


async def test_negotiate_version_1_then_connect_with_the_connection_token(
    client: Client, token: str
) -> None:
    response = await client.post(f"/hubs/user/negotiate?negotiateVersion=1&access_token={token}")
    assert response.status == 200
    answer = await response.json()
    assert set(answer) == {
        "negotiateVersion",
        "connectionId",
        "connectionToken",
        "availableTransports",
    }
    assert answer["negotiateVersion"] == 1
    assert answer["connectionToken"] != answer["connectionId"]
    assert answer["availableTransports"] == [
        {"transport": "WebSockets", "transferFormats": ["Text"]}
    ]
    # The connectionId is not what a version-1 client connects with.
    refused = await client.get(f"/hubs/user?id={answer['connectionId']}&access_token={token}")
    assert refused.status == 404

    hub = await HubClient.connect(client, "user", token, f"&id={answer['connectionToken']}")
    await hub.call("SubscribeOrders", ACCOUNT)
    publisher(client).user(ACCOUNT, "GatewayUserOrder", ORDER)
    assert (await hub.next_message())["arguments"] == [ORDER]
    assert (await hubs_state(client))["connections"][0]["negotiated"] is True

    # A connection token is good for one connection.
    again = await client.get(f"/hubs/user?id={answer['connectionToken']}&access_token={token}")
    assert again.status == 404
    assert await again.text() == "No Connection with that ID"


async def test_negotiate_without_a_version_uses_the_connection_id(
    client: Client, token: str
) -> None:
    response = await client.post("/hubs/market/negotiate", headers=bearer(token))
    answer = await response.json()
    assert "connectionToken" not in answer
    assert "negotiateVersion" not in answer
    hub = await HubClient.connect(client, "market", token, f"&id={answer['connectionId']}")
    assert "result" in await hub.call("SubscribeContractQuotes", MNQ)


async def test_a_negotiated_token_is_for_its_hub_its_user_and_a_short_while(
    make_client: MakeClient,
) -> None:
    client = await make_client(hubs_config(negotiate_ttl_s=0.2))
    token = await login(client)
    other = await login(client, user="someone-else")

    async def negotiated() -> str:
        response = await client.post(
            f"/hubs/user/negotiate?negotiateVersion=1&access_token={token}"
        )
        connection_token: str = (await response.json())["connectionToken"]
        return connection_token

    wrong_hub = await client.get(f"/hubs/market?id={await negotiated()}&access_token={token}")
    assert wrong_hub.status == 404
    wrong_user = await client.get(f"/hubs/user?id={await negotiated()}&access_token={other}")
    assert wrong_user.status == 403
    late = await negotiated()
    await asyncio.sleep(0.3)
    assert (await client.get(f"/hubs/user?id={late}&access_token={token}")).status == 404
    bad = await client.post(f"/hubs/user/negotiate?negotiateVersion=x&access_token={token}")
    assert bad.status == 400
    assert (await client.get(f"/hubs/user/negotiate?access_token={token}")).status == 405


# --- Authentication and refusal -------------------------------------------------------------


async def test_a_missing_or_bad_token_is_refused_with_401(client: Client, token: str) -> None:
    for query in ("", "?access_token=nope", "?access_token="):
        for method, path in (("GET", "/hubs/user"), ("POST", "/hubs/market/negotiate")):
            response = await client.request(method, path + query)
            assert response.status == 401, (method, path, query)
            assert response.headers["WWW-Authenticate"] == "Bearer"
            assert await response.read() == b""
    # A Bearer header works where the query parameter is absent.
    response = await client.post("/hubs/user/negotiate", headers=bearer(token))
    assert response.status == 200
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/hubs/user?access_token=nope")
    assert refused.value.status == 401
    assert (await hubs_state(client))["stats"]["refused"] == 7


async def test_a_plain_get_is_not_a_websocket(client: Client, token: str) -> None:
    response = await client.get(f"/hubs/user?access_token={token}")
    assert response.status == 400


async def test_refusing_hub_connections_spares_the_open_ones(client: Client, token: str) -> None:
    open_before = await HubClient.connect(client, "user", token)
    await open_before.call("SubscribeOrders", ACCOUNT)
    await set_faults(client, hub_refuse=True)
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect(f"/hubs/user?access_token={token}")
    assert refused.value.status == 503
    negotiate = await client.post(f"/hubs/user/negotiate?access_token={token}")
    assert negotiate.status == 503
    publisher(client).user(ACCOUNT, "GatewayUserOrder", ORDER)
    assert (await open_before.next_message())["arguments"] == [ORDER]

    await set_faults(client, hub_refuse=False)
    later = await HubClient.connect(client, "user", token)
    assert "result" in await later.call("SubscribeAccounts")


# --- Keep-alive, timeouts, token expiry ------------------------------------------------------


async def test_pings_both_ways_keep_a_connection_alive(make_client: MakeClient) -> None:
    client = await make_client(hubs_config(keep_alive_s=0.1, client_timeout_s=0.5))
    token = await login(client)
    hub = await HubClient.connect(client, "user", token)
    pings = 0
    started = time.monotonic()
    while time.monotonic() - started < 1.5:  # three client timeouts
        await hub.send(type=6)
        assert await hub.next() == {"type": 6}
        pings += 1
    assert pings >= 5
    assert len((await hubs_state(client))["connections"]) == 1


async def test_a_silent_client_is_closed_with_an_error(make_client: MakeClient) -> None:
    client = await make_client(hubs_config(keep_alive_s=0.1, client_timeout_s=0.4))
    token = await login(client)
    hub = await HubClient.connect(client, "user", token)
    close = await hub.closing()
    assert close == {
        "type": 7,
        "error": "Server timeout elapsed without receiving a message from the client.",
        "allowReconnect": True,
    }
    assert (await hubs_state(client))["stats"]["timed_out"] == 1


async def test_a_client_that_never_shakes_hands_is_cut_off(make_client: MakeClient) -> None:
    client = await make_client(hubs_config(handshake_timeout_s=0.2))
    token = await login(client)
    hub = await HubClient.connect(client, "user", token, handshake=False)
    await hub.send_raw(HANDSHAKE[:10])  # activity, but never a whole handshake
    assert await hub.closing() is None
    assert hub.closed_by_server
    assert (await hubs_state(client))["stats"]["timed_out"] == 1


async def test_a_connection_closes_when_its_token_expires(make_client: MakeClient) -> None:
    client = await make_client(dataclasses.replace(CONFIG, token_ttl_s=0.5))
    token = await login(client)
    hub = await HubClient.connect(client, "user", token)
    await hub.call("SubscribeOrders", ACCOUNT)
    started = time.monotonic()
    close = await hub.closing()
    assert time.monotonic() - started >= 0.3
    assert close == {
        "type": 7,
        "error": "Unauthorized: the access token expired or was revoked.",
        "allowReconnect": True,
    }
    assert (await hubs_state(client))["stats"]["expired"] == 1


async def test_logging_out_closes_the_connection_by_the_next_keep_alive(
    make_client: MakeClient,
) -> None:
    client = await make_client(hubs_config(keep_alive_s=0.2))
    token = await login(client)
    hub = await HubClient.connect(client, "market", token)
    await call(client, "/api/Auth/logout", token)
    close = await hub.closing()
    assert close is not None
    assert close["error"] == "Unauthorized: the access token expired or was revoked."


# --- Faults -----------------------------------------------------------------------------------


async def test_after_a_drop_a_reconnected_client_gets_new_events(
    client: Client, token: str
) -> None:
    user = await HubClient.connect(client, "user", token)
    market = await HubClient.connect(client, "market", token)
    await user.call("SubscribeOrders", ACCOUNT)
    await market.call("SubscribeContractQuotes", MNQ)

    response = await client.post("/_sim/hubs/drop", json={})
    assert await response.json() == {"dropped": 2}
    # abort: the socket is cut, no Close message.
    assert await user.closing() is None
    assert await market.closing() is None
    assert (await hubs_state(client))["connections"] == []
    publisher(client).user(ACCOUNT, "GatewayUserOrder", {"id": 1})  # nobody to get it

    again = await HubClient.connect(client, "user", token)
    await again.call("SubscribeOrders", ACCOUNT)
    publisher(client).user(ACCOUNT, "GatewayUserOrder", {"id": 2})
    assert (await again.next_message())["arguments"] == [{"id": 2}]
    assert (await hubs_state(client))["stats"]["dropped"] == 2


async def test_a_drop_can_close_one_hub_politely(client: Client, token: str) -> None:
    user = await HubClient.connect(client, "user", token)
    market = await HubClient.connect(client, "market", token)
    response = await client.post("/_sim/hubs/drop", json={"hub": "market", "mode": "close"})
    assert await response.json() == {"dropped": 1}
    assert await market.closing() == {
        "type": 7,
        "error": "Connection dropped by the simulator.",
        "allowReconnect": True,
    }
    assert "result" in await user.call("SubscribeAccounts")
    bad = await client.post("/_sim/hubs/drop", json={"mode": "explode"})
    assert bad.status == 400


async def test_delayed_events_arrive_late_and_in_order(client: Client, token: str) -> None:
    hub = await HubClient.connect(client, "user", token)
    await hub.call("SubscribeOrders", ACCOUNT)
    await set_faults(client, hub_delay_ms=300)
    started = time.monotonic()
    for i in range(3):
        publisher(client).user(ACCOUNT, "GatewayUserOrder", {"id": i})
    received = [(await hub.next_message())["arguments"][0]["id"] for _ in range(3)]
    assert time.monotonic() - started >= 0.3
    assert received == [0, 1, 2]


async def test_user_events_can_be_wrapped_as_the_live_gateway_sends_them(
    client: Client, token: str
) -> None:
    hub = await HubClient.connect(client, "user", token)
    await hub.call("SubscribeOrders", ACCOUNT)
    await hub.call("SubscribePositions", ACCOUNT)
    position = {"id": 7, "size": 1}

    await set_faults(client, hub_user_wrap="orders")
    publisher(client).user(ACCOUNT, "GatewayUserOrder", ORDER)
    publisher(client).user(ACCOUNT, "GatewayUserOrder", ORDER)
    publisher(client).user(ACCOUNT, "GatewayUserPosition", position)
    assert (await hub.next_message())["arguments"] == [{"action": 0, "data": ORDER}]
    assert (await hub.next_message())["arguments"] == [{"action": 1, "data": ORDER}]
    assert (await hub.next_message())["arguments"] == [position]

    await set_faults(client, hub_user_wrap="all")
    publisher(client).user(ACCOUNT, "GatewayUserPosition", position)
    assert (await hub.next_message())["arguments"] == [{"action": 0, "data": position}]


async def test_a_client_that_cannot_keep_up_is_closed_not_starved(
    make_client: MakeClient,
) -> None:
    client = await make_client(hubs_config(queue_limit=5))
    token = await login(client)
    slow = await HubClient.connect(client, "market", token)
    fine = await HubClient.connect(client, "market", token)
    await slow.call("SubscribeContractQuotes", MNQ)
    await fine.call("SubscribeContractTrades", MNQ)
    for i in range(10):  # synchronously: no sender runs in between
        publisher(client).market(MNQ, "GatewayQuote", {"n": i})
    publisher(client).market(MNQ, "GatewayTrade", [{"n": 0}])
    await slow.closing()
    assert slow.closed_by_server
    assert (await fine.next_message())["arguments"] == [MNQ, [{"n": 0}]]
    assert (await hubs_state(client))["stats"]["overflowed"] == 1


# --- Bad input ------------------------------------------------------------------------------


async def test_a_bad_handshake_is_answered_then_the_connection_closed(
    client: Client, token: str
) -> None:
    hub = await HubClient.connect(client, "user", token, handshake=False)
    await hub.send(protocol="messagepack", version=1)
    assert await hub.next() == {"error": "The protocol 'messagepack' is not supported."}
    await hub.closing()
    assert hub.closed_by_server


async def test_garbage_after_the_handshake_closes_with_an_error(client: Client, token: str) -> None:
    for garbage in ("{not json" + RS, '{"type":1}' + RS, "x" * 40_000):
        hub = await HubClient.connect(client, "user", token)
        await hub.send_raw(garbage)
        close = await hub.closing()
        assert close is not None
        assert close["error"].startswith("Connection closed with an error. InvalidDataException")
    # The server is unharmed.
    hub = await HubClient.connect(client, "user", token)
    assert "result" in await hub.call("SubscribeAccounts")


async def test_stopping_the_server_closes_clients_with_a_close_message(
    make_client: MakeClient,
) -> None:
    client = await make_client(CONFIG)
    token = await login(client)
    hub = await HubClient.connect(client, "market", token)
    stopping = asyncio.create_task(client.server.close())
    assert await hub.closing() == {"type": 7, "allowReconnect": True}
    await stopping


async def test_a_publisher_given_to_create_app_gets_every_change_too(
    make_client: MakeClient,
) -> None:
    class Recorder:
        def __init__(self) -> None:
            self.seen: list[tuple[object, str, object]] = []

        def user(self, account_id: int, target: str, payload: object) -> None:
            self.seen.append((account_id, target, payload))

        def market(self, contract_id: str, target: str, payload: object) -> None:
            self.seen.append((contract_id, target, payload))

    recorder = Recorder()
    client: Client = TestClient(
        TestServer(create_app(CONFIG, publisher=recorder), host="127.0.0.1")
    )
    await client.start_server()
    try:
        token = await login(client)
        hub = await HubClient.connect(client, "market", token)
        await hub.call("SubscribeContractQuotes", MNQ)
        publisher(client).user(ACCOUNT, "GatewayUserOrder", ORDER)
        publisher(client).market(MNQ, "GatewayQuote", {"lastPrice": 1})
        assert (await hub.next_message())["arguments"] == [MNQ, {"lastPrice": 1}]
        assert recorder.seen == [
            (ACCOUNT, "GatewayUserOrder", ORDER),
            (MNQ, "GatewayQuote", {"lastPrice": 1}),
        ]
    finally:
        await client.close()
