"""The gateway's JSON bodies as msgspec Structs: snake_case in Python, camelCase on the wire.

Field names, types and nullability follow the gateway's schemas (docs/gateway.md §2–§6).
Responses keep nullable fields as JSON null rather than omitting them (§8).
"""

import re
import secrets
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, overload

import msgspec

Int32 = Annotated[int, msgspec.Meta(ge=-(2**31), le=2**31 - 1)]
Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]

# §8: prices serialize as C# decimals with 9 decimal places ("6335.250000000"), fees and
# balances with 4 ("1.4000", "40615.0300").
_PRICE_QUANTUM = Decimal("0.000000001")
_MONEY_QUANTUM = Decimal("0.0001")

ENCODER = msgspec.json.Encoder(decimal_format="number")


def timestamp(value: datetime) -> str:
    """ISO 8601 with an explicit +00:00 offset and 6 fractional digits, as the gateway sends."""
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def bar_time(value: datetime) -> str:
    """A bar's start as the docs' example writes it: "2024-12-20T14:00:00+00:00" (§6.5)."""
    return value.astimezone(UTC).isoformat(timespec="seconds")


def money(value: Decimal) -> Decimal:
    """Dollars at the gateway's 4-decimal scale."""
    return value.quantize(_MONEY_QUANTUM)


@overload
def price(value: Decimal) -> Decimal: ...
@overload
def price(value: None) -> None: ...
def price(value: Decimal | None) -> Decimal | None:
    """A price at the gateway's 9-decimal scale."""
    return None if value is None else value.quantize(_PRICE_QUANTUM)


class Wire(msgspec.Struct, rename="camel"):
    """Base of every body: camelCase names on the wire."""


# --- requests --------------------------------------------------------------------------


class NoBody(Wire):
    """Stands in for the request of endpoints that take no body (validate, logout)."""


class LoginApiKeyRequest(Wire):
    """§2.1."""

    user_name: str
    api_key: str


class LoginAppRequest(Wire):
    """§2.2: all five fields required."""

    user_name: str
    password: str
    device_id: str
    app_id: str
    verify_key: str


class SearchAccountRequest(Wire):
    """§3."""

    only_active_accounts: bool


class SearchContractRequest(Wire):
    """§4.1."""

    live: bool
    search_text: str | None = None


class SearchContractByIdRequest(Wire):
    """§4.2."""

    contract_id: str


class ListAvailableContractRequest(Wire):
    """§4.3."""

    live: bool


class BracketModel(Wire):
    """§5.2 PlaceOrderBracket."""

    ticks: Int32
    type: Int32


class PlaceOrderRequest(Wire):
    """§5.2. linkedOrderId belongs to the older spec; it is accepted and ignored."""

    account_id: Int32
    contract_id: str
    type: Int32
    side: Int32
    size: Int32
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    trail_price: Decimal | None = None
    custom_tag: str | None = None
    stop_loss_bracket: BracketModel | None = None
    take_profit_bracket: BracketModel | None = None
    linked_order_id: Int64 | None = None


class SearchOrderRequest(Wire):
    """§5.3."""

    account_id: Int32
    start_timestamp: datetime
    end_timestamp: datetime | None = None


class AccountIdRequest(Wire):
    """Order/searchOpen (§5.4) and Position/searchOpen (§6.1)."""

    account_id: Int32


class CancelOrderRequest(Wire):
    """§5.5."""

    account_id: Int32
    order_id: Int64


class ModifyOrderRequest(Wire):
    """§5.6."""

    account_id: Int32
    order_id: Int64
    size: Int32 | None = None
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    trail_price: Decimal | None = None


class ClosePositionRequest(Wire):
    """§6.2."""

    account_id: Int32
    contract_id: str


class PartialClosePositionRequest(Wire):
    """§6.3: all three fields required."""

    account_id: Int32
    contract_id: str
    size: Int32


class SearchTradeRequest(Wire):
    """§6.4: the spec requires only accountId."""

    account_id: Int32
    start_timestamp: datetime | None = None
    end_timestamp: datetime | None = None


class RetrieveBarRequest(Wire):
    """§6.5: every field required."""

    contract_id: str
    live: bool
    start_time: datetime
    end_time: datetime
    unit: Int32
    unit_number: Int32
    limit: Int32
    include_partial_bar: bool


# --- responses -------------------------------------------------------------------------


class Envelope(Wire, kw_only=True):
    """§1: every answer but ping carries these three beside its payload."""

    success: bool = True
    error_code: int = 0
    error_message: str | None = None


class LoginResponse(Envelope):
    """§2.1."""

    token: str | None = None


class ValidateResponse(Envelope):
    """§2.3."""

    new_token: str | None = None


class AccountModel(Wire):
    """§3 TradingAccountModel."""

    id: int
    name: str
    balance: Decimal
    can_trade: bool
    is_visible: bool
    simulated: bool


class SearchAccountResponse(Envelope):
    """§3."""

    accounts: list[AccountModel] | None = None


