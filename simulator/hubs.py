"""The real-time hubs: `/hubs/user` and `/hubs/market` over WebSocket, and the Publisher.

The venue calls `HubServer.user` / `HubServer.market` (synchronously) for every change; the
server encodes the event once and queues it on every connection subscribed to that account
or contract. Each connection has one sender task that drains its queue in order, so a
publish never waits for a socket. A queue that reaches `HubSettings.queue_limit` (a client
that does not read) closes that connection: a visible gap the client reconciles after it
reconnects, never a silent loss of events.

The pure parts (method binding, which subscription a target needs, the user-event envelope)
are plain functions and classes here; the wire protocol is `simulator/signalr.py`.
"""

import asyncio
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal

import msgspec
from aiohttp import WSMsgType, hdrs, web

from simulator.faults import FaultConfig, UserEventWrap
from simulator.signalr import (
    Close,
    Completion,
    Event,
    Handshaken,
    HandshakeRejected,
    Invocation,
    Ping,
    ServerProtocol,
    StreamInvocation,
    Violation,
    encode,
)
from simulator.tokens import TokenStore

# ASP.NET Core SignalR defaults (HubOptions, HttpConnectionDispatcherOptions).
KEEP_ALIVE_S = 15.0
CLIENT_TIMEOUT_S = 30.0
HANDSHAKE_TIMEOUT_S = 15.0


@dataclass(frozen=True, slots=True)
class HubSettings:
    """Timing and limits of the hubs; the defaults are ASP.NET Core SignalR's where it has one."""

    keep_alive_s: float = KEEP_ALIVE_S  # a Ping goes out after this long without a send
    client_timeout_s: float = CLIENT_TIMEOUT_S  # closed after this long without a message
    handshake_timeout_s: float = HANDSHAKE_TIMEOUT_S
    negotiate_ttl_s: float = 15.0  # a negotiated connection token must be used within this
    max_message_bytes: int = 32 * 1024  # one received record
    queue_limit: int = 10_000  # messages waiting to be sent on one connection
    close_timeout_s: float = 2.0  # for the client's close frame, then the socket is cut


class Hub(Enum):
    """The two hubs."""

    USER = "user"
    MARKET = "market"


class Topic(Enum):
    """What a subscription is to; the key is an account ID, a contract ID or nothing."""

    ACCOUNTS = "accounts"
    ORDERS = "orders"
    POSITIONS = "positions"
    USER_TRADES = "trades"
    QUOTES = "quotes"
    MARKET_TRADES = "marketTrades"
    DEPTH = "depth"


Key = tuple[Topic, int | str | None]

# Which subscription receives each target (the gateway's realtime docs pair them this way).
USER_TARGETS = {
    "GatewayUserAccount": Topic.ACCOUNTS,
    "GatewayUserOrder": Topic.ORDERS,
    "GatewayUserPosition": Topic.POSITIONS,
    "GatewayUserTrade": Topic.USER_TRADES,
}
MARKET_TARGETS = {
    "GatewayQuote": Topic.QUOTES,
    "GatewayTrade": Topic.MARKET_TRADES,
    "GatewayDepth": Topic.DEPTH,
}


@dataclass(frozen=True, slots=True)
class Method:
    """A hub method a client can invoke: it adds or removes one subscription."""

    name: str
    topic: Topic
    subscribe: bool
    argument: type[int] | type[str] | None  # None: the method takes no argument


def _pair(suffix: str, topic: Topic, argument: type[int] | type[str] | None) -> list[Method]:
    return [
        Method("Subscribe" + suffix, topic, True, argument),
        Method("Unsubscribe" + suffix, topic, False, argument),
    ]


def _table(methods: list[Method]) -> dict[str, Method]:
    # ASP.NET Core looks hub methods up case-insensitively.
    return {m.name.lower(): m for m in methods}


METHODS = {
    Hub.USER: _table(
        _pair("Accounts", Topic.ACCOUNTS, None)
        + _pair("Orders", Topic.ORDERS, int)
        + _pair("Positions", Topic.POSITIONS, int)
        + _pair("Trades", Topic.USER_TRADES, int)
    ),
    Hub.MARKET: _table(
        _pair("ContractQuotes", Topic.QUOTES, str)
        + _pair("ContractTrades", Topic.MARKET_TRADES, str)
        + _pair("ContractMarketDepth", Topic.DEPTH, str)
    ),
}


