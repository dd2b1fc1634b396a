"""ProjectX Gateway wire types: msgspec Structs mirroring the gateway's JSON, and the two
values the worker keeps of what the gateway gave it (a session ``Token``, a symbol's
``ContractInfo``).

camelCase on the wire, snake_case in Python (``rename="camel"``). Field lists follow the
gateway's Swagger spec and docs; see docs/gateway.md for sources. Enum-valued fields are
decoded as plain ints so a value the gateway adds later does not fail a whole response.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import IntEnum
from typing import Final

import msgspec


class OrderType(IntEnum):
    """docs/gateway.md §5.1."""

    LIMIT = 1
    MARKET = 2
    STOP_LIMIT = 3
    STOP = 4
    TRAILING_STOP = 5
    JOIN_BID = 6
    JOIN_ASK = 7


class OrderSide(IntEnum):
    """docs/gateway.md §5.1: Bid buys, Ask sells."""

    BID = 0
    ASK = 1


class OrderStatus(IntEnum):
    """docs/gateway.md §5.1 (7 and 8 from the newer spec, see simulator/README.md)."""

    NONE = 0
    OPEN = 1
    FILLED = 2
    CANCELLED = 3
    EXPIRED = 4
    REJECTED = 5
    PENDING = 6
    PENDING_CANCELLATION = 7
    SUSPENDED = 8


class _Wire(msgspec.Struct, rename="camel", kw_only=True, frozen=True):
    pass


# --- requests -------------------------------------------------------------------------


class LoginKeyRequest(_Wire, frozen=True, kw_only=True):
    """POST /api/Auth/loginKey (docs/gateway.md §2.1)."""

    user_name: str
    api_key: str

    def __repr__(self) -> str:
        # The API key must never reach a log line, even through a debug repr.
        return f"LoginKeyRequest(user_name={self.user_name!r}, api_key='***')"


class SearchAccountRequest(_Wire, frozen=True, kw_only=True):
    """POST /api/Account/search (§3)."""

    only_active_accounts: bool


class SearchContractRequest(_Wire, frozen=True, kw_only=True):
    """POST /api/Contract/search (§4.1); TopstepX answers nothing with ``live`` true."""

    search_text: str
    live: bool = False


class SearchContractByIdRequest(_Wire, frozen=True, kw_only=True):
    """POST /api/Contract/searchById (§4.2)."""

    contract_id: str


class Bracket(_Wire, frozen=True, kw_only=True):
    """A stop-loss or take-profit bracket: signed ticks from the entry price (§5.7)."""

    ticks: int
    type: int


class PlaceOrderRequest(_Wire, frozen=True, kw_only=True):
    """POST /api/Order/place (§5.2)."""

    account_id: int
    contract_id: str
    type: int
    side: int
    size: int
    limit_price: float | None = None
    stop_price: float | None = None
    trail_price: float | None = None
    custom_tag: str | None = None
    stop_loss_bracket: Bracket | None = None
    take_profit_bracket: Bracket | None = None


class ModifyOrderRequest(_Wire, frozen=True, kw_only=True):
    """POST /api/Order/modify (§5.6)."""

    account_id: int
    order_id: int
    size: int | None = None
    limit_price: float | None = None
    stop_price: float | None = None
    trail_price: float | None = None


class CancelOrderRequest(_Wire, frozen=True, kw_only=True):
    """POST /api/Order/cancel (§5.5)."""

    account_id: int
    order_id: int


class SearchOrderRequest(_Wire, frozen=True, kw_only=True):
    """POST /api/Order/search (§5.3): ISO 8601 timestamps."""

    account_id: int
    start_timestamp: str
    end_timestamp: str | None = None


class SearchOpenOrderRequest(_Wire, frozen=True, kw_only=True):
    """POST /api/Order/searchOpen (§5.4)."""

    account_id: int


# --- responses ------------------------------------------------------------------------


class Envelope(_Wire, frozen=True, kw_only=True):
    """Every answer's envelope (§1): judge by ``success``, never by the HTTP status alone."""

    success: bool
    error_code: int = 0
    error_message: str | None = None


