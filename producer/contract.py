"""The wire contract between strategies and workers: intents in, results out.

Defined once, used by both sides. An intent travels as one stream entry with two fields:
``v`` (the contract's major version) and ``d`` (the intent as JSON). Compatibility rule:
a new field is always optional with a default, so old workers ignore it (msgspec skips
unknown fields) and new workers fill it in; anything else bumps ``CONTRACT_VERSION`` and a
worker answers an entry of a version it does not know as ``malformed_intent``.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

import msgspec

CONTRACT_VERSION: Final = 1
VERSION_FIELD: Final = b"v"
DATA_FIELD: Final = b"d"

Side = Literal["BUY", "SELL"]
OrderType = Literal[
    "market", "limit", "stop", "stop_limit", "trailing_stop", "join_bid", "join_ask"
]
Status = Literal["accepted", "rejected", "expired", "failed"]
# What the broker says of the order, when the worker knows it; "flat" answers a close,
# cancel-all or flatten that leaves nothing (an older producer never sends those).
OrderState = Literal[
    "open", "pending", "filled", "cancelled", "expired", "rejected", "unknown", "flat"
]

RequestId = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
EpochMs = Annotated[int, msgspec.Meta(ge=0)]


class _Intent(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True, tag_field="kind"):
    request_id: RequestId
    """Unique per intent, made by the producer; results are keyed by it."""
    reply_to: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    """The producer's reply stream."""
    account_id: int
    created_at: EpochMs
    """When the producer made the intent (epoch ms)."""
    deadline: EpochMs
    """After this (epoch ms) the worker answers ``expired`` instead of calling the broker."""


class PlaceOrder(_Intent, tag="place", kw_only=True, frozen=True):
    """Place a new order, optionally with stop-loss and take-profit brackets."""

    symbol: str
    side: Side
    quantity: int
    order_type: OrderType = "market"
    limit_price: float | None = None
    stop_price: float | None = None
    stop_loss_ticks: int | None = None
    """Bracket distance in ticks, positive; the worker signs it for the gateway."""
    take_profit_ticks: int | None = None
    trail_ticks: int | None = None
    """A trailing stop's distance in ticks, positive; the worker sends it as ``trailPrice``
    (ticks times the contract's tick size)."""
    custom_tag: str | None = None
    """The strategy's own tag; the worker combines it with the request ID for the broker."""
    cancel_after: float | None = None
    """Good-til-time: cancel the order this many seconds after placing, if still open."""


class ModifyOrder(_Intent, tag="modify", kw_only=True, frozen=True):
    """Change a working order's size, limit price or stop price."""

    order_id: int
    quantity: int | None = None
    limit_price: float | None = None
    stop_price: float | None = None


class CancelOrder(_Intent, tag="cancel", kw_only=True, frozen=True):
    """Cancel a working order."""

    order_id: int


class ClosePosition(_Intent, tag="close", kw_only=True, frozen=True):
    """Close the account's position in a symbol: all of it, or ``quantity`` contracts."""

    symbol: str
    quantity: int | None = None


class CancelAll(_Intent, tag="cancel_all", kw_only=True, frozen=True):
    """Cancel every working order of the account (or of one symbol), bracket legs included."""

    symbol: str | None = None


class Flatten(_Intent, tag="flatten", kw_only=True, frozen=True):
    """Cancel every working order, close every position, then check nothing is left (for
    the account, or one symbol)."""

    symbol: str | None = None


Intent = PlaceOrder | ModifyOrder | CancelOrder | ClosePosition | CancelAll | Flatten
PositionIntent = ClosePosition | CancelAll | Flatten
"""The protective intents: they pass a halted account and take the budget's cancel
priority (the kill switch stops new risk, never the way out)."""


class Closed(msgspec.Struct, kw_only=True, frozen=True):
    """A position a close or flatten reduced."""

    contract_id: str
    quantity: int
    """Contracts it closed."""
    remaining: int
    """The position's signed size after it (0: flat)."""


class OrderResult(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """The one final answer to an intent."""

    request_id: str
    status: Status
    kind: str
    """The intent's kind: ``place``, ``modify``, ``cancel``, ``close``, ``cancel_all`` or
    ``flatten`` (``unknown`` for an entry that did not decode)."""
    order_id: int | None = None
    order_state: OrderState | None = None
    order_exists: bool | None = None
    """For a place: whether the order is at the broker (true when placed; false when
    provably not, e.g. refused, expired unsent, or looked up by its tag and not found;
    absent when that could not be told, e.g. a dead-lettered place the broker could not
    be asked about). The status alone does not say it for a ``failed`` place."""
    error_code: str | None = None
    """Stable code (see the README's error table); set unless ``status`` is accepted."""
    message: str | None = None
    broker_error_code: int | None = None
    """The gateway's own ``errorCode`` when it refused the request."""
    cancelled: list[int] | None = None
    """``cancel_all`` and ``flatten``: the orders they cancelled."""
    closed: list[Closed] | None = None
    """``close`` and ``flatten``: the positions they reduced."""
    attempts: int = 0
    """Requests sent to the broker for this intent (look-ups included)."""
    queued_ms: float = 0.0
    """From ``created_at`` until a worker picked the intent up."""
    broker_ms: float = 0.0
    """Time spent waiting on the broker."""
    worker_ms: float = 0.0
    """From pick-up until the result was written."""
    finished_at: int = 0
    worker: str | None = None

    @property
    def ok(self) -> bool:
        """True when the broker accepted the intent."""
        return self.status == "accepted"


ENCODER: Final = msgspec.json.Encoder()
INTENT_DECODER: Final[msgspec.json.Decoder[Intent]] = msgspec.json.Decoder(Intent)
RESULT_DECODER: Final = msgspec.json.Decoder(OrderResult)
VERSION_BYTES: Final = str(CONTRACT_VERSION).encode()


def encode_intent(intent: Intent) -> dict[bytes, bytes]:
    """The stream entry fields for an intent."""
    return {VERSION_FIELD: VERSION_BYTES, DATA_FIELD: ENCODER.encode(intent)}


def encode_result(result: OrderResult) -> bytes:
    """A result as stored under its request ID and sent on reply streams."""
    return ENCODER.encode(result)


def decode_result(data: bytes) -> OrderResult:
    """Inverse of ``encode_result``."""
    return RESULT_DECODER.decode(data)