def bind(hub: Hub, target: str, arguments: list[Any]) -> tuple[Method, Key] | str:
    """The method and subscription an invocation names, or the error text its caller gets.

    The texts are ASP.NET Core's: a HubException's message is always shown, binding
    failures (wrong count or type of arguments) only in general terms.
    """
    method = METHODS[hub].get(target.lower())
    if method is None:
        return (
            f"Failed to invoke '{target}' due to an error on the server. "
            "HubException: Method does not exist."
        )
    expected = 0 if method.argument is None else 1
    if len(arguments) != expected:
        return f"Failed to invoke '{target}' due to an error on the server."
    if method.argument is None:
        return method, (method.topic, None)
    try:
        # strict: like System.Text.Json, no "1" for an int, no 1.0, no true.
        value = msgspec.convert(arguments[0], method.argument, strict=True)
    except msgspec.ValidationError:
        return f"Failed to invoke '{target}' due to an error on the server."
    return method, (method.topic, value)


def describe(key: Key) -> str:
    """A subscription as GET /_sim/hubs lists it: `orders:12345678`, `accounts`."""
    topic, value = key
    return topic.value if value is None else f"{topic.value}:{value}"


class Envelopes:
    """The user hub's argument framing, and the `action` numbers of wrapped events.

    Wrapped, an event is `{"action": N, "data": payload}`; N is 0 the first time an event
    with that target's entity ID goes to a subscriber and 1 after that (create, then update,
    as one public client documents it; no source says when the gateway sends 2, delete).
    """

    def __init__(self) -> None:
        self._seen: set[tuple[str, object]] = set()

    def arguments(self, wrap: UserEventWrap, target: str, payload: object) -> list[object]:
        """The invocation arguments of one user-hub event."""
        if wrap == "none" or (wrap == "orders" and target != "GatewayUserOrder"):
            return [payload]
        return [{"action": self._action(target, payload), "data": payload}]

    def _action(self, target: str, payload: object) -> int:
        fields = msgspec.to_builtins(payload)
        entity = fields.get("id") if isinstance(fields, dict) else None
        if entity is None or (target, entity) in self._seen:
            return 1
        self._seen.add((target, entity))
        return 0


@dataclass(slots=True)
class HubStats:
    """Counters served by GET /_sim/hubs."""

    opened: int = 0  # WebSocket connections accepted
    refused: int = 0  # connections and negotiations answered 401, 403, 404 or 503
    published: int = 0  # Publisher calls
    delivered: int = 0  # event messages written to sockets
    overflowed: int = 0  # connections closed because their queue was full
    dropped: int = 0  # connections closed by POST /_sim/hubs/drop
    expired: int = 0  # connections closed because their token expired or was revoked
    timed_out: int = 0  # connections closed for silence or a missing handshake


@dataclass(frozen=True, slots=True)
class _Negotiated:
    hub: Hub
    user: str
    expires_at: float  # monotonic


@dataclass(slots=True)
class _Outgoing:
    text: str
    due: float  # monotonic
    event: bool  # counted as delivered once written


