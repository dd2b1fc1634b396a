"""The paper venue's changes on the real-time hubs, over real HTTP and real WebSockets.

Nothing here is published by the test: every event is the venue's own doing, after an
Order/place, modify, cancel or Position/close over REST, or a price set with POST
/_sim/price. A plain SignalR client written for the tests (hub_helpers.HubClient) reads the
wire, and every test runs twice: with a client that negotiates first and with one that
skips negotiation. Payloads are compared whole, decoded from the frames' JSON, so a price
sent as a string ("21000.250000000") would not equal the float a JSON number decodes to.

MNQ sits at 21000 until moved, bid 21000 and ask 21000.25; it moves $2 a point and costs
$0.37 a contract per fill. The venue's clock is pinned, so timestamps are known.
"""

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pysignalr.client import SignalRClient
from pysignalr.messages import CompletionMessage, Message

from simulator.app import SIMULATOR
from tests.integration.simulator.conftest import MakeClient
from tests.integration.simulator.helpers import (
    ACCOUNT,
    CONFIG,
    MNQ,
    Client,
    call,
    login,
    order,
)
from tests.integration.simulator.hub_helpers import WAIT_S, HubClient, hubs_state, running

NOW = datetime(2025, 11, 25, 15, 0, tzinfo=UTC)  # trading day 2025-11-25, as CONFIG's
LATER = NOW + timedelta(seconds=5)
EVER = "2000-01-01T00:00:00Z"
BUY, SELL = 0, 1
LIMIT, MARKET, STOP, TRAILING = 1, 2, 4, 5
OPEN, FILLED, CANCELLED, SUSPENDED = 1, 2, 3, 8
LONG = 1
BEST_ASK, BEST_BID = 3, 4  # DomType
ORDER, TRADE = "GatewayUserOrder", "GatewayUserTrade"
POSITION, ACCOUNT_EVENT = "GatewayUserPosition", "GatewayUserAccount"
QUOTE, PRINT, DEPTH = "GatewayQuote", "GatewayTrade", "GatewayDepth"
USER_SUBSCRIPTIONS = ("SubscribeOrders", "SubscribePositions", "SubscribeTrades")
MARKET_SUBSCRIPTIONS = (
    "SubscribeContractQuotes",
    "SubscribeContractTrades",
    "SubscribeContractMarketDepth",
)

# A stop loss 2 points under the entry, a take profit 4 points over it.
BRACKET = {
    "stopLossBracket": {"ticks": -8, "type": STOP},
    "takeProfitBracket": {"ticks": 16, "type": LIMIT},
}

Events = list[tuple[str, list[Any]]]


def stamp(at: datetime) -> str:
    """A timestamp as the gateway writes it."""
    return at.isoformat(timespec="microseconds")


# --- the payloads the gateway sends ------------------------------------------------------


def order_event(order_id: int, **fields: Any) -> dict[str, Any]:
    """GatewayUserOrder: a 1-lot MNQ market buy of ACCOUNT, Open, placed NOW, unless told."""
    return {
        "id": order_id,
        "accountId": ACCOUNT,
        "contractId": MNQ,
        "symbolId": "F.US.MNQ",
        "creationTimestamp": stamp(NOW),
        "updateTimestamp": stamp(NOW),
        "status": OPEN,
        "type": MARKET,
        "side": BUY,
        "size": 1,
        "limitPrice": None,
        "stopPrice": None,
        "fillVolume": 0,
        "filledPrice": None,
        "customTag": None,
        "parentOrderId": None,
        **fields,
    }


def trade_event(trade_id: int, order_id: int, price: float, **fields: Any) -> dict[str, Any]:
    """GatewayUserTrade: a 1-lot buy of ACCOUNT that opened (no P&L), unless told."""
    return {
        "id": trade_id,
        "accountId": ACCOUNT,
        "contractId": MNQ,
        "creationTimestamp": stamp(NOW),
        "price": price,
        "profitAndLoss": None,
        "fees": 0.37,
        "side": BUY,
        "size": 1,
        "voided": False,
        "orderId": order_id,
        **fields,
    }


