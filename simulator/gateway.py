"""The gateway's endpoints as plain methods: request Struct in, response Struct out.

No HTTP here: authentication, rate limiting, faults and encoding are app.py's job. The
ENDPOINTS table at the bottom is the whole API surface the simulator serves.
"""

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import IntEnum
from typing import Any, Generic, TypeVar

from simulator.accounts import Account
from simulator.bars import MAX_BARS, BarUnit, RetrieveBarErrorCode, aggregate
from simulator.book import Book
from simulator.config import SimConfig
from simulator.contracts import Contract, ContractTable, is_on_tick, listed_contracts
from simulator.market import Market
from simulator.orders import (
    ACCOUNT_NOT_FOUND,
    Bracket,
    OrderRequest,
    Outcome,
    SearchErrorCode,
)
from simulator.publish import Publisher
from simulator.tokens import TokenStore
from simulator.views import account_model, contract_model, order_model, position_model, trade_model
from simulator.wire import (
    AccountIdRequest,
    BarModel,
    BracketModel,
    CancelOrderRequest,
    ClosePositionRequest,
    Envelope,
    ListAvailableContractRequest,
    LoginApiKeyRequest,
    LoginAppRequest,
    LoginResponse,
    ModifyOrderRequest,
    NoBody,
    PartialClosePositionRequest,
    PlaceOrderRequest,
    PlaceOrderResponse,
    RetrieveBarRequest,
    RetrieveBarResponse,
    SearchAccountRequest,
    SearchAccountResponse,
    SearchContractByIdRequest,
    SearchContractByIdResponse,
    SearchContractRequest,
    SearchContractResponse,
    SearchOrderRequest,
    SearchOrderResponse,
    SearchPositionResponse,
    SearchTradeRequest,
    SearchTradeResponse,
    SimPriceModel,
    SimPriceRequest,
    ValidateResponse,
    Wire,
    bar_time,
    price,
)

ACCOUNT_BALANCE = Decimal("50000")


class LoginErrorCode(IntEnum):
    """Gateway LoginErrorCode (docs/gateway.md §2.1)."""

    SUCCESS = 0
    USER_NOT_FOUND = 1
    PASSWORD_VERIFICATION_FAILED = 2
    INVALID_CREDENTIALS = 3
    APP_NOT_FOUND = 4
    APP_VERIFICATION_FAILED = 5
    INVALID_DEVICE = 6
    AGREEMENTS_NOT_SIGNED = 7
    UNKNOWN_ERROR = 8
    API_SUBSCRIPTION_NOT_FOUND = 9
    API_KEY_AUTHENTICATION_DISABLED = 10


class SearchContractByIdErrorCode(IntEnum):
    """Gateway SearchContractByIdErrorCode (§4.2)."""

    SUCCESS = 0
    CONTRACT_NOT_FOUND = 1


@dataclass(frozen=True, slots=True)
class Caller:
    """The login behind a request's Bearer token; empty for loginKey."""

    user: str
    token: str


ANONYMOUS = Caller(user="", token="")


def _bracket(model: BracketModel | None) -> Bracket | None:
    return None if model is None else Bracket(ticks=model.ticks, type=model.type)


def _utc(value: datetime) -> datetime:
    # Simulator choice: a request timestamp without an offset is UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _envelope(outcome: Outcome) -> Envelope:
    return Envelope(
        success=outcome.success,
        error_code=outcome.error_code,
        error_message=outcome.error_message,
    )