class ContractModel(Wire):
    """§4.1 ContractModel."""

    id: str
    name: str
    description: str
    tick_size: Decimal
    tick_value: Decimal
    active_contract: bool
    symbol_id: str


class SearchContractResponse(Envelope):
    """§4.1 and §4.3 (Contract/available answers the same shape)."""

    contracts: list[ContractModel] | None = None


class SearchContractByIdResponse(Envelope):
    """§4.2: a singular `contract`."""

    contract: ContractModel | None = None


class PlaceOrderResponse(Envelope):
    """§5.2."""

    order_id: int | None = None


class OrderModel(Wire):
    """§5.3 OrderModel, plus the simulator's `parentOrderId` extension for bracket legs."""

    id: int
    account_id: int
    contract_id: str
    symbol_id: str
    creation_timestamp: str
    update_timestamp: str | None
    status: int
    type: int
    side: int
    size: int
    limit_price: Decimal | None
    stop_price: Decimal | None
    fill_volume: int
    filled_price: Decimal | None
    custom_tag: str | None
    parent_order_id: int | None


class SearchOrderResponse(Envelope):
    """§5.3 and §5.4."""

    orders: list[OrderModel] | None = None


class PositionModel(Wire):
    """§6.1 PositionModel: unsigned size, direction in `type`."""

    id: int
    account_id: int
    contract_id: str
    creation_timestamp: str
    type: int
    size: int
    average_price: Decimal


class SearchPositionResponse(Envelope):
    """§6.1."""

    positions: list[PositionModel] | None = None


class TradeModel(Wire):
    """§6.4 HalfTradeModel: profitAndLoss is null for a half turn that opens."""

    id: int
    account_id: int
    contract_id: str
    creation_timestamp: str
    price: Decimal
    profit_and_loss: Decimal | None
    fees: Decimal
    side: int
    size: int
    voided: bool
    order_id: int


class SearchTradeResponse(Envelope):
    """§6.4."""

    trades: list[TradeModel] | None = None


class BarModel(msgspec.Struct):
    """§6.5 AggregateBarModel: one-letter names on the wire."""

    t: str
    o: Decimal
    h: Decimal
    l: Decimal  # noqa: E741 (the gateway's name)
    c: Decimal
    v: int


class RetrieveBarResponse(Envelope):
    """§6.5."""

    bars: list[BarModel] | None = None


# --- real-time payloads ----------------------------------------------------------------
# The user hub sends the REST models: GatewayUserOrder is an OrderModel, GatewayUserPosition
# a PositionModel (size 0 once flat), GatewayUserTrade a TradeModel and GatewayUserAccount an
# AccountModel; public clients decode them with the same fields (ryanrmg/projectx-api
# user_order.go, user_position.go, user_trade.go, user_account.go). The market hub's are
# below (same client, quote.go, trade.go, depth.go; project-x-py's realtime handlers).


class GatewayQuote(Wire):
    """The market hub's quote of one contract; `symbol` is its symbolId."""

    symbol: str
    symbol_name: str
    last_price: Decimal
    best_bid: Decimal
    best_ask: Decimal
    change: Decimal
    change_percent: Decimal
    open: Decimal
    high: Decimal
    low: Decimal
    volume: int
    last_updated: str
    timestamp: str


class GatewayTrade(Wire):
    """One print on the market hub (sent as a list); `type` is the aggressor, 0 buy 1 sell."""

    symbol_id: str
    price: Decimal
    timestamp: str
    type: int
    volume: int


class GatewayDepth(Wire):
    """One depth entry on the market hub (sent as a list); `type` is a DomType."""

    timestamp: str
    type: int
    price: Decimal
    volume: int
    current_volume: int


# --- simulator controls ----------------------------------------------------------------


class SimPriceRequest(Wire, forbid_unknown_fields=True):
    """POST /_sim/price: a trade of `volume` at `price`, for a contract or a product's front
    month."""

    price: Decimal
    contract_id: str | None = None
    symbol: str | None = None
    volume: Annotated[int, msgspec.Meta(ge=0)] = 1


class SimPriceModel(Wire):
    """A contract's market, as /_sim/price answers it."""

    contract_id: str
    last_price: Decimal
    best_bid: Decimal
    best_ask: Decimal


# --- HTTP 400 --------------------------------------------------------------------------

_ERROR_PATH = re.compile(r" - at `(\$[^`]*)`$")


def validation_problem(error: msgspec.MsgspecError | None) -> bytes:
    """An ASP.NET Core ValidationProblemDetails body for a body that failed to bind (§1).

    None means the body was empty, which ASP.NET reports against the `request` parameter.
    """
    if error is None:
        errors = {"request": ["The request field is required."]}
    else:
        message = str(error)
        match = _ERROR_PATH.search(message)
        errors = {match.group(1) if match else "$": [message]}
    return ENCODER.encode(
        {
            "type": "https://tools.ietf.org/html/rfc7231#section-6.5.1",
            "title": "One or more validation errors occurred.",
            "status": 400,
            "traceId": f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-00",
            "errors": errors,
        }
    )