def position_event(size: int, average: float, **fields: Any) -> dict[str, Any]:
    """GatewayUserPosition: ACCOUNT's first, long MNQ position, opened NOW (size 0: closed)."""
    return {
        "id": 1,
        "accountId": ACCOUNT,
        "contractId": MNQ,
        "creationTimestamp": stamp(NOW),
        "type": LONG,
        "size": size,
        "averagePrice": average,
        **fields,
    }


def account_event(
    balance: float, can_trade: bool = True, account_id: int = ACCOUNT
) -> dict[str, Any]:
    """GatewayUserAccount."""
    return {
        "id": account_id,
        "name": f"SIM-{account_id}",
        "balance": balance,
        "canTrade": can_trade,
        "isVisible": True,
        "simulated": True,
    }


def fill_events(
    order: dict[str, Any],
    trade: dict[str, Any],
    position: dict[str, Any],
    balance: float,
    can_trade: bool = True,
) -> Events:
    """What one fill sends on the user hub, in order: the order, its trade, the position
    and the account with its new balance."""
    return [
        (ORDER, [order]),
        (TRADE, [trade]),
        (POSITION, [position]),
        (ACCOUNT_EVENT, [account_event(balance, can_trade)]),
    ]


def quote_event(
    last: float, volume: int, *, high: float = 21000, low: float = 21000, at: datetime = NOW
) -> list[Any]:
    """GatewayQuote's arguments: the contract, then the quote of a session opened at 21000."""
    return [
        MNQ,
        {
            "symbol": "F.US.MNQ",
            "symbolName": "/MNQ",
            "lastPrice": last,
            "bestBid": last,
            "bestAsk": last + 0.25,
            "change": last - 21000,
            "changePercent": round((last - 21000) / 210, 2),
            "open": 21000,
            "high": high,
            "low": low,
            "volume": volume,
            "lastUpdated": stamp(at),
            "timestamp": stamp(at),
        },
    ]


def print_event(price: float, aggressor: int, volume: int = 1, at: datetime = NOW) -> list[Any]:
    """GatewayTrade's arguments: the contract, then a list of one print."""
    trade = {"symbolId": "F.US.MNQ", "price": price, "timestamp": stamp(at), "type": aggressor}
    return [MNQ, [{**trade, "volume": volume}]]


def depth_event(last: float, at: datetime = NOW) -> list[Any]:
    """GatewayDepth's arguments: the contract, then one lot at the best bid and ask."""
    return [
        MNQ,
        [
            {"timestamp": stamp(at), "type": kind, "price": p, "volume": 1, "currentVolume": 1}
            for kind, p in ((BEST_BID, last), (BEST_ASK, last + 0.25))
        ],
    ]


# --- the venue and its two hub connections -----------------------------------------------


@dataclass
class Venue:
    """A simulator with a user-hub connection subscribed to everything of ACCOUNT (and to
    accounts) and a market-hub connection subscribed to everything of MNQ."""

    client: Client
    token: str
    negotiate: bool
    user: HubClient
    market: HubClient
    now: datetime = NOW  # what the venue's clock reads

    async def api(self, endpoint: str, **body: Any) -> Any:
        """POST /api/<endpoint> with ACCOUNT's ID; asserts it succeeded."""
        answer = await call(
            self.client, f"/api/{endpoint}", self.token, {"accountId": ACCOUNT, **body}
        )
        assert answer["success"] is True, answer
        return answer

    async def place(self, **fields: object) -> int:
        """Order/place (a 1-lot MNQ market buy unless told otherwise); the order ID."""
        order_id: int = (await self.api("Order/place", **order(**fields)))["orderId"]
        return order_id

    async def set_price(self, price: float, volume: int = 1) -> None:
        """POST /_sim/price for MNQ."""
        body = {"contractId": MNQ, "price": price, "volume": volume}
        response = await self.client.post("/_sim/price", json=body)
        assert response.status == 200, await response.text()

    async def reconnect(self) -> None:
        """Open both hub connections again, the way the first ones were, and subscribe."""
        self.user, self.market = await subscribed(self.client, self.token, self.negotiate)


