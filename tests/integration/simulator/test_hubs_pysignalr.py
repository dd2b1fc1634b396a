"""A maintained SignalR client library, pysignalr (the worker's), against the simulator's hubs.

pysignalr 1.3's `SignalRClient` always negotiates; skipping negotiation is an option of its
`WebsocketTransport`, which the second test drives directly.
"""

import asyncio
from typing import Any

from pysignalr.client import SignalRClient
from pysignalr.messages import CompletionMessage, InvocationMessage, Message
from pysignalr.protocol.json import JSONProtocol
from pysignalr.transport.websocket import WebsocketTransport

from tests.integration.simulator.helpers import ACCOUNT, MNQ, Client
from tests.integration.simulator.hub_helpers import WAIT_S, hubs_state, publisher, running


async def test_pysignalr_negotiates_subscribes_receives_and_recovers_from_a_drop(
    client: Client, token: str
) -> None:
    url = str(client.make_url(f"/hubs/user?access_token={token}"))
    hub = SignalRClient(url)
    orders: asyncio.Queue[list[Any]] = asyncio.Queue()
    subscribed: asyncio.Queue[CompletionMessage] = asyncio.Queue()

    async def on_order(arguments: Any) -> None:
        await orders.put(arguments)

    async def on_subscribed(message: Message) -> None:
        assert isinstance(message, CompletionMessage)
        await subscribed.put(message)

    async def on_open() -> None:
        # Subscriptions belong to a connection: every (re)connect makes them again.
        arguments: list[Any] = [ACCOUNT]  # pysignalr annotates arguments as dicts only
        await hub.send("SubscribeOrders", arguments, on_subscribed)

    hub.on("GatewayUserOrder", on_order)
    hub.on_open(on_open)
    async with running(hub.run):
        completion = await asyncio.wait_for(subscribed.get(), WAIT_S)
        assert completion.error is None
        publisher(client).user(ACCOUNT, "GatewayUserOrder", {"id": 1, "status": 1})
        assert await asyncio.wait_for(orders.get(), WAIT_S) == [{"id": 1, "status": 1}]
        assert (await hubs_state(client))["connections"][0]["negotiated"] is True

        response = await client.post("/_sim/hubs/drop", json={})
        assert await response.json() == {"dropped": 1}
        # pysignalr reconnects by itself; its stale connection token is refused (404), so it
        # negotiates again, and on_open subscribes again.
        await asyncio.wait_for(subscribed.get(), WAIT_S)
        publisher(client).user(ACCOUNT, "GatewayUserOrder", {"id": 1, "status": 2})
        assert await asyncio.wait_for(orders.get(), WAIT_S) == [{"id": 1, "status": 2}]
        assert orders.empty()
    assert (await hubs_state(client))["stats"]["opened"] == 2


async def test_pysignalr_without_negotiation_on_the_market_hub(client: Client, token: str) -> None:
    url = str(client.make_url(f"/hubs/market?access_token={token}")).replace("http", "ws", 1)
    received: asyncio.Queue[Message] = asyncio.Queue()
    transport = WebsocketTransport(
        url=url, protocol=JSONProtocol(), callback=received.put, skip_negotiation=True
    )
    async with running(transport.run):
        await transport.send(InvocationMessage("q", "SubscribeContractQuotes", [MNQ]))
        completion = await asyncio.wait_for(received.get(), WAIT_S)
        assert isinstance(completion, CompletionMessage)
        assert completion.invocation_id == "q"
        assert completion.error is None
        quote = {"symbol": "F.US.MNQ", "lastPrice": 21000.25}
        publisher(client).market(MNQ, "GatewayQuote", quote)
        event = await asyncio.wait_for(received.get(), WAIT_S)
        assert isinstance(event, InvocationMessage)
        assert event.target == "GatewayQuote"
        assert event.arguments == [MNQ, quote]
    assert (await hubs_state(client))["stats"]["opened"] == 1