class Gateway:
    """The simulated ProjectX Gateway: one method per endpoint."""

    def __init__(
        self,
        config: SimConfig,
        rng: random.Random,
        today: date,
        publisher: Publisher | None = None,
    ) -> None:
        self._config = config
        self.rng = rng  # the random walk's
        self.contracts = ContractTable(listed_contracts(today))
        accounts = [Account(i, f"SIM-{i}", ACCOUNT_BALANCE) for i in config.accounts]
        self.book = Book(
            accounts,
            self.contracts,
            Market(self.contracts, publisher, spread_ticks=config.spread_ticks),
            publisher,
            tag_uniqueness=config.tag_uniqueness,
            duplicate_tag_code=config.duplicate_tag_code,
            stop_through_market=config.stop_through_market,
            fee_per_contract=config.fee_per_contract,
            daily_loss_limit=config.daily_loss_limit,
        )
        self.tokens = TokenStore(config.token_ttl_s)
        self.logins = 0  # tokens issued by loginKey
        self.validations = 0  # tokens issued by validate

    def reset(self) -> None:
        """Clear orders, trades, positions, tags, prices, balances and counters; tokens stay
        valid."""
        self.book.clear()
        self.logins = 0
        self.validations = 0

    # --- Auth (§2) ----------------------------------------------------------------------

    def login_key(self, req: LoginApiKeyRequest, caller: Caller, now: datetime) -> LoginResponse:
        """Auth/loginKey: a token for matching credentials, or an in-band failure."""
        return self._login(req.user_name, req.api_key, now)

    def login_app(self, req: LoginAppRequest, caller: Caller, now: datetime) -> LoginResponse:
        """Auth/loginApp (§2.2): the same LoginResponse as loginKey.

        Simulator choice: every field must be non-empty, and the password is checked where
        loginKey checks the API key (the simulator keeps one secret per login).
        """
        app_fields = (req.device_id, req.app_id, req.verify_key)
        secret = req.password if all(app_fields) else ""
        return self._login(req.user_name, secret, now)

    def _login(self, user: str, secret: str, now: datetime) -> LoginResponse:
        expected_user, expected_key = self._config.username, self._config.api_key
        valid = (
            bool(user and secret)
            and expected_user in (None, user)
            and expected_key in (None, secret)
        )
        if not valid:
            # §2.1: bad credentials fail in-band. Simulator choice: code 3 InvalidCredentials.
            return LoginResponse(
                success=False,
                error_code=LoginErrorCode.INVALID_CREDENTIALS,
                error_message="Invalid credentials",
            )
        self.logins += 1
        return LoginResponse(token=self.tokens.issue(user, now.timestamp()))

    def validate(self, req: NoBody, caller: Caller, now: datetime) -> ValidateResponse:
        """Auth/validate (§2.3): a fresh token for the caller.

        Simulator choice: the old token stays valid until its own expiry.
        """
        self.validations += 1
        return ValidateResponse(new_token=self.tokens.issue(caller.user, now.timestamp()))

    def logout(self, req: NoBody, caller: Caller, now: datetime) -> Envelope:
        """Auth/logout (§2.4): the caller's token stops working."""
        self.tokens.revoke(caller.token)
        return Envelope()

    # --- Account and Contract (§3, §4) ----------------------------------------------------

    def search_accounts(
        self, req: SearchAccountRequest, caller: Caller, now: datetime
    ) -> SearchAccountResponse:
        """Account/search (§3). Every simulated account is active, so the flag changes nothing."""
        accounts = self.book.accounts(now)
        return SearchAccountResponse(accounts=[account_model(a) for a in accounts])

    def search_contracts(
        self, req: SearchContractRequest, caller: Caller, now: datetime
    ) -> SearchContractResponse:
        """Contract/search (§4.1)."""
        if req.live:
            # §4.1: "TopstepX's contract search endpoint returns empty with live=True".
            return SearchContractResponse(contracts=[])
        found = self.contracts.search(req.search_text)
        return SearchContractResponse(contracts=[contract_model(c) for c in found])

    def contract_by_id(
        self, req: SearchContractByIdRequest, caller: Caller, now: datetime
    ) -> SearchContractByIdResponse:
        """Contract/searchById (§4.2): a singular `contract`."""
        contract = self.contracts.get(req.contract_id)
        if contract is None:
            return SearchContractByIdResponse(
                success=False,
                error_code=SearchContractByIdErrorCode.CONTRACT_NOT_FOUND,
                error_message="Contract not found",
            )
        return SearchContractByIdResponse(contract=contract_model(contract))

    def available_contracts(
        self, req: ListAvailableContractRequest, caller: Caller, now: datetime
    ) -> SearchContractResponse:
        """Contract/available (§4.3): the front month of every product (as the docs' example
        lists them), whatever `live` says."""
        return SearchContractResponse(
            contracts=[contract_model(c) for c in self.contracts.fronts()]
        )

    # --- Order (§5) -------------------------------------------------------------------------

    def place_order(
        self, req: PlaceOrderRequest, caller: Caller, now: datetime
    ) -> PlaceOrderResponse:
        """Order/place (§5.2)."""
        outcome = self.book.place(
            OrderRequest(
                account_id=req.account_id,
                contract_id=req.contract_id,
                type=req.type,
                side=req.side,
                size=req.size,
                limit_price=req.limit_price,
                stop_price=req.stop_price,
                trail_price=req.trail_price,
                custom_tag=req.custom_tag,
                stop_loss=_bracket(req.stop_loss_bracket),
                take_profit=_bracket(req.take_profit_bracket),
            ),
            now,
        )
        return PlaceOrderResponse(
            success=outcome.success,
            error_code=outcome.error_code,
            error_message=outcome.error_message,
            order_id=outcome.order_id,
        )

    def search_orders(
        self, req: SearchOrderRequest, caller: Caller, now: datetime
    ) -> SearchOrderResponse:
        """Order/search (§5.3): orders created in [start, end or now]."""
        if not self.book.has_account(req.account_id):
            return _account_not_found()
        end = now if req.end_timestamp is None else _utc(req.end_timestamp)
        found = self.book.search(req.account_id, _utc(req.start_timestamp), end)
        return SearchOrderResponse(orders=[order_model(o) for o in found])

    def search_open_orders(
        self, req: AccountIdRequest, caller: Caller, now: datetime
    ) -> SearchOrderResponse:
        """Order/searchOpen (§5.4): working orders; Suspended bracket legs are not."""
        if not self.book.has_account(req.account_id):
            return _account_not_found()
        working = self.book.working_orders(req.account_id)
        return SearchOrderResponse(orders=[order_model(o) for o in working])

    def cancel_order(self, req: CancelOrderRequest, caller: Caller, now: datetime) -> Envelope:
        """Order/cancel (§5.5)."""
        return _envelope(self.book.cancel(req.account_id, req.order_id, now))

    def modify_order(self, req: ModifyOrderRequest, caller: Caller, now: datetime) -> Envelope:
        """Order/modify (§5.6)."""
        outcome = self.book.modify(
            req.account_id,
            req.order_id,
            now,
            size=req.size,
            limit_price=req.limit_price,
            stop_price=req.stop_price,
            trail_price=req.trail_price,
        )
        return _envelope(outcome)

    # --- Position (§6) ---------------------------------------------------------------------

    def search_positions(
        self, req: AccountIdRequest, caller: Caller, now: datetime
    ) -> SearchPositionResponse:
        """Position/searchOpen (§6.1)."""
        if not self.book.has_account(req.account_id):
            return SearchPositionResponse(
                success=False,
                error_code=SearchErrorCode.ACCOUNT_NOT_FOUND,
                error_message=ACCOUNT_NOT_FOUND,
            )
        positions = self.book.positions(req.account_id)
        return SearchPositionResponse(positions=[position_model(p) for p in positions])

    def close_position(self, req: ClosePositionRequest, caller: Caller, now: datetime) -> Envelope:
        """Position/closeContract (§6.2): flatten with a market order."""
        return _envelope(self.book.close_position(req.account_id, req.contract_id, now))

    def partial_close_position(
        self, req: PartialClosePositionRequest, caller: Caller, now: datetime
    ) -> Envelope:
        """Position/partialCloseContract (§6.3): reduce by `size` with a market order."""
        outcome = self.book.close_position(req.account_id, req.contract_id, now, size=req.size)
        return _envelope(outcome)

    def search_trades(
        self, req: SearchTradeRequest, caller: Caller, now: datetime
    ) -> SearchTradeResponse:
        """Trade/search (§6.4): half-turn trades made in [start, end or now], newest first.

        Simulator choice: without startTimestamp (the spec allows it) the window is open.
        """
        if not self.book.has_account(req.account_id):
            return SearchTradeResponse(
                success=False,
                error_code=SearchErrorCode.ACCOUNT_NOT_FOUND,
                error_message=ACCOUNT_NOT_FOUND,
            )
        start = None if req.start_timestamp is None else _utc(req.start_timestamp)
        end = now if req.end_timestamp is None else _utc(req.end_timestamp)
        trades = self.book.trades(req.account_id, start, end)
        return SearchTradeResponse(trades=[trade_model(t) for t in trades])

    # --- History (§6.5) --------------------------------------------------------------------

    def retrieve_bars(
        self, req: RetrieveBarRequest, caller: Caller, now: datetime
    ) -> RetrieveBarResponse:
        """History/retrieveBars: bars of the prices this simulator has seen.

        Simulator choices: `live` is ignored; a limit above 20,000 is cut to 20,000.
        """
        failure: tuple[RetrieveBarErrorCode, str] | None = None
        if self.contracts.get(req.contract_id) is None:
            failure = (RetrieveBarErrorCode.CONTRACT_NOT_FOUND, "Contract not found")
        elif req.unit not in _BAR_UNITS:
            failure = (RetrieveBarErrorCode.UNIT_INVALID, f"Invalid unit ({req.unit})")
        elif req.unit_number < 1:
            failure = (
                RetrieveBarErrorCode.UNIT_NUMBER_INVALID,
                f"Invalid unit number ({req.unit_number})",
            )
        elif req.limit < 1:
            failure = (RetrieveBarErrorCode.LIMIT_INVALID, f"Invalid limit ({req.limit})")
        if failure is not None:
            return RetrieveBarResponse(
                success=False, error_code=failure[0], error_message=failure[1]
            )
        bars = aggregate(
            self.book.market.seconds(req.contract_id),
            BarUnit(req.unit),
            req.unit_number,
            _utc(req.start_time),
            _utc(req.end_time),
            limit=min(req.limit, MAX_BARS),
            include_partial=req.include_partial_bar,
            now=now,
        )
        return RetrieveBarResponse(
            bars=[
                BarModel(
                    t=bar_time(b.start),
                    o=price(b.open),
                    h=price(b.high),
                    l=price(b.low),
                    c=price(b.close),
                    v=b.volume,
                )
                for b in bars
            ]
        )

    # --- simulator controls (/_sim) --------------------------------------------------------

    def set_price(self, req: SimPriceRequest, now: datetime) -> SimPriceModel | str:
        """POST /_sim/price: a trade at a price, which every working order then meets; the
        contract's market after it, or why not."""
        found = self.sim_contract(req.contract_id, req.symbol)
        if isinstance(found, str):
            return found
        contract = found
        lowest = self.book.market.lowest_price(contract)
        if not req.price.is_finite() or not is_on_tick(req.price, contract.tick_size):
            return (
                f"price {req.price} is not on the tick grid of {contract.id} ({contract.tick_size})"
            )
        if req.price < lowest:
            return f"price {req.price} is below {lowest}, the lowest the spread allows"
        self.book.set_price(contract.id, req.price, now, req.volume)
        return self.sim_price(contract.id)

    def sim_contract(self, contract_id: str | None, symbol: str | None) -> Contract | str:
        """The active contract named by ID or by product symbol (its front month), or why not."""
        if (contract_id is None) == (symbol is None):
            return "give exactly one of contractId and symbol"
        contract = (
            self.contracts.get(contract_id)
            if contract_id is not None
            else self.contracts.front(symbol or "")
        )
        if contract is None or not contract.active_contract:
            return f"no active contract {contract_id or symbol!r}"
        return contract

    def sim_price(self, contract_id: str) -> SimPriceModel:
        """A contract's market as /_sim/price shows it."""
        quote = self.book.market.quote(contract_id)
        return SimPriceModel(
            contract_id=contract_id,
            last_price=price(quote.last),
            best_bid=price(quote.bid),
            best_ask=price(quote.ask),
        )


