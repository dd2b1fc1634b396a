"""What a strategy imports: the client, the wire contract and the errors.

from producer import OrderClient

async with OrderClient("redis://127.0.0.1:6379/0", account_id=12345678) as client:
    result = await client.place_market_order(symbol="MNQ", side="BUY", quantity=1)
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
    OrderError,
    QueueRefused,
    QueueUnavailable,
    ResultTimeout,
)
from producer.events import AccountUpdate, Event, OrderUpdate, Position, PositionUpdate, TradeUpdate
from producer.intents import new_request_id
from producer.lifecycle import OrderEnded, WaitTimeout
from producer.replay import IntentLog, read_intents, record_stream, replay

__all__ = [
    "AccountUpdate",
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
    "ResultTimeout",
    "TradeUpdate",
    "WaitTimeout",
    "new_request_id",
    "read_intents",
    "record_stream",
    "replay",
]