async def subscribed(client: Client, token: str, negotiate: bool) -> tuple[HubClient, HubClient]:
    """A user-hub and a market-hub connection, each holding every subscription of the tests."""
    user = await HubClient.connect(client, "user", token, negotiate=negotiate)
    market = await HubClient.connect(client, "market", token, negotiate=negotiate)
    completions = [await user.call("SubscribeAccounts")]
    completions += [await user.call(method, ACCOUNT) for method in USER_SUBSCRIPTIONS]
    completions += [await market.call(method, MNQ) for method in MARKET_SUBSCRIPTIONS]
    assert all("error" not in c for c in completions), completions
    return user, market


async def open_venue(client: Client, negotiate: bool) -> Venue:
    """Log in, connect both hubs, and pin the venue's clock to the Venue's `now`."""
    token = await login(client)
    venue = Venue(client, token, negotiate, *await subscribed(client, token, negotiate))
    client.app[SIMULATOR].clock = lambda: venue.now
    connections = (await hubs_state(client))["connections"]
    assert [c["negotiated"] for c in connections] == [negotiate, negotiate]
    return venue


@pytest.fixture(params=[True, False], ids=["negotiated", "direct"])
def negotiate(request: pytest.FixtureRequest) -> bool:
    """Whether the hub clients negotiate (version 1) or skip negotiation."""
    value: bool = request.param
    return value


@pytest.fixture
async def venue(client: Client, negotiate: bool) -> Venue:
    """The tests' simulator, its two hub connections subscribed."""
    return await open_venue(client, negotiate)


# --- orders ----------------------------------------------------------------------------


async def test_placing_modifying_and_cancelling_an_order_each_send_it(venue: Venue) -> None:
    order_id = await venue.place(type=LIMIT, limitPrice=20990, customTag="t1")
    placed = order_event(order_id, type=LIMIT, limitPrice=20990, customTag="t1")
    assert await venue.user.received() == [(ORDER, [placed])]

    venue.now = LATER
    await venue.api("Order/modify", orderId=order_id, size=2, limitPrice=20980.25)
    modified = {**placed, "size": 2, "limitPrice": 20980.25, "updateTimestamp": stamp(LATER)}
    assert await venue.user.received() == [(ORDER, [modified])]
    # Asking for what the order already has changes nothing, so nothing is sent.
    await venue.api("Order/modify", orderId=order_id, limitPrice=20980.25)
    assert await venue.user.received() == []

    await venue.api("Order/cancel", orderId=order_id)
    assert await venue.user.received() == [(ORDER, [{**modified, "status": CANCELLED}])]
    assert await venue.market.received() == []  # nothing traded, no price moved


async def test_a_fill_sends_the_order_its_trade_the_position_the_balance_and_a_print(
    venue: Venue,
) -> None:
    order_id = await venue.place(size=2)
    filled = order_event(order_id, size=2, status=FILLED, fillVolume=2, filledPrice=21000.25)
    trade = trade_event(1, order_id, 21000.25, size=2, fees=0.74)
    position = position_event(2, 21000.25)
    assert await venue.user.received() == [
        (ORDER, [order_event(order_id, size=2)]),
        *fill_events(filled, trade, position, 49999.26),
    ]
    # The venue's own fill prints (taking the ask: a buyer's) and counts in the session's
    # volume and range, but moves no price: the last price stays, no depth.
    assert await venue.market.received() == [
        (QUOTE, quote_event(21000, volume=2, high=21000.25)),
        (PRINT, print_event(21000.25, BUY, volume=2)),
    ]
    # The hubs and the REST API tell the same story.
    assert (await venue.api("Order/search", startTimestamp=EVER))["orders"] == [filled]
    assert (await venue.api("Trade/search", startTimestamp=EVER))["trades"] == [trade]
    assert (await venue.api("Position/searchOpen"))["positions"] == [position]


