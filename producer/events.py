"""What happens after "accepted": the order lifecycle as events, and the account's mirror.

The fleet listens to the gateway's user hub once per login and keeps, per account, a
mirror in Redis (open orders, positions, today's trades, the account) and a stream of
every change. These are the types of both, defined once and used by both sides: the
worker writes them, ``OrderClient.events()``, ``wait_order()``, ``positions()``,
``open_orders()`` and ``account()`` read them.

Every event carries ``reconciled``: false when the hub pushed it, true when the fleet
inferred it from the REST API after a gap (a disconnect, a leader change, a worker that
was down), so a strategy can tell a fill it learnt late. Times are epoch milliseconds.
"""

from __future__ import annotations

from typing import Final, Literal

import msgspec

from producer.contract import Side

LifecycleState = Literal[
    "open",
    "pending",
    "suspended",
    "pending_cancel",
    "filled",
    "cancelled",
    "expired",
    "rejected",
    "unknown",
]
"""An order's state: ``OrderResult.order_state``'s names, plus ``suspended`` (a bracket
leg waiting for its entry to fill) and ``pending_cancel``."""

FINAL_STATES: Final = frozenset({"filled", "cancelled", "expired", "rejected"})
"""States an order never leaves."""


class _Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    account_id: int
    at: int
    """When it happened at the broker (epoch ms), as the gateway stamped it."""
    reconciled: bool = False
    """Inferred from REST after a gap rather than pushed by the hub."""
    event_id: str | None = None
    """Its ID in the account's events stream, set as it is read: pass it as ``since`` to
    resume right after it."""


class OrderUpdate(_Event, frozen=True, kw_only=True, tag="order"):
    """An order was placed, (partly) filled, modified, activated, cancelled..."""

    order_id: int
    contract_id: str
    symbol: str | None = None
    state: LifecycleState
    side: Side
    order_type: int
    """The gateway's OrderType (1 limit, 2 market, 3 stop-limit, 4 stop, 5 trailing stop,
    6 join bid, 7 join ask)."""
    quantity: int
    filled_quantity: int = 0
    fill_price: float | None = None
    """The average price of what filled so far."""
    limit_price: float | None = None
    stop_price: float | None = None
    custom_tag: str | None = None
    request_id: str | None = None
    """The intent that placed it, when its tag is ours (see the README)."""

    @property
    def final(self) -> bool:
        """Whether the order is done (filled, cancelled, expired or rejected)."""
        return self.state in FINAL_STATES


class TradeUpdate(_Event, frozen=True, kw_only=True, tag="trade"):
    """A fill: one trade at the broker."""

    trade_id: int
    order_id: int
    contract_id: str
    symbol: str | None = None
    price: float
    quantity: int
    side: Side
    pnl: float | None = None
    """Realized profit and loss in dollars; None for the half-turn that opened."""
    fees: float = 0.0
    voided: bool = False


class PositionUpdate(_Event, frozen=True, kw_only=True, tag="position"):
    """A position opened, changed or closed (``size`` 0)."""

    contract_id: str
    symbol: str | None = None
    size: int
    """Signed: > 0 long, < 0 short, 0 flat."""
    average_price: float = 0.0


class AccountUpdate(_Event, frozen=True, kw_only=True, tag="account"):
    """The account's balance or its right to trade changed."""

    balance: float
    can_trade: bool
    realized_pnl: float = 0.0
    """Today's realized profit and loss less fees (the trading day starts at 17:00
    Chicago time), from the trades the fleet has seen."""
    name: str | None = None


Event = OrderUpdate | TradeUpdate | PositionUpdate | AccountUpdate


class Position(msgspec.Struct, frozen=True, kw_only=True):
    """An open position, as ``OrderClient.positions()`` returns it."""

    contract_id: str
    symbol: str | None
    size: int
    """Signed: > 0 long, < 0 short."""
    average_price: float


EVENT_ENCODER: Final = msgspec.json.Encoder()
EVENT_DECODER: Final[msgspec.json.Decoder[Event]] = msgspec.json.Decoder(Event)
ORDER_DECODER: Final = msgspec.json.Decoder(OrderUpdate)
TRADE_DECODER: Final = msgspec.json.Decoder(TradeUpdate)
POSITION_DECODER: Final = msgspec.json.Decoder(PositionUpdate)
ACCOUNT_DECODER: Final = msgspec.json.Decoder(AccountUpdate)
