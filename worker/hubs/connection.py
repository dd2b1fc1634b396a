"""One SignalR hub connection of the gateway, held open: subscriptions renewed on every
(re)connect, payloads handed over as bytes, gaps reported.

The protocol is pysignalr's (a maintained asyncio SignalR client; see the README for why
it and not signalrcore). What is ours is the life around it: a new session after any
failure, with jittered back-off; a fresh session when the token changes (the hub closes a
connection whose token expires); and telling the listener each time the stream of events
may have had a gap (``on_gap``), so it proves the state by REST before trusting it.

Dead sockets are found by the WebSocket's own pings (every ``ping_s``, a connection that
does not answer within as long again is closed): a quiet account sending nothing for
minutes is not mistaken for a dead one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlencode

import msgspec
from pysignalr.client import SignalRClient

from ow_core.aio import cancel_and_wait
from ow_core.backoff import Backoff
from worker.broker.errors import BrokerError

log = logging.getLogger("worker.hubs")

Handler = Callable[[list[Any]], Awaitable[None]]
_ENCODE: Final = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class Subscription:
    """One hub method to invoke on every (re)connect, with its arguments."""

    method: str
    arguments: tuple[Any, ...] = ()


class HubConnection:
    """A hub connection that stays up until ``run`` is cancelled."""

    def __init__(
        self,
        url: str,
        token: Callable[[], Awaitable[str]],
        *,
        handlers: dict[str, Handler],
        subscriptions: Callable[[], Sequence[Subscription]],
        on_open: Callable[[], Awaitable[None]],
        on_gap: Callable[[str], None],
        ping_s: float = 10.0,
        first_retry_s: float = 0.5,
        last_retry_s: float = 30.0,
    ) -> None:
        self._url = url
        self._token = token
        self._handlers = handlers
        self._subscriptions = subscriptions
        self._on_open = on_open
        self._on_gap = on_gap
        self._ping_s = ping_s
        self._backoff = Backoff(first_retry_s, last_retry_s)
        self._renew = asyncio.Event()
        self._client: SignalRClient | None = None
        self.connected = asyncio.Event()
        """Set while a session is open and subscribed."""

    def renew(self) -> None:
        """The token changed: start a new session with it."""
        self._renew.set()

    async def subscribe(self, subscription: Subscription) -> None:
        """Invoke a subscription now (it is also renewed on every reconnect)."""
        client = self._client
        if client is not None and self.connected.is_set():
            await client.send(subscription.method, list(subscription.arguments))

    async def run(self) -> None:
        """Keep a session open until cancelled."""
        while True:
            token = await self._token()
            session = asyncio.create_task(self._session(token), name="hub-session")
            renew = asyncio.create_task(self._renew.wait(), name="hub-renew")
            done, _ = await asyncio.wait({session, renew}, return_when=asyncio.FIRST_COMPLETED)
            if renew in done:
                self._renew.clear()
                await cancel_and_wait([session])
                self._lost("the token was renewed")
                continue
            await cancel_and_wait([renew])
            error = session.exception() if not session.cancelled() else None
            self._lost(f"the session ended ({type(error).__name__ if error else 'closed'})")
            delay = self._backoff.next()
            log.warning("hub %s: reconnecting in %.1f s", self._path, delay)
            await asyncio.sleep(delay)

    @property
    def _path(self) -> str:
        return self._url.rsplit("/", 1)[-1]

    async def _session(self, token: str) -> None:
        client = SignalRClient(
            f"{self._url}?{urlencode({'access_token': token})}",
            # pysignalr renews the Authorization header from this on each handshake.
            access_token_factory=lambda: token,
            ping_interval=max(1, int(self._ping_s)),
            signalr_ping_interval=max(1, int(self._ping_s)),
            connection_timeout=10,
        )
        for target, handler in self._handlers.items():
            client.on(target, handler)

        async def opened() -> None:
            for subscription in self._subscriptions():
                await client.send(subscription.method, list(subscription.arguments))
            self._backoff.reset()
            self.connected.set()
            log.info("hub %s: connected and subscribed", self._path)
            await self._on_open()

        async def closed() -> None:
            self._lost("the connection closed")

        client.on_open(opened)
        client.on_close(closed)
        self._client = client
        try:
            await client.run()
        finally:
            self._client = None

    def _lost(self, why: str) -> None:
        if self.connected.is_set():
            self.connected.clear()
            log.warning("hub %s: %s; what it missed will be reconciled", self._path, why)
            self._on_gap(why)


def payload_of(arguments: list[Any], index: int = 0) -> bytes:
    """One argument of a hub invocation as JSON bytes (pysignalr has decoded it already)."""
    return _ENCODE.encode(arguments[index]) if len(arguments) > index else b"null"


class TokenKeeper:
    """Keeps a hub connection on the broker's current token. A quiet fleet makes no REST
    request that would renew it, and the hub closes at the token's expiry: asking for a
    token good for a while yet now and then keeps the session seamless."""

    def __init__(
        self,
        connection: HubConnection,
        ensure_token: Callable[[], Awaitable[str]],
        *,
        current: str | None,
        hub: str,
    ) -> None:
        self._connection = connection
        self._ensure = ensure_token
        self._token = current
        self._hub = hub

    async def tend(self) -> None:
        """Renew the token when due, and hand a new one to the connection."""
        try:
            token = await self._ensure()
        except BrokerError as error:
            log.warning("cannot renew the %s's token yet (%s)", self._hub, error.code)
            return
        if token != self._token:
            self._token = token
            self._connection.renew()
