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

from simulator.book import (
    ACCOUNT_NOT_FOUND,
    Account,
    Book,
    Bracket,
    Order,
    OrderRequest,
    Outcome,
    Position,
    SearchOrderErrorCode,
)
from simulator.config import SimConfig
from simulator.contracts import Contract, ContractTable, front_contracts
from simulator.tokens import TokenStore
from simulator.wire import (
    AccountIdRequest,
    AccountModel,
    BracketModel,
    CancelOrderRequest,
    ClosePositionRequest,
    ContractModel,
    Envelope,
    ListAvailableContractRequest,
    LoginApiKeyRequest,
    LoginResponse,
    ModifyOrderRequest,
    NoBody,
    OrderModel,
    PlaceOrderRequest,
    PlaceOrderResponse,
    PositionModel,
    SearchAccountRequest,
    SearchAccountResponse,
    SearchContractByIdRequest,
    SearchContractByIdResponse,
    SearchContractRequest,
    SearchContractResponse,
    SearchOrderRequest,
    SearchOrderResponse,
    SearchPositionResponse,
    ValidateResponse,
    Wire,
    price,
    timestamp,
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


def order_model(order: Order) -> OrderModel:
    """An order as Order/search and /_sim/orders report it."""
    return OrderModel(
        id=order.id,
        account_id=order.account_id,
        contract_id=order.contract_id,
        symbol_id=order.symbol_id,
        creation_timestamp=timestamp(order.creation_timestamp),
        update_timestamp=timestamp(order.update_timestamp),
        status=order.status,
        type=order.type,
        side=order.side,
        size=order.size,
        limit_price=price(order.limit_price),
        stop_price=price(order.stop_price),
        fill_volume=order.fill_volume,
        filled_price=price(order.filled_price),
        custom_tag=order.custom_tag,
        parent_order_id=order.parent_order_id,
    )


def _contract_model(contract: Contract) -> ContractModel:
    return ContractModel(
        id=contract.id,
        name=contract.name,
        description=contract.description,
        tick_size=contract.tick_size,
        tick_value=contract.tick_value,
        active_contract=contract.active_contract,
        symbol_id=contract.symbol_id,
    )


def _account_model(account: Account) -> AccountModel:
    return AccountModel(
        id=account.id,
        name=account.name,
        balance=account.balance,
        can_trade=account.can_trade,
        is_visible=account.is_visible,
        simulated=account.simulated,
    )


def _position_model(position: Position) -> PositionModel:
    return PositionModel(
        id=position.id,
        account_id=position.account_id,
        contract_id=position.contract_id,
        creation_timestamp=timestamp(position.creation_timestamp),
        type=position.type,
        size=abs(position.size),
        average_price=price(position.average_price),
    )


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

    def __init__(self, config: SimConfig, rng: random.Random, today: date) -> None:
        self._config = config
        self.contracts = ContractTable(front_contracts(today))
        accounts = [Account(i, f"SIM-{i}", ACCOUNT_BALANCE) for i in config.accounts]
        self.book = Book(
            accounts,
            self.contracts,
            rng,
            tag_uniqueness=config.tag_uniqueness,
            duplicate_tag_code=config.duplicate_tag_code,
        )
        self.tokens = TokenStore(config.token_ttl_s)
        self.logins = 0  # tokens issued by loginKey
        self.validations = 0  # tokens issued by validate

    def reset(self) -> None:
        """Clear orders, positions, tags and counters; tokens stay valid."""
        self.book.clear()
        self.logins = 0
        self.validations = 0

    # --- Auth (§2) ----------------------------------------------------------------------

    def login_key(self, req: LoginApiKeyRequest, caller: Caller, now: datetime) -> LoginResponse:
        """Auth/loginKey: a token for matching credentials, or an in-band failure."""
        expected_user, expected_key = self._config.username, self._config.api_key
        valid = (
            bool(req.user_name and req.api_key)
            and expected_user in (None, req.user_name)
            and expected_key in (None, req.api_key)
        )
        if not valid:
            # §2.1: bad credentials fail in-band. Simulator choice: code 3 InvalidCredentials.
            return LoginResponse(
                success=False,
                error_code=LoginErrorCode.INVALID_CREDENTIALS,
                error_message="Invalid credentials",
            )
        self.logins += 1
        return LoginResponse(token=self.tokens.issue(req.user_name, now.timestamp()))

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
        return SearchAccountResponse(accounts=[_account_model(a) for a in self.book.accounts()])

    def search_contracts(
        self, req: SearchContractRequest, caller: Caller, now: datetime
    ) -> SearchContractResponse:
        """Contract/search (§4.1)."""
        if req.live:
            # §4.1: "TopstepX's contract search endpoint returns empty with live=True".
            return SearchContractResponse(contracts=[])
        found = self.contracts.search(req.search_text)
        return SearchContractResponse(contracts=[_contract_model(c) for c in found])

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
        return SearchContractByIdResponse(contract=_contract_model(contract))

    def available_contracts(
        self, req: ListAvailableContractRequest, caller: Caller, now: datetime
    ) -> SearchContractResponse:
        """Contract/available (§4.3): every front-month contract, whatever `live` says."""
        return SearchContractResponse(contracts=[_contract_model(c) for c in self.contracts.all()])

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
        """Order/searchOpen (§5.4): Open and Pending orders."""
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
                error_code=SearchOrderErrorCode.ACCOUNT_NOT_FOUND,
                error_message=ACCOUNT_NOT_FOUND,
            )
        positions = self.book.positions(req.account_id)
        return SearchPositionResponse(positions=[_position_model(p) for p in positions])

    def close_position(self, req: ClosePositionRequest, caller: Caller, now: datetime) -> Envelope:
        """Position/closeContract (§6.2): flatten with a market order."""
        return _envelope(self.book.close_position(req.account_id, req.contract_id, now))


def _account_not_found() -> SearchOrderResponse:
    return SearchOrderResponse(
        success=False,
        error_code=SearchOrderErrorCode.ACCOUNT_NOT_FOUND,
        error_message=ACCOUNT_NOT_FOUND,
    )


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
    Endpoint("/api/Position/closeContract", ClosePositionRequest, Gateway.close_position),
)
