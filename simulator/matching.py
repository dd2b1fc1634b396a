"""When a working order trades, and at what price: the fill rules of the gateway's order
types (docs/gateway.md §5.1), as pure functions of the order and the contract's quote.

- Market: at the ask (buy) or the bid (sell).
- Limit, JoinBid, JoinAsk: a buy trades once the ask is at or below its limit, a sell once
  the bid is at or above it. An order that arrives marketable takes the quote (the better
  price); a resting one the market moves through fills at its limit.
- Stop: triggers once the last price trades at or through it (buy: last >= stop; sell:
  last <= stop), then trades as a market order.
- StopLimit: triggers like a stop, then works as a limit at its limit price.
- TrailingStop: a stop `trailPrice` away from the best last price since it was placed
  (the lowest for a buy, the highest for a sell), moved as that best price moves.
"""

from decimal import Decimal

from simulator.market import Quote
from simulator.orders import STOP_TYPES, Order, OrderSide, OrderType

# Orders that trade at the quote, whatever it is, once they may trade at all.
_AT_MARKET = (OrderType.MARKET, OrderType.STOP, OrderType.TRAILING_STOP)


def _is_buy(order: Order) -> bool:
    return order.side == OrderSide.BID


def through_market(side: int, stop: Decimal, last: Decimal) -> bool:
    """Whether a stop on this side is at or through the last price: it triggers at once."""
    return last >= stop if side == OrderSide.BID else last <= stop


def follow(order: Order, last: Decimal) -> bool:
    """Move a trailing stop after a new last price; True if its stop price changed."""
    assert order.trail_price is not None
    best = last if order.best_price is None else order.best_price
    best = min(best, last) if _is_buy(order) else max(best, last)
    order.best_price = best
    stop = best + order.trail_price if _is_buy(order) else best - order.trail_price
    if stop == order.stop_price:
        return False
    order.stop_price = stop
    return True


def triggers(order: Order, last: Decimal) -> bool:
    """Whether a stop that has not triggered yet triggers at this last price."""
    if order.type not in STOP_TYPES or order.triggered:
        return False
    assert order.stop_price is not None  # every stop type has one
    return through_market(order.side, order.stop_price, last)


def execution_price(order: Order, quote: Quote, *, arriving: bool) -> Decimal | None:
    """The price a working order trades at against this quote, or None while it waits.

    `arriving` is true when the order meets the market now (placed, modified, triggered)
    rather than resting while the market moved to it.
    """
    buy = _is_buy(order)
    taken = quote.ask if buy else quote.bid
    if order.type in STOP_TYPES and not order.triggered:
        return None
    if order.type in _AT_MARKET:
        return taken
    limit = order.limit_price
    assert limit is not None  # every other type is limit-priced
    marketable = taken <= limit if buy else taken >= limit
    if not marketable:
        return None
    return taken if arriving else limit


def takes_quote(order: Order, *, arriving: bool) -> bool:
    """Whether a fill of the order now took the quote (its print is the order's side) rather
    than being reached by the market while it rested (the print is the other side's).

    A market order, and a stop once triggered, take the quote every time they fill, so also
    the later parts of one that fills in steps; a limit only when it arrives marketable.
    """
    return arriving or order.type in _AT_MARKET