def _account_not_found() -> SearchOrderResponse:
    return SearchOrderResponse(
        success=False,
        error_code=SearchErrorCode.ACCOUNT_NOT_FOUND,
        error_message=ACCOUNT_NOT_FOUND,
    )


_BAR_UNITS = frozenset(BarUnit) - {BarUnit.UNSPECIFIED}


Req = TypeVar("Req", bound=Wire)


@dataclass(frozen=True, slots=True)
class Endpoint(Generic[Req]):
    """One POST endpoint: its path, body type and the Gateway method that answers it."""

    path: str
    request: type[Req]
    call: Callable[[Gateway, Req, Caller, datetime], Envelope]
    # False only for loginKey, which is how a client gets a token in the first place.
    authenticated: bool = True
    # Order-mutating endpoints are the ones commit-then-fail faults apply to.
    mutates_orders: bool = False


ENDPOINTS: tuple[Endpoint[Any], ...] = (
    Endpoint("/api/Auth/loginKey", LoginApiKeyRequest, Gateway.login_key, authenticated=False),
    Endpoint("/api/Auth/loginApp", LoginAppRequest, Gateway.login_app, authenticated=False),
    Endpoint("/api/Auth/validate", NoBody, Gateway.validate),
    Endpoint("/api/Auth/logout", NoBody, Gateway.logout),
    Endpoint("/api/Account/search", SearchAccountRequest, Gateway.search_accounts),
    Endpoint("/api/Contract/search", SearchContractRequest, Gateway.search_contracts),
    Endpoint("/api/Contract/searchById", SearchContractByIdRequest, Gateway.contract_by_id),
    Endpoint("/api/Contract/available", ListAvailableContractRequest, Gateway.available_contracts),
    Endpoint("/api/Order/place", PlaceOrderRequest, Gateway.place_order, mutates_orders=True),
    Endpoint("/api/Order/search", SearchOrderRequest, Gateway.search_orders),
    Endpoint("/api/Order/searchOpen", AccountIdRequest, Gateway.search_open_orders),
    Endpoint("/api/Order/cancel", CancelOrderRequest, Gateway.cancel_order, mutates_orders=True),
    Endpoint("/api/Order/modify", ModifyOrderRequest, Gateway.modify_order, mutates_orders=True),
    Endpoint("/api/Position/searchOpen", AccountIdRequest, Gateway.search_positions),
    # A close trades the position off with a market order: it mutates orders too.
    Endpoint(
        "/api/Position/closeContract",
        ClosePositionRequest,
        Gateway.close_position,
        mutates_orders=True,
    ),
    Endpoint(
        "/api/Position/partialCloseContract",
        PartialClosePositionRequest,
        Gateway.partial_close_position,
        mutates_orders=True,
    ),
    Endpoint("/api/Trade/search", SearchTradeRequest, Gateway.search_trades),
    Endpoint("/api/History/retrieveBars", RetrieveBarRequest, Gateway.retrieve_bars),
)