async def test_partial_fills_send_each_step_as_the_price_moves(venue: Venue) -> None:
    response = await venue.client.post("/_sim/faults", json={"max_fill_size": 2})
    assert response.status == 200
    order_id = await venue.place(size=5)
    working = order_event(order_id, size=5)
    assert await venue.user.received() == [
        (ORDER, [working]),
        *fill_events(
            {**working, "fillVolume": 2, "filledPrice": 21000.25},
            trade_event(1, order_id, 21000.25, size=2, fees=0.74),
            position_event(2, 21000.25),
            49999.26,
        ),
    ]
    await venue.set_price(21001)
    assert await venue.user.received() == fill_events(
        {**working, "fillVolume": 4, "filledPrice": 21000.75},
        trade_event(2, order_id, 21001.25, size=2, fees=0.74),
        position_event(4, 21000.75),
        49998.52,
    )
    # The rest of a market buy still takes the ask: each of its prints is a buyer's.
    prints = [arguments for target, arguments in await venue.market.received() if target == PRINT]
    assert prints == [
        print_event(21000.25, BUY, volume=2),  # the first 2 lots
        print_event(21001, BUY),  # the price the test set
        print_event(21001.25, BUY, volume=2),  # the next 2 lots
    ]
    await venue.set_price(21002)
    assert await venue.user.received() == fill_events(
        {**working, "status": FILLED, "fillVolume": 5, "filledPrice": 21001.05},
        trade_event(3, order_id, 21002.25),
        position_event(5, 21001.05),
        49998.15,
    )
    await venue.set_price(21003)
    assert await venue.user.received() == []  # filled: nothing more to tell


async def test_a_trailing_stop_sends_its_moves_then_its_fill(venue: Venue) -> None:
    order_id = await venue.place(type=TRAILING, side=SELL, trailPrice=2)
    trailing = order_event(order_id, type=TRAILING, side=SELL, stopPrice=20998)
    assert await venue.user.received() == [(ORDER, [trailing])]
    venue.now = LATER
    await venue.set_price(21005)
    moved = {**trailing, "stopPrice": 21003, "updateTimestamp": stamp(LATER)}
    assert await venue.user.received() == [(ORDER, [moved])]
    await venue.set_price(21004)  # not a new high: the stop stays
    assert await venue.user.received() == []
    await venue.set_price(21003)
    events = await venue.user.received()
    assert [target for target, _ in events] == [ORDER, TRADE, POSITION, ACCOUNT_EVENT]
    assert events[0] == (
        ORDER,
        [{**moved, "status": FILLED, "fillVolume": 1, "filledPrice": 21003}],
    )


# --- brackets --------------------------------------------------------------------------