_PING = encode(Ping()).decode()
DropMode = Literal["abort", "close"]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class DropRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Body of POST /_sim/hubs/drop; every field optional."""

    hub: Hub | None = None  # None: both hubs
    mode: DropMode = "abort"  # abort: cut the socket; close: Close message, then close


@dataclass(eq=False)
class Connection:
    """One client of one hub, from the WebSocket upgrade to the close."""

    server: "HubServer"
    hub: Hub
    user: str
    token: str
    negotiated: bool
    request: web.Request
    ws: web.WebSocketResponse
    id: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    subscriptions: set[Key] = field(default_factory=set)
    handshaken: bool = False
    closing: bool = False
    _queue: deque[_Outgoing] = field(default_factory=deque)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _last_received: float = field(default_factory=time.monotonic)
    _opened: float = field(default_factory=time.monotonic)
    _tasks: list["asyncio.Task[None]"] = field(default_factory=list)
    _closer: "asyncio.Task[None] | None" = None

    def enqueue(self, text: str, due: float, event: bool = True) -> None:
        """Queue one message; closes the connection when its queue is full."""
        if self.closing:
            return
        if len(self._queue) >= self.server.settings.queue_limit:
            self.server.stats.overflowed += 1
            self.request_close(abort=True)
            return
        self._queue.append(_Outgoing(text, due, event))
        self._wake.set()

    def request_close(
        self, error: str | None = None, allow_reconnect: bool | None = None, abort: bool = False
    ) -> None:
        """Start closing: a Close message (unless `abort`), then the WebSocket close.

        Synchronous, so the publisher and the timers can call it; the handler awaits it.
        """
        self._shutdown(_closing_text(error, allow_reconnect), abort)

    def _shutdown(self, final: str | None, abort: bool) -> None:
        if self.closing:
            return
        self.closing = True
        self.server.forget(self)
        self._closer = asyncio.create_task(self._close(final, abort))

    async def _close(self, final: str | None, abort: bool) -> None:
        timeout = self.server.settings.close_timeout_s
        if not abort:
            try:
                if final is not None:
                    await asyncio.wait_for(self.ws.send_str(final), timeout)
                await asyncio.wait_for(self.ws.close(), timeout)
                return
            except (OSError, RuntimeError, TimeoutError):
                pass  # the socket is already gone or the client never answered: cut it
        if self.request.transport is not None:
            self.request.transport.abort()

    async def run(self) -> None:
        """Serve the connection until it closes: read here, send and watch in two tasks."""
        protocol = ServerProtocol(self.server.settings.max_message_bytes)
        self._tasks = [asyncio.create_task(self._send()), asyncio.create_task(self._watch())]
        try:
            async for frame in self.ws:
                if frame.type is WSMsgType.TEXT:
                    data: bytes = frame.data.encode()
                elif frame.type is WSMsgType.BINARY:
                    data = frame.data
                else:
                    break
                self._last_received = time.monotonic()
                for event in protocol.receive(data):
                    self._on(event)
        finally:
            self.closing = True
            self.server.forget(self)
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            if self._closer is not None:
                await self._closer

    def _on(self, event: Event) -> None:
        if self.closing:
            return  # e.g. records after the client's own Close in the same frame
        now = time.monotonic()
        if isinstance(event, Handshaken):
            self.handshaken = True
            self.enqueue(event.reply.decode(), now, event=False)
        elif isinstance(event, HandshakeRejected):
            # The handshake answer is the last thing sent; no Close message follows it.
            self._shutdown(event.reply.decode(), abort=False)
        elif isinstance(event, Violation):
            self.request_close(event.error)
        elif isinstance(event, Invocation):
            self._invoke(event, now)
        elif isinstance(event, StreamInvocation):
            reply = Completion(
                invocation_id=event.invocation_id,
                error=f"The client attempted to invoke the non-streaming '{event.target}' "
                "method with a streaming invocation.",
            )
            self.enqueue(encode(reply).decode(), now, event=False)
        elif isinstance(event, Close):
            self._shutdown(None, abort=False)
        # Ping, Completion, StreamItem, CancelInvocation: nothing to answer.

    def _invoke(self, invocation: Invocation, now: float) -> None:
        bound = bind(self.hub, invocation.target, invocation.arguments)
        if isinstance(bound, tuple):
            method, key = bound
            self.server.subscribe(self, key, method.subscribe)
        if not isinstance(invocation.invocation_id, str):
            return  # fire-and-forget: ASP.NET Core answers nothing, not even an error
        if isinstance(bound, str):
            reply = Completion(invocation_id=invocation.invocation_id, error=bound)
        else:
            reply = Completion(invocation_id=invocation.invocation_id, result=None)
        self.enqueue(encode(reply).decode(), now, event=False)

    async def _send(self) -> None:
        """Write the queue in order, each message once it is due; Ping when idle.

        Stops at the first sign of closing, so nothing follows a Close message.
        """
        keep_alive = self.server.settings.keep_alive_s
        try:
            while not self.closing:
                if not self._queue:
                    self._wake.clear()
                    try:
                        await asyncio.wait_for(self._wake.wait(), keep_alive)
                    except TimeoutError:
                        if not self.closing:
                            await self.ws.send_str(_PING)
                    continue
                wait = self._queue[0].due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                    continue
                item = self._queue.popleft()
                await self.ws.send_str(item.text)
                if item.event:
                    self.server.stats.delivered += 1
        except (OSError, RuntimeError):
            self.request_close(abort=True)

    async def _watch(self) -> None:
        """Close on a token that stopped working, on silence and on a missing handshake.

        Wakes at the next deadline, and at least every keep-alive interval so a revoked
        token (logout) is noticed too.
        """
        settings = self.server.settings
        handshake_due = self._opened + settings.handshake_timeout_s
        while True:
            now, wall = time.monotonic(), time.time()
            session = self.server.tokens.session(self.token, wall)
            if session is None:
                self.server.stats.expired += 1
                self.request_close("Unauthorized: the access token expired or was revoked.", True)
                return
            silence_due = self._last_received + settings.client_timeout_s
            if not self.handshaken and now >= handshake_due:
                # Before the handshake no hub message can be sent, not even a Close.
                self.server.stats.timed_out += 1
                self._shutdown(None, abort=False)
                return
            if now >= silence_due:
                self.server.stats.timed_out += 1
                self.request_close(
                    "Server timeout elapsed without receiving a message from the client.", True
                )
                return
            deadlines = [silence_due, now + settings.keep_alive_s, now + session.expires_at - wall]
            if not self.handshaken:
                deadlines.append(handshake_due)
            await asyncio.sleep(min(deadlines) - now)


def _closing_text(error: str | None, allow_reconnect: bool | None) -> str:
    close = Close(
        error=msgspec.UNSET if error is None else error,
        allow_reconnect=msgspec.UNSET if allow_reconnect is None else allow_reconnect,
    )
    return encode(close).decode()


class HubServer:
    """Both hubs: their HTTP routes, their connections, and the venue's Publisher.

    `create_app` makes it before the Simulator (whose venue publishes into it) and then
    `attach`es the Simulator's token store and fault settings.
    """

    def __init__(self, settings: HubSettings | None = None) -> None:
        self.settings = settings or HubSettings()
        self.stats = HubStats()
        # Until attached, no token is valid and no fault is set.
        self.tokens = TokenStore()
        self._faults: Callable[[], FaultConfig] = FaultConfig
        self._envelopes = Envelopes()
        self._connections: set[Connection] = set()
        self._subscribers: dict[tuple[Hub, Key], set[Connection]] = {}
        self._negotiated: dict[str, _Negotiated] = {}

    def attach(self, tokens: TokenStore, faults: Callable[[], FaultConfig]) -> None:
        """Validate tokens with `tokens` and read the current fault settings from `faults`."""
        self.tokens = tokens
        self._faults = faults

    def add_routes(self, router: web.UrlDispatcher) -> None:
        """The hub endpoints and their /_sim controls."""
        for hub in Hub:
            router.add_get(f"/hubs/{hub.value}", self._connect_handler(hub))
            router.add_post(f"/hubs/{hub.value}/negotiate", self._negotiate_handler(hub))
        router.add_get("/_sim/hubs", self._sim_hubs)
        router.add_post("/_sim/hubs/drop", self._sim_drop)

    # --- Publisher ---------------------------------------------------------------------

    def user(self, account_id: int, target: str, payload: object) -> None:
        """Push a user-hub event to the account's subscribers of that target."""
        topic = USER_TARGETS.get(target)
        if topic is None:
            raise ValueError(f"not a user hub target: {target!r}")
        key: Key = (topic, None if topic is Topic.ACCOUNTS else account_id)
        self.stats.published += 1
        subscribers = self._subscribers.get((Hub.USER, key))
        if subscribers:
            wrap = self._faults().hub_user_wrap
            self._push(subscribers, target, self._envelopes.arguments(wrap, target, payload))

    def market(self, contract_id: str, target: str, payload: object) -> None:
        """Push a market-hub event to the contract's subscribers of that target."""
        topic = MARKET_TARGETS.get(target)
        if topic is None:
            raise ValueError(f"not a market hub target: {target!r}")
        self.stats.published += 1
        subscribers = self._subscribers.get((Hub.MARKET, (topic, contract_id)))
        if subscribers:
            self._push(subscribers, target, [contract_id, payload])

    def _push(self, subscribers: set[Connection], target: str, arguments: list[object]) -> None:
        text = encode(Invocation(target=target, arguments=arguments)).decode()
        due = time.monotonic() + self._faults().hub_delay_ms / 1000
        # A copy: a full queue closes its connection, which leaves the set.
        for connection in list(subscribers):
            connection.enqueue(text, due)

    # --- Connections -------------------------------------------------------------------

    def subscribe(self, connection: Connection, key: Key, on: bool) -> None:
        """Add or remove one subscription of a connection (both are idempotent)."""
        index = (connection.hub, key)
        if on:
            connection.subscriptions.add(key)
            self._subscribers.setdefault(index, set()).add(connection)
            return
        connection.subscriptions.discard(key)
        subscribers = self._subscribers.get(index)
        if subscribers is not None:
            subscribers.discard(connection)
            if not subscribers:
                del self._subscribers[index]

    def forget(self, connection: Connection) -> None:
        """A closing connection gets nothing more."""
        for key in list(connection.subscriptions):
            self.subscribe(connection, key, on=False)
        self._connections.discard(connection)

    def connections(self, hub: Hub | None = None) -> Iterator[Connection]:
        """The open connections, of one hub or both."""
        return (c for c in list(self._connections) if hub is None or c.hub is hub)

    def drop(self, hub: Hub | None, mode: DropMode) -> int:
        """Close every connection of `hub` (or both) now; how many there were."""
        dropped = list(self.connections(hub))
        for connection in dropped:
            if mode == "abort":
                connection.request_close(abort=True)
            else:
                connection.request_close("Connection dropped by the simulator.", True)
        self.stats.dropped += len(dropped)
        return len(dropped)

    async def shutdown(self, app: web.Application) -> None:
        """on_shutdown: close every connection cleanly, as a stopping server does."""
        for connection in self.connections():
            connection.request_close(allow_reconnect=True)

    # --- HTTP --------------------------------------------------------------------------

    def _authenticate(self, request: web.Request) -> tuple[str, str] | web.Response:
        """The caller's user and token, or the response that refuses it.

        The token is the `access_token` query parameter (what browsers and most SignalR
        clients send) or, failing that, a Bearer header.
        """
        if self._faults().hub_refuse:
            return web.Response(status=503)
        token = request.query.get("access_token")
        if token is None:
            scheme, _, token = request.headers.get(hdrs.AUTHORIZATION, "").partition(" ")
            token = token if scheme.lower() == "bearer" else ""
        user = self.tokens.user_of(token, time.time()) if token else None
        if user is None:
            # The JwtBearer challenge, as the REST API answers (docs/gateway.md §1).
            return web.Response(status=401, headers={hdrs.WWW_AUTHENTICATE: "Bearer"})
        return user, token

    def _negotiate_handler(self, hub: Hub) -> Handler:
        async def negotiate(request: web.Request) -> web.Response:
            caller = self._authenticate(request)
            if isinstance(caller, web.Response):
                self.stats.refused += 1
                return caller
            try:
                version = int(request.query.get("negotiateVersion", "0"))
            except ValueError:
                version = -1
            if version < 0:
                raise web.HTTPBadRequest(
                    text=f"The client requested an invalid protocol version "
                    f"'{request.query['negotiateVersion']}'"
                )
            return web.json_response(self._negotiate(hub, caller[0], version))

        return negotiate

    def _negotiate(self, hub: Hub, user: str, version: int) -> dict[str, object]:
        now = time.monotonic()
        for token, pending in list(self._negotiated.items()):
            if pending.expires_at <= now:
                del self._negotiated[token]
        connection_id = secrets.token_urlsafe(16)
        # Version 0 clients connect with the connectionId; version 1 with a separate token.
        token = secrets.token_urlsafe(16) if version >= 1 else connection_id
        self._negotiated[token] = _Negotiated(hub, user, now + self.settings.negotiate_ttl_s)
        answer: dict[str, object] = {"connectionId": connection_id}
        if version >= 1:
            answer = {"negotiateVersion": 1, **answer, "connectionToken": token}
        answer["availableTransports"] = [{"transport": "WebSockets", "transferFormats": ["Text"]}]
        return answer

    def _connect_handler(self, hub: Hub) -> Handler:
        async def connect(request: web.Request) -> web.StreamResponse:
            negotiated = request.query.get("id")
            caller = self._authenticate(request)
            if isinstance(caller, web.Response):
                self.stats.refused += 1
                return caller
            user, token = caller
            refused = self._claim(hub, user, negotiated)
            ws = web.WebSocketResponse(
                timeout=self.settings.close_timeout_s,
                autoping=True,
                compress=False,  # ASP.NET Core does not negotiate permessage-deflate
                max_msg_size=4 * self.settings.max_message_bytes,
            )
            if refused is None and not ws.can_prepare(request).ok:
                refused = web.Response(status=400, text="Only WebSockets are supported.")
            if refused is not None:
                self.stats.refused += 1
                return refused
            await ws.prepare(request)
            connection = Connection(self, hub, user, token, negotiated is not None, request, ws)
            self._connections.add(connection)
            self.stats.opened += 1
            await connection.run()
            return ws

        return connect

    def _claim(self, hub: Hub, user: str, token: str | None) -> web.Response | None:
        """Use up a negotiated connection token, or the response that refuses it."""
        if token is None:
            return None  # skipNegotiation: straight to the WebSocket
        pending = self._negotiated.pop(token, None)
        if pending is None or pending.hub is not hub or pending.expires_at <= time.monotonic():
            return web.Response(status=404, text="No Connection with that ID")
        if pending.user != user:
            return web.Response(status=403)
        return None

    async def _sim_hubs(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "connections": [
                    {
                        "id": c.id,
                        "hub": c.hub.value,
                        "user": c.user,
                        "negotiated": c.negotiated,
                        "subscriptions": sorted(describe(k) for k in c.subscriptions),
                    }
                    for c in self.connections()
                ],
                "stats": msgspec.to_builtins(self.stats),
            }
        )

    async def _sim_drop(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body = msgspec.json.decode(raw, type=DropRequest) if raw else DropRequest()
        except msgspec.MsgspecError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"dropped": self.drop(body.hub, body.mode)})
