"""The market hub's pushes as our wire types: pure.

``GatewayQuote`` carries a contract's best bid, best ask and last price (the gateway may
send only the fields that changed, so each quote is merged into the last one);
``GatewayTrade`` comes as a list of prints. Both arrive already parsed by the SignalR
client, so they are converted (``msgspec.convert``), never encoded and decoded again.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from producer.contract import Side
from producer.market import Quote, Tick
from worker.broker.models import epoch_ms


class GatewayQuote(msgspec.Struct, rename="camel", frozen=True):
    """The fields of a market hub quote the feed uses; any may be absent."""

    last_price: float | None = None
    best_bid: float | None = None
    best_ask: float | None = None
    timestamp: str | None = None
    last_updated: str | None = None


class GatewayTrade(msgspec.Struct, rename="camel", frozen=True):
    """One print of the market hub; ``type`` is the aggressor (0 buy, 1 sell)."""

    price: float
    volume: int = 0
    type: int | None = None
    timestamp: str | None = None


_SIDES: Final[dict[int | None, Side]] = {0: "BUY", 1: "SELL"}


def merged_quote(
    before: Quote | None, pushed: Any, *, symbol: str, contract_id: str, now: int
) -> Quote:
    """The quote after a push (``msgspec.ValidationError`` if it is not a quote): the
    fields it carries, the rest as they were; stamped with its time, else ``now``."""
    quote = msgspec.convert(pushed, GatewayQuote)
    at = epoch_ms(quote.timestamp) or epoch_ms(quote.last_updated) or now
    if before is None:
        return Quote(
            symbol=symbol,
            contract_id=contract_id,
            bid=quote.best_bid,
            ask=quote.best_ask,
            last=quote.last_price,
            at=at,
        )
    return Quote(
        symbol=symbol,
        contract_id=contract_id,
        bid=before.bid if quote.best_bid is None else quote.best_bid,
        ask=before.ask if quote.best_ask is None else quote.best_ask,
        last=before.last if quote.last_price is None else quote.last_price,
        at=at,
    )


def ticks_of(pushed: Any, *, symbol: str, contract_id: str, now: int) -> list[Tick]:
    """The prints of a push, one or a list (``msgspec.ValidationError`` if they are not);
    prints without volume are not trades and are left out."""
    trades = msgspec.convert(pushed if isinstance(pushed, list) else [pushed], list[GatewayTrade])
    return [
        Tick(
            symbol=symbol,
            contract_id=contract_id,
            price=trade.price,
            size=trade.volume,
            side=_SIDES.get(trade.type),
            at=epoch_ms(trade.timestamp) or now,
        )
        for trade in trades
        if trade.volume > 0
    ]