async def test_bracket_legs_are_sent_suspended_then_open_then_one_cancels_the_other(
    venue: Venue,
) -> None:
    entry_id = await venue.place(type=LIMIT, limitPrice=20990, size=2, **BRACKET)
    entry = order_event(entry_id, type=LIMIT, size=2, limitPrice=20990)
    leg = {"side": SELL, "size": 2, "parentOrderId": entry_id, "status": SUSPENDED}
    stop = order_event(entry_id + 1, type=STOP, stopPrice=20988, **leg)
    target = order_event(entry_id + 2, type=LIMIT, limitPrice=20994, **leg)
    assert await venue.user.received() == [(ORDER, [entry]), (ORDER, [stop]), (ORDER, [target])]

    venue.now = LATER
    await venue.set_price(20989.75)  # the ask reaches the entry's limit
    filled = {**entry, "status": FILLED, "fillVolume": 2, "filledPrice": 20990}
    opened = {"status": OPEN, "updateTimestamp": stamp(LATER)}
    later = {"creationTimestamp": stamp(LATER)}
    assert await venue.user.received() == [
        *fill_events(
            {**filled, "updateTimestamp": stamp(LATER)},
            trade_event(1, entry_id, 20990, size=2, fees=0.74, **later),
            position_event(2, 20990, **later),
            49999.26,
        ),
        (ORDER, [{**stop, **opened}]),
        (ORDER, [{**target, **opened}]),
    ]

    await venue.set_price(20994)  # the bid reaches the take profit
    target_filled = {**target, **opened, "status": FILLED, "fillVolume": 2, "filledPrice": 20994}
    assert await venue.user.received() == [
        *fill_events(
            target_filled,
            # 4 points on 2 contracts at $2 a point.
            trade_event(
                2, target["id"], 20994, side=SELL, size=2, fees=0.74, profitAndLoss=16, **later
            ),
            position_event(0, 20990, **later),
            50014.52,
        ),
        (ORDER, [{**stop, **opened, "status": CANCELLED}]),
    ]


async def test_a_partly_filled_entry_opens_its_legs_at_what_filled_then_grows_them(
    venue: Venue,
) -> None:
    response = await venue.client.post("/_sim/faults", json={"max_fill_size": 1})
    assert response.status == 200
    entry_id = await venue.place(type=LIMIT, limitPrice=20990, size=2, **BRACKET)
    entry, stop, target = (payload for _, [payload] in await venue.user.received())
    assert [o["status"] for o in (entry, stop, target)] == [OPEN, SUSPENDED, SUSPENDED]

    await venue.set_price(20989.75)
    assert await venue.user.received() == [
        *fill_events(
            {**entry, "fillVolume": 1, "filledPrice": 20990},
            trade_event(1, entry_id, 20990),
            position_event(1, 20990),
            49999.63,
        ),
        (ORDER, [{**stop, "status": OPEN, "size": 1}]),
        (ORDER, [{**target, "status": OPEN, "size": 1}]),
    ]
    await venue.set_price(20989.75)
    assert await venue.user.received() == [
        *fill_events(
            {**entry, "status": FILLED, "fillVolume": 2, "filledPrice": 20990},
            trade_event(2, entry_id, 20990),
            position_event(2, 20990),
            49999.26,
        ),
        (ORDER, [{**stop, "status": OPEN, "size": 2}]),
        (ORDER, [{**target, "status": OPEN, "size": 2}]),
    ]


async def test_cancelling_an_entry_before_it_fills_sends_the_cancel_of_its_legs(
    venue: Venue,
) -> None:
    entry_id = await venue.place(type=LIMIT, limitPrice=20990, **BRACKET)
    placed = await venue.user.received()
    await venue.api("Order/cancel", orderId=entry_id)
    assert await venue.user.received() == [
        (ORDER, [{**payload, "status": CANCELLED}]) for _, [payload] in placed
    ]
    assert [payload["id"] for _, [payload] in placed] == [entry_id, entry_id + 1, entry_id + 2]


# --- positions and the balance ---------------------------------------------------------