class LoginResponse(Envelope, frozen=True, kw_only=True):
    """§2.1."""

    token: str | None = None

    def __repr__(self) -> str:
        return f"LoginResponse(success={self.success!r}, error_code={self.error_code!r})"


class ValidateResponse(Envelope, frozen=True, kw_only=True):
    """§2.3."""

    new_token: str | None = None

    def __repr__(self) -> str:
        return f"ValidateResponse(success={self.success!r}, error_code={self.error_code!r})"


class Account(_Wire, frozen=True, kw_only=True):
    """§3."""

    id: int
    name: str
    balance: float
    can_trade: bool
    is_visible: bool
    simulated: bool = False


class SearchAccountResponse(Envelope, frozen=True, kw_only=True):
    """§3; list fields can be null on failure (§1)."""

    accounts: list[Account] | None = None


class Contract(_Wire, frozen=True, kw_only=True):
    """§4.1."""

    id: str
    name: str
    description: str = ""
    tick_size: float
    tick_value: float
    active_contract: bool = True
    symbol_id: str | None = None


class SearchContractResponse(Envelope, frozen=True, kw_only=True):
    """§4.1."""

    contracts: list[Contract] | None = None


class SearchContractByIdResponse(Envelope, frozen=True, kw_only=True):
    """§4.2: a single ``contract``, not a list."""

    contract: Contract | None = None


class PlaceOrderResponse(Envelope, frozen=True, kw_only=True):
    """§5.2."""

    order_id: int | None = None


class Order(_Wire, frozen=True, kw_only=True):
    """§5.3 OrderModel; timestamps kept as the gateway's text."""

    id: int
    account_id: int
    contract_id: str
    symbol_id: str | None = None
    creation_timestamp: str
    update_timestamp: str | None = None
    status: int
    type: int
    side: int
    size: int
    limit_price: float | None = None
    stop_price: float | None = None
    fill_volume: int = 0
    filled_price: float | None = None
    custom_tag: str | None = None


class SearchOrderResponse(Envelope, frozen=True, kw_only=True):
    """§5.3 and §5.4."""

    orders: list[Order] | None = None


class SearchPositionRequest(_Wire, frozen=True, kw_only=True):
    """POST /api/Position/searchOpen (§6.1)."""

    account_id: int


class CloseContractRequest(_Wire, frozen=True, kw_only=True):
    """POST /api/Position/closeContract (§6.2)."""

    account_id: int
    contract_id: str


class PartialCloseContractRequest(_Wire, frozen=True, kw_only=True):
    """POST /api/Position/partialCloseContract (§6.3)."""

    account_id: int
    contract_id: str
    size: int


class ClosePositionError(IntEnum):
    """§6.2's and §6.3's ``errorCode`` values a close acts on. The two number them alike up
    to 4; from 5 the partial close's are one higher (its ``InvalidCloseSize`` comes first)."""

    NOT_FOUND = 2
    """No position (it is flat)."""
    ORDER_PENDING = 6
    """A close order of the gateway's is still pending (7 for a partial close)."""

    @staticmethod
    def pending(*, partial: bool) -> int:
        """The ``OrderPending`` code of a close or a partial close."""
        return ClosePositionError.ORDER_PENDING + (1 if partial else 0)


class Position(_Wire, frozen=True, kw_only=True):
    """§6.1 PositionModel: ``size`` is unsigned, ``type`` says long (1) or short (2)."""

    id: int
    account_id: int
    contract_id: str
    type: int
    size: int
    average_price: float = 0.0

    @property
    def signed_size(self) -> int:
        """Contracts held, signed: > 0 long, < 0 short (0 for an undefined type)."""
        return _POSITION_SIGN.get(self.type, 0) * self.size


_POSITION_SIGN: Final = {1: 1, 2: -1}  # PositionType: 1 long, 2 short (§6.1)


class SearchPositionResponse(Envelope, frozen=True, kw_only=True):
    """§6.1."""

    positions: list[Position] | None = None


