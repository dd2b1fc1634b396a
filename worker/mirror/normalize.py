"""From the gateway's JSON to our events: pure functions, the same for a hub push and for
what reconciliation reads from REST, so both produce identical events for the same state.

The user hub sends ``GatewayUserOrder`` / ``Position`` / ``Trade`` / ``Account`` with the
REST models' fields, bare or wrapped as ``{"action": N, "data": {...}}`` (sources differ;
both are accepted).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final, TypeVar

import msgspec

from producer.contract import Side
from producer.events import (
    AccountUpdate,
    LifecycleState,
    OrderUpdate,
    PositionUpdate,
    TradeUpdate,
)
from worker.broker.models import (
    Account,
    Order,
    OrderSide,
    OrderStatus,
    Position,
    Trade,
)
from worker.broker.models import (
    epoch_ms as epoch_ms,  # re-exported: the mirror reads gateway times with it
)

_STATES: Final[dict[int, LifecycleState]] = {
    OrderStatus.OPEN: "open",
    OrderStatus.FILLED: "filled",
    OrderStatus.CANCELLED: "cancelled",
    OrderStatus.EXPIRED: "expired",
    OrderStatus.REJECTED: "rejected",
    OrderStatus.PENDING: "pending",
    OrderStatus.PENDING_CANCELLATION: "pending_cancel",
    OrderStatus.SUSPENDED: "suspended",
}
_SIDES: Final[dict[int, Side]] = {OrderSide.BID: "BUY", OrderSide.ASK: "SELL"}
# A contract's short name is its symbol, a CME month code and one or two year digits.
_CONTRACT_NAME: Final = re.compile(r"^(?P<symbol>.+?)[FGHJKMNQUVXZ][0-9]{1,2}$")

Symbols = Callable[[str], str | None]
"""Contract ID to symbol, as far as it is known."""


class _Wrapped(msgspec.Struct, frozen=True):
    """A hub payload wrapped as ``{"action": N, "data": {...}}``."""

    data: msgspec.Raw
    action: int | None = None


_WRAPPED: Final = msgspec.json.Decoder(_Wrapped)
_DECODERS: Final[dict[type[Any], msgspec.json.Decoder[Any]]] = {
    model: msgspec.json.Decoder(model) for model in (Order, Position, Trade, Account)
}
Model = TypeVar("Model", Order, Position, Trade, Account)


def unwrap(payload: bytes) -> bytes:
    """The payload itself, whether it came bare or wrapped in ``{action, data}``."""
    if b'"data"' in payload:
        try:
            return bytes(_WRAPPED.decode(payload).data)
        except msgspec.DecodeError:
            pass  # a bare model that merely has a field named "data"
    return payload


def decode(model: type[Model], payload: bytes) -> Model:
    """One hub payload as the gateway's model (``msgspec.DecodeError`` if it is not one)."""
    decoded: Model = _DECODERS[model].decode(unwrap(payload))
    return decoded


def symbol_of_name(name: str) -> str | None:
    """``MNQZ5`` -> ``MNQ``: the symbol in a contract's short name."""
    match = _CONTRACT_NAME.match(name)
    return None if match is None else match.group("symbol")


def order_update(
    order: Order, symbols: Symbols, *, request_id: str | None, reconciled: bool = False
) -> OrderUpdate:
    """An order as our event."""
    return OrderUpdate(
        account_id=order.account_id,
        at=epoch_ms(order.update_timestamp) or epoch_ms(order.creation_timestamp),
        reconciled=reconciled,
        order_id=order.id,
        contract_id=order.contract_id,
        symbol=symbols(order.contract_id),
        state=_STATES.get(order.status, "unknown"),
        side=_SIDES.get(order.side, "BUY"),
        order_type=order.type,
        quantity=order.size,
        filled_quantity=order.fill_volume,
        fill_price=order.filled_price,
        limit_price=order.limit_price,
        stop_price=order.stop_price,
        custom_tag=order.custom_tag,
        request_id=request_id,
    )


def trade_update(trade: Trade, symbols: Symbols, *, reconciled: bool = False) -> TradeUpdate:
    """A fill as our event."""
    return TradeUpdate(
        account_id=trade.account_id,
        at=epoch_ms(trade.creation_timestamp),
        reconciled=reconciled,
        trade_id=trade.id,
        order_id=trade.order_id,
        contract_id=trade.contract_id,
        symbol=symbols(trade.contract_id),
        price=trade.price,
        quantity=trade.size,
        side=_SIDES.get(trade.side, "BUY"),
        pnl=trade.profit_and_loss,
        fees=trade.fees,
        voided=trade.voided,
    )


def position_update(
    position: Position, symbols: Symbols, *, at: int, reconciled: bool = False
) -> PositionUpdate:
    """A position as our event: the size signed (the gateway's is unsigned with a type).

    The gateway stamps a position with its creation only, so ``at`` is when it was seen.
    """
    return PositionUpdate(
        account_id=position.account_id,
        at=at,
        reconciled=reconciled,
        contract_id=position.contract_id,
        symbol=symbols(position.contract_id),
        size=position.signed_size,
        average_price=position.average_price if position.size else 0.0,
    )


def flat(account_id: int, contract_id: str, symbols: Symbols, *, at: int) -> PositionUpdate:
    """A position that is gone (REST lists only open ones)."""
    return PositionUpdate(
        account_id=account_id,
        at=at,
        reconciled=True,
        contract_id=contract_id,
        symbol=symbols(contract_id),
        size=0,
        average_price=0.0,
    )


def account_update(
    account: Account, *, realized_pnl: float, at: int, reconciled: bool = False
) -> AccountUpdate:
    """An account as our event, with today's realized P&L the fleet has counted."""
    return AccountUpdate(
        account_id=account.id,
        at=at,
        reconciled=reconciled,
        balance=account.balance,
        can_trade=account.can_trade,
        realized_pnl=realized_pnl,
        name=account.name,
    )


def identity(event: OrderUpdate | TradeUpdate | PositionUpdate | AccountUpdate) -> str:
    """What makes two events the same change, so one is never emitted twice.

    An order is its state, filled quantity and working values (a modify is a change);
    a trade its ID (and whether it was voided); a position its size and average; an
    account its balance, right to trade and realized P&L.
    """
    if isinstance(event, OrderUpdate):
        return (
            f"{event.state}|{event.filled_quantity}|{event.quantity}|"
            f"{event.limit_price}|{event.stop_price}"
        )
    if isinstance(event, TradeUpdate):
        return f"{event.trade_id}|{event.voided}"
    if isinstance(event, PositionUpdate):
        return f"{event.size}|{event.average_price}"
    return f"{event.balance}|{event.can_trade}|{event.realized_pnl}"