async def test_positions_open_change_and_close_and_the_balance_follows(venue: Venue) -> None:
    first = await venue.place()
    assert await venue.user.received() == [
        (ORDER, [order_event(first)]),
        *fill_events(
            order_event(first, status=FILLED, fillVolume=1, filledPrice=21000.25),
            trade_event(1, first, 21000.25),
            position_event(1, 21000.25),
            49999.63,
        ),
    ]
    await venue.set_price(21010)
    assert await venue.user.received() == []  # an open position's value is not an event

    second = await venue.place()
    assert await venue.user.received() == [
        (ORDER, [order_event(second)]),
        *fill_events(
            order_event(second, status=FILLED, fillVolume=1, filledPrice=21010.25),
            trade_event(2, second, 21010.25),
            position_event(2, 21005.25),  # the average of both entries
            49999.26,
        ),
    ]

    async def closed_by_the_venue(trade_id: int, size: int, balance: float) -> None:
        # The venue's own market sell: no tag, its ID the venue's next.
        placed, *fill = await venue.user.received()
        closing = order_event(placed[1][0]["id"], side=SELL)
        assert placed == (ORDER, [closing])
        assert closing["id"] > second
        # (21010 - 21005.25) on one contract at $2 a point.
        trade = trade_event(trade_id, closing["id"], 21010, side=SELL, profitAndLoss=9.5)
        filled = {**closing, "status": FILLED, "fillVolume": 1, "filledPrice": 21010}
        assert fill == fill_events(filled, trade, position_event(size, 21005.25), balance)

    await venue.api("Position/partialCloseContract", contractId=MNQ, size=1)
    await closed_by_the_venue(3, 1, 50008.39)
    await venue.api("Position/closeContract", contractId=MNQ)
    await closed_by_the_venue(4, 0, 50017.52)  # flat: size 0, the type kept
    assert (await venue.api("Position/searchOpen"))["positions"] == []


async def test_the_daily_loss_limit_is_sent_as_the_account_stops_and_is_flattened(
    make_client: MakeClient, negotiate: bool
) -> None:
    client = await make_client(dataclasses.replace(CONFIG, daily_loss_limit=Decimal(100)))
    venue = await open_venue(client, negotiate)
    await venue.place(size=10)
    resting = await venue.place(type=LIMIT, limitPrice=20000)
    await venue.user.received()

    await venue.set_price(20995)  # 5.25 points on 10 contracts and the fees: $108.70 down
    stopped, cancelled, placed, *fill = await venue.user.received()
    assert stopped == (ACCOUNT_EVENT, [account_event(49996.30, can_trade=False)])
    resting_order = order_event(resting, type=LIMIT, limitPrice=20000, status=CANCELLED)
    assert cancelled == (ORDER, [resting_order])
    flatten = order_event(placed[1][0]["id"], side=SELL, size=10)
    assert placed == (ORDER, [flatten])
    assert fill == fill_events(
        {**flatten, "status": FILLED, "fillVolume": 10, "filledPrice": 20995},
        trade_event(2, flatten["id"], 20995, side=SELL, size=10, fees=3.7, profitAndLoss=-105),
        position_event(0, 21000.25),
        49887.60,
        can_trade=False,
    )

    refused = await call(client, "/api/Order/place", venue.token, order())
    assert refused["success"] is False
    assert await venue.user.received() == []  # a refused order is not an order

    await client.post("/_sim/reset")
    assert await venue.user.received() == [
        (ACCOUNT_EVENT, [account_event(50000, account_id=account_id)])
        for account_id in CONFIG.accounts
    ]


# --- the market hub --------------------------------------------------------------------


async def test_a_price_move_sends_the_quote_the_print_and_the_depth(venue: Venue) -> None:
    await venue.set_price(21010.5)
    assert await venue.market.received() == [
        (QUOTE, quote_event(21010.5, volume=1, high=21010.5)),
        (PRINT, print_event(21010.5, BUY)),  # up from 21000: a buyer's
        (DEPTH, depth_event(21010.5)),
    ]
    venue.now = LATER
    await venue.set_price(21010.5, volume=3)  # a print at the same price: the book stays
    assert await venue.market.received() == [
        (QUOTE, quote_event(21010.5, volume=4, high=21010.5, at=LATER)),
        (PRINT, print_event(21010.5, BUY, volume=3, at=LATER)),
    ]
    await venue.set_price(20999.75)  # down: a seller's, and a new low
    assert await venue.market.received() == [
        (QUOTE, quote_event(20999.75, volume=5, high=21010.5, low=20999.75, at=LATER)),
        (PRINT, print_event(20999.75, SELL, at=LATER)),
        (DEPTH, depth_event(20999.75, at=LATER)),
    ]
    await venue.set_price(21000, volume=0)  # a price without a trade: no print
    assert await venue.market.received() == [
        (QUOTE, quote_event(21000, volume=5, high=21010.5, low=20999.75, at=LATER)),
        (DEPTH, depth_event(21000, at=LATER)),
    ]
    assert await venue.user.received() == []  # the account holds nothing