class SearchTradeRequest(_Wire, frozen=True, kw_only=True):
    """POST /api/Trade/search (§6.4): ISO 8601 timestamps."""

    account_id: int
    start_timestamp: str
    end_timestamp: str | None = None


class Trade(_Wire, frozen=True, kw_only=True):
    """§6.4 HalfTradeModel: one fill. ``profit_and_loss`` is None for an opening half-turn."""

    id: int
    account_id: int
    contract_id: str
    creation_timestamp: str
    price: float
    profit_and_loss: float | None = None
    fees: float = 0.0
    side: int
    size: int
    voided: bool = False
    order_id: int


class SearchTradeResponse(Envelope, frozen=True, kw_only=True):
    """§6.4."""

    trades: list[Trade] | None = None


class BarUnit(IntEnum):
    """§6.5 AggregateBarUnit, of the units our timeframes use."""

    SECOND = 1
    MINUTE = 2
    HOUR = 3


class RetrieveBarRequest(_Wire, frozen=True, kw_only=True):
    """POST /api/History/retrieveBars (§6.5): every field is required (a missing
    ``endTime`` gets a 400)."""

    contract_id: str
    live: bool = False
    start_time: str
    end_time: str
    unit: BarUnit
    unit_number: int
    limit: int
    include_partial_bar: bool = False


class HistoryBar(msgspec.Struct, frozen=True):
    """§6.5 AggregateBarModel: the start ``t`` and one-letter prices."""

    t: str
    o: float
    h: float
    l: float  # noqa: E741 (the gateway's name)
    c: float
    v: int


class RetrieveBarResponse(Envelope, frozen=True, kw_only=True):
    """§6.5: newest first."""

    bars: list[HistoryBar] | None = None


class ProblemDetails(msgspec.Struct, frozen=True):
    """An ASP.NET problem body (HTTP 400, docs/gateway.md §1): only its title is shown,
    never the values it may echo back."""

    title: str | None = None


class JwtClaims(msgspec.Struct, frozen=True):
    """The one claim of a session token the worker reads: when it expires (epoch s)."""

    exp: float | None = None


# --- what the worker keeps ------------------------------------------------------------


class Token(msgspec.Struct, frozen=True):
    """A session token and its lifetime (epoch seconds)."""

    value: str
    issued_at: float
    expires_at: float

    def __repr__(self) -> str:
        return f"Token(issued_at={self.issued_at!r}, expires_at={self.expires_at!r})"

    def due(self, now: float, margin: float) -> bool:
        """Whether to renew it now: within ``margin`` of its expiry, or half its lifetime
        for short-lived tokens (so a renewal always comes before the expiry)."""
        margin = min(margin, (self.expires_at - self.issued_at) / 2)
        return now >= self.expires_at - margin


class LoginRefusal(msgspec.Struct, frozen=True, kw_only=True):
    """The broker refused our login: until when nobody in the fleet asks again, and why."""

    message: str
    """The gateway's answer (never the key)."""
    failures: int
    """Refusals in a row; each doubles the wait before the next try."""
    at: float
    """When the last refusal came (epoch s)."""
    until: float
    """Epoch seconds before which no worker logs in again."""


class ContractInfo(msgspec.Struct, frozen=True):
    """A symbol's contract as the worker uses it."""

    symbol: str
    contract_id: str
    tick_size: float | None = None
    tick_value: float | None = None
    pinned: bool = False
    """Set by hand (``set_contract_id`` or ``order-worker contract set``), not searched."""


ENCODER: Final = msgspec.json.Encoder()


# More than six fractional digits (the gateway has sent seven) is more than Python reads.
_FRACTION: Final = re.compile(r"(\.\d{6})\d+")


def epoch_ms(timestamp: str | None) -> int:
    """The gateway's ISO 8601 time (``+00:00`` or ``Z``, 0 to 7 fractional digits) in
    epoch milliseconds; 0 when absent or unreadable."""
    if not timestamp:
        return 0
    try:
        moment = datetime.fromisoformat(_FRACTION.sub(r"\1", timestamp))
    except ValueError:
        return 0
    return int(moment.timestamp() * 1000)
