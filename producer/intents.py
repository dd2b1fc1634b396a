"""Building intents: the keyword options of each kind, and validated intents made from them.

``OrderClient``'s calls take these options; ``Origin`` is what a client adds to every
intent it makes (its reply stream, its default account and timeout).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any, TypedDict, Unpack, cast

from producer.contract import (
    CancelAll,
    CancelOrder,
    ClosePosition,
    Flatten,
    ModifyOrder,
    PlaceOrder,
)
from producer.errors import InvalidOrder
from producer.validation import check_account_id, check_timeout, validate_intent


def new_request_id() -> str:
    """A fresh request ID: 96 random bits, 16 URL-safe characters."""
    return secrets.token_urlsafe(12)


class CallOptions(TypedDict, total=False):
    """What every call takes."""

    account_id: int | None
    """The broker account (default: the client's)."""
    timeout: float | None
    """Seconds to wait for the result (default: the client's); also the intent's lifetime."""
    request_id: str | None
    """The idempotency key (default: a fresh one)."""


class PlaceOptions(CallOptions, total=False):
    """``place_order``'s options."""

    order_type: str
    """``market`` (default), ``limit``, ``stop``, ``stop_limit`` (both prices),
    ``trailing_stop`` (``trail_ticks``), ``join_bid`` or ``join_ask`` (no price)."""
    limit_price: float | None
    stop_price: float | None
    trail_ticks: int | None
    """A trailing stop's distance, a positive tick count."""
    stop_loss_ticks: int | None
    """Bracket distance, a positive tick count (the worker signs it for the gateway)."""
    take_profit_ticks: int | None
    custom_tag: str | None
    """The strategy's own tag (the worker adds the request ID to it for the broker)."""
    cancel_after: float | None
    """Good-til-time: seconds after which the worker cancels the order if still open."""


class SymbolOptions(CallOptions, total=False):
    """``cancel_all``'s and ``flatten``'s options."""

    symbol: str | None
    """Only this symbol's orders and position (default: the whole account)."""


class ModifyOptions(CallOptions, total=False):
    """``modify_order``'s options (at least one of the values)."""

    price: float | None
    """The new limit price."""
    quantity: int | None
    stop_price: float | None


@dataclass(frozen=True, slots=True)
class Origin:
    """What a client puts on every intent it makes."""

    reply_to: str
    account_id: int | None
    timeout: float

    def place(
        self, symbol: str, side: str, quantity: int, **options: Unpack[PlaceOptions]
    ) -> PlaceOrder:
        """A validated place intent (not sent)."""
        fields = self._common(options)
        intent = PlaceOrder(
            **fields,
            symbol=symbol,
            side=cast(Any, side),
            quantity=quantity,
            order_type=cast(Any, options.get("order_type", "market")),
            limit_price=options.get("limit_price"),
            stop_price=options.get("stop_price"),
            trail_ticks=options.get("trail_ticks"),
            stop_loss_ticks=options.get("stop_loss_ticks"),
            take_profit_ticks=options.get("take_profit_ticks"),
            custom_tag=options.get("custom_tag"),
            cancel_after=options.get("cancel_after"),
        )
        return cast(PlaceOrder, validate_intent(intent))

    def modify(self, order_id: int, **options: Unpack[ModifyOptions]) -> ModifyOrder:
        """A validated modify intent (not sent)."""
        intent = ModifyOrder(
            **self._common(options),
            order_id=order_id,
            quantity=options.get("quantity"),
            limit_price=options.get("price"),
            stop_price=options.get("stop_price"),
        )
        return cast(ModifyOrder, validate_intent(intent))

    def cancel(self, order_id: int, **options: Unpack[CallOptions]) -> CancelOrder:
        """A validated cancel intent (not sent)."""
        intent = CancelOrder(**self._common(options), order_id=order_id)
        return cast(CancelOrder, validate_intent(intent))

    def close(
        self, symbol: str, quantity: int | None, **options: Unpack[CallOptions]
    ) -> ClosePosition:
        """A validated close intent (not sent)."""
        intent = ClosePosition(**self._common(options), symbol=symbol, quantity=quantity)
        return cast(ClosePosition, validate_intent(intent))

    def cancel_all(self, **options: Unpack[SymbolOptions]) -> CancelAll:
        """A validated cancel-all intent (not sent)."""
        intent = CancelAll(**self._common(options), symbol=options.get("symbol"))
        return cast(CancelAll, validate_intent(intent))

    def flatten(self, **options: Unpack[SymbolOptions]) -> Flatten:
        """A validated flatten intent (not sent)."""
        intent = Flatten(**self._common(options), symbol=options.get("symbol"))
        return cast(Flatten, validate_intent(intent))

    def lifetime(self, timeout: float | None) -> float:
        """The timeout a call waits for (the client's unless given)."""
        return self.timeout if timeout is None else timeout

    def _common(self, options: CallOptions) -> dict[str, Any]:
        limit = check_timeout(self.lifetime(options.get("timeout")))
        created = int(time.time() * 1000)
        request_id = options.get("request_id")
        return {
            # An empty ID is refused by validation, not silently replaced.
            "request_id": new_request_id() if request_id is None else request_id,
            "reply_to": self.reply_to,
            "account_id": self._account(options.get("account_id")),
            "created_at": created,
            "deadline": created + int(limit * 1000),
        }

    def account(self, account_id: int | None) -> int:
        """The account a call is for: its own, else the client's."""
        return self._account(account_id)

    def _account(self, account_id: int | None) -> int:
        chosen = self.account_id if account_id is None else account_id
        if chosen is None:
            raise InvalidOrder(
                "account_id is needed: give it to the call or to OrderClient(..., account_id=N)",
                code="invalid_account",
            )
        return check_account_id(chosen)
