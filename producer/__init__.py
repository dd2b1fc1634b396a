"""What a strategy imports: the client, the wire contract and the errors.

from producer import OrderClient

async with OrderClient("redis://127.0.0.1:6379/0", account_id=12345678) as client:
    result = await client.place_market_order(symbol="MNQ", side="BUY", quantity=1)

async with MarketFeed("redis://127.0.0.1:6379/0") as feed:
    async for bar in feed.bars("MNQ", "1m", history=500):
        ...
"""

from producer.client import OrderClient
from producer.contract import (
    CancelAll,
    CancelOrder,
    Closed,
    ClosePosition,
    Flatten,
    Intent,
    ModifyOrder,
    OrderResult,
    PlaceOrder,
)
from producer.errors import (
    ClientClosed,
    InvalidConfig,
    InvalidOrder,
    MarketDataUnavailable,
    OrderError,
    QueueRefused,
    QueueUnavailable,
    ResultTimeout,
)
from producer.events import AccountUpdate, Event, OrderUpdate, Position, PositionUpdate, TradeUpdate
from producer.feed import MarketFeed
from producer.intents import new_request_id
from producer.lifecycle import OrderEnded, WaitTimeout
from producer.market import Bar, Quote, Tick, Timeframe
from producer.replay import IntentLog, read_intents, record_stream, replay

__all__ = [
    "AccountUpdate",
    "Bar",
    "CancelAll",
    "CancelOrder",
    "ClientClosed",
    "ClosePosition",
    "Closed",
    "Event",
    "Flatten",
    "Intent",
    "IntentLog",
    "InvalidConfig",
    "InvalidOrder",
    "MarketDataUnavailable",
    "MarketFeed",
    "ModifyOrder",
    "OrderClient",
    "OrderEnded",
    "OrderError",
    "OrderResult",
    "OrderUpdate",
    "PlaceOrder",
    "Position",
    "PositionUpdate",
    "QueueRefused",
    "QueueUnavailable",
    "Quote",
    "ResultTimeout",
    "Tick",
    "Timeframe",
    "TradeUpdate",
    "WaitTimeout",
    "new_request_id",
    "read_intents",
    "record_stream",
    "replay",
]