# --- drops -----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["abort", "close"])
async def test_after_a_drop_a_reconnected_client_gets_the_venues_new_events(
    venue: Venue, mode: str
) -> None:
    response = await venue.client.post("/_sim/hubs/drop", json={"mode": mode})
    assert await response.json() == {"dropped": 2}
    for hub in (venue.user, venue.market):
        await hub.closing()
        assert hub.closed_by_server
    missed = await venue.place()  # while nobody is connected: lost, as on the network

    await venue.reconnect()
    assert await venue.user.received() == []  # nothing from before is replayed
    order_id = await venue.place()
    await venue.set_price(21002)
    events = await venue.user.received()
    assert [target for target, _ in events] == [ORDER, ORDER, TRADE, POSITION, ACCOUNT_EVENT]
    assert [a[0]["id"] for t, a in events if t == ORDER] == [order_id, order_id]
    assert order_id != missed
    assert events[3] == (POSITION, [position_event(2, 21000.25)])  # both fills are in it
    assert await venue.market.received() == [
        (QUOTE, quote_event(21000, volume=2, high=21000.25)),
        (PRINT, print_event(21000.25, BUY)),
        (QUOTE, quote_event(21002, volume=3, high=21002)),
        (PRINT, print_event(21002, BUY)),
        (DEPTH, depth_event(21002)),
    ]


# --- a maintained client library -------------------------------------------------------


async def test_pysignalr_receives_a_fill_made_at_the_venue(client: Client, token: str) -> None:
    url = str(client.make_url(f"/hubs/user?access_token={token}"))
    hub = SignalRClient(url)
    received: asyncio.Queue[tuple[str, list[Any]]] = asyncio.Queue()
    subscribed: asyncio.Queue[CompletionMessage] = asyncio.Queue()

    def collect(target: str) -> Callable[[Any], Awaitable[None]]:
        async def on_event(arguments: Any) -> None:
            await received.put((target, arguments))

        return on_event

    async def on_subscribed(message: Message) -> None:
        assert isinstance(message, CompletionMessage)
        await subscribed.put(message)

    async def on_open() -> None:
        arguments: list[Any] = [ACCOUNT]  # pysignalr annotates arguments as dicts only
        await hub.send("SubscribeOrders", arguments, on_subscribed)
        await hub.send("SubscribeTrades", arguments, on_subscribed)

    hub.on(ORDER, collect(ORDER))
    hub.on(TRADE, collect(TRADE))
    hub.on_open(on_open)
    async with running(hub.run):
        for _ in range(2):
            assert (await asyncio.wait_for(subscribed.get(), WAIT_S)).error is None
        answer = await call(client, "/api/Order/place", token, order(size=3))
        assert answer["success"] is True
        events = [await asyncio.wait_for(received.get(), WAIT_S) for _ in range(3)]
    body = {"accountId": ACCOUNT, "startTimestamp": EVER}
    [filled] = (await call(client, "/api/Order/search", token, body))["orders"]
    [trade] = (await call(client, "/api/Trade/search", token, body))["trades"]
    assert events == [
        (ORDER, [{**filled, "status": OPEN, "fillVolume": 0, "filledPrice": None}]),
        (ORDER, [filled]),
        (TRADE, [trade]),
    ]
    assert (trade["orderId"], trade["size"], trade["price"]) == (answer["orderId"], 3, 21000.25)
    assert received.empty()
