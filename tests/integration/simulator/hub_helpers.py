"""A plain SignalR JSON-protocol client over aiohttp's WebSocket, written for the hub tests.

It is deliberately naive (no reconnects, no library): what the tests check is the wire.
"""

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from simulator.app import SIMULATOR
from simulator.publish import Publisher
from tests.integration.simulator.helpers import Client

RS = "\x1e"
HANDSHAKE = json.dumps({"protocol": "json", "version": 1}) + RS
WAIT_S = 5.0  # generous bound for anything the server should do at once


class HubClient:
    """One hub connection: send records, read them one at a time."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self._records: list[dict[str, Any]] = []
        self._tail = ""
        self._barriers = itertools.count()
        self.closed_by_server = False

    @classmethod
    async def connect(
        cls,
        client: Client,
        hub: str,
        token: str,
        query: str = "",
        handshake: bool = True,
        *,
        negotiate: bool = False,
    ) -> "HubClient":
        """Open `/hubs/<hub>?access_token=...` and, unless told not to, shake hands.

        With `negotiate`, first POST the hub's negotiate (version 1) and connect with the
        connection token it hands out, as a client that does not skip negotiation does.
        """
        if negotiate:
            response = await client.post(
                f"/hubs/{hub}/negotiate?negotiateVersion=1&access_token={token}"
            )
            assert response.status == 200, await response.text()
            query += f"&id={(await response.json())['connectionToken']}"
        ws = await client.ws_connect(f"/hubs/{hub}?access_token={token}{query}")
        connection = cls(ws)
        if handshake:
            await connection.send_raw(HANDSHAKE)
            assert await connection.next() == {}
        return connection

    async def send_raw(self, text: str) -> None:
        """Send one WebSocket text frame as it is."""
        await self.ws.send_str(text)

    async def send(self, **message: Any) -> None:
        """Send one record."""
        await self.send_raw(json.dumps(message) + RS)

    async def invoke(self, target: str, *arguments: Any, invocation_id: str | None = None) -> None:
        """Send an Invocation, with an invocationId only if one is given."""
        message: dict[str, Any] = {"type": 1, "target": target, "arguments": list(arguments)}
        if invocation_id is not None:
            message["invocationId"] = invocation_id
        await self.send(**message)

    async def call(self, target: str, *arguments: Any) -> dict[str, Any]:
        """Invoke with an invocationId and return the Completion (pings skipped)."""
        await self.invoke(target, *arguments, invocation_id=target)
        completion = await self.next_message()
        assert completion["type"] == 3
        assert completion["invocationId"] == target
        return completion

    async def received(self) -> list[tuple[str, list[Any]]]:
        """Every event (target, arguments) sent to this connection so far, in order.

        The server answers an invocation behind everything queued before it arrived, so the
        Completion of an invocation that changes nothing (a method the hub does not have)
        marks the end of what was published before this call: no sleeping, no guessing.
        """
        barrier = f"barrier-{next(self._barriers)}"
        await self.invoke("Barrier", invocation_id=barrier)
        events = []
        while (message := await self.next_message()).get("invocationId") != barrier:
            assert message["type"] == 1, message
            events.append((message["target"], message["arguments"]))
        return events

    async def next(self, timeout: float = WAIT_S) -> dict[str, Any]:
        """The next record, whatever it is; raises if the connection ends first."""
        async with asyncio.timeout(timeout):
            while not self._records:
                frame = await self.ws.receive()
                if frame.type is not aiohttp.WSMsgType.TEXT:
                    self.closed_by_server = True
                    raise ConnectionError(f"connection ended: {frame.type.name}")
                *records, self._tail = (self._tail + frame.data).split(RS)
                self._records.extend(json.loads(r) for r in records if r)
        return self._records.pop(0)

    async def next_message(self, timeout: float = WAIT_S) -> dict[str, Any]:
        """The next record that is not a Ping."""
        async with asyncio.timeout(timeout):
            while (record := await self.next()) == {"type": 6}:
                pass
        return record

    async def closing(self, timeout: float = WAIT_S) -> dict[str, Any] | None:
        """Read until the server ends the connection; its Close message, if it sent one."""
        close: dict[str, Any] | None = None
        try:
            async with asyncio.timeout(timeout):
                while True:
                    record = await self.next()
                    if record.get("type") == 7:
                        close = record
        except ConnectionError:
            return close

    async def close(self) -> None:
        """Close the WebSocket from this side."""
        await self.ws.close()


@asynccontextmanager
async def running(run: Callable[[], Coroutine[Any, Any, None]]) -> AsyncIterator[None]:
    """Run a client library's loop (pysignalr's `run`) for the block, then stop it."""
    task = asyncio.create_task(run())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert task.cancelled(), task  # it was still serving, not crashed


def publisher(client: Client) -> Publisher:
    """The running app's publisher, through which the tests play the venue."""
    return client.app[SIMULATOR].publisher


async def hubs_state(client: Client) -> dict[str, Any]:
    """GET /_sim/hubs."""
    response = await client.get("/_sim/hubs")
    assert response.status == 200
    state: dict[str, Any] = await response.json()
    return state


async def until_subscribed(client: Client, subscription: str, count: int = 1) -> None:
    """Wait (bounded) until `count` connections hold the subscription.

    Fire-and-forget invocations get no answer, so this is how a test knows one took effect.
    """
    async with asyncio.timeout(WAIT_S):
        while True:
            state = await hubs_state(client)
            held = [c for c in state["connections"] if subscription in c["subscriptions"]]
            if len(held) >= count:
                return
            await asyncio.sleep(0.01)
