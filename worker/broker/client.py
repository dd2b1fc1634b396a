"""An async ProjectX Gateway client on one persistent aiohttp session.

It speaks HTTP and JSON and nothing more: auth and token renewal, contract look-up, order
requests, retries by the policy in ``retry.py``. What an intent *means* (exactly-once,
looking a place up by its tag when its outcome is unknown) is the executor's business;
this client makes that possible by telling, in every ``BrokerUnavailable``, whether the
request may have reached the broker.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import math
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal, Protocol, TypeVar

import aiohttp
import msgspec

from producer.contract import OrderType as IntentOrderType
from producer.errors import InvalidOrder
from producer.validation import (
    check_account_id,
    check_custom_tag,
    check_modify,
    check_on_tick,
    check_order_id,
    check_order_type,
    check_place,
    check_price,
    check_quantity,
    check_side,
    check_symbol,
    check_ticks,
)
from worker.broker.errors import (
    BrokerAuthError,
    BrokerBadRequest,
    BrokerProtocolError,
    BrokerRateLimited,
    BrokerRejected,
    BrokerUnavailable,
)
from worker.broker.models import (
    ENCODER,
    Account,
    Bracket,
    CancelOrderRequest,
    Contract,
    Envelope,
    LoginKeyRequest,
    LoginResponse,
    ModifyOrderRequest,
    Order,
    OrderSide,
    OrderType,
    PlaceOrderRequest,
    PlaceOrderResponse,
    Position,
    SearchAccountRequest,
    SearchAccountResponse,
    SearchContractByIdRequest,
    SearchContractByIdResponse,
    SearchContractRequest,
    SearchContractResponse,
    SearchOpenOrderRequest,
    SearchOrderRequest,
    SearchOrderResponse,
    SearchPositionRequest,
    SearchPositionResponse,
    ValidateResponse,
)
from worker.broker.retry import RetryPolicy, Sleep, may_retry, retrying
from worker.observe import Observer

E = TypeVar("E", bound=Envelope)
# How a request authenticates: not at all (login), with the token as it stands (validate,
# which must not trigger a renewal of itself), or with a live session (renewed when due,
# one re-login after a 401).
Auth = Literal["none", "token", "session"]

_ORDER_TYPES: Final = {
    "market": OrderType.MARKET,
    "limit": OrderType.LIMIT,
    "stop": OrderType.STOP,
}
# CME month codes: a contract's short name is its symbol, a month code and the year's
# last one or two digits (MNQZ6, NQZ26), which tells MNQ from NQ in a substring search.
_CONTRACT_NAME: Final = "^{symbol}[FGHJKMNQUVXZ][0-9]{{1,2}}$"


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


class TokenStore(Protocol):
    """Where a fleet of clients shares one token (``worker.tokens.SharedTokens``)."""

    async def current(self) -> Token | None:
        """The shared token, if there is one."""

    async def replace(self, stale: str | None, obtain: Callable[[], Awaitable[Token]]) -> Token:
        """A token to use instead of ``stale``: one another client already obtained, or
        ``obtain()``'s, by at most one client at a time."""


class ContractStore(Protocol):
    """Where a fleet of clients shares resolved contracts (``worker.contracts``)."""

    async def load(self, symbol: str) -> ContractInfo | None:
        """The shared contract of a symbol, if there is one."""

    async def save(self, info: ContractInfo) -> None:
        """Share a contract just resolved."""


class Budget(Protocol):
    """A request budget shared with other clients (``worker.budget.RateBudget``)."""

    async def take(self, endpoint: str, deadline: float | None) -> None:
        """Wait for room for one request; ``BrokerRateLimited`` if none before deadline."""

    async def pause(self, seconds: float) -> None:
        """Hold every client back for a while (the broker answered 429)."""


@dataclass(slots=True)
class CallStats:
    """What talking to the broker cost one intent: requests sent and time waited."""

    attempts: int = 0
    broker_ms: float = 0.0
    prepaid: int = 0
    """Requests already paid for in the rate budget (the executor's claim takes the first)."""


class ContractInfo(msgspec.Struct, frozen=True):
    """A symbol's contract as the worker uses it."""

    symbol: str
    contract_id: str
    tick_size: float | None = None
    tick_value: float | None = None
    pinned: bool = False
    """Set by hand (``set_contract_id`` or ``order-worker contract set``), not searched."""


def make_session(*, connections: int = 100, keepalive_s: float = 60.0) -> aiohttp.ClientSession:
    """The one persistent session a worker process keeps: pooled keep-alive connections."""
    connector = aiohttp.TCPConnector(
        limit=connections, keepalive_timeout=keepalive_s, ttl_dns_cache=300
    )
    return aiohttp.ClientSession(connector=connector)


def token_expiry(token: str) -> float | None:
    """The ``exp`` claim (epoch seconds) of a JWT, or None when it has none we can read."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None


def signed_brackets(
    side: str, stop_loss_ticks: int | None, take_profit_ticks: int | None
) -> tuple[Bracket | None, Bracket | None]:
    """Bracket distances signed as the live gateway requires (docs/gateway.md §5.7).

    Users give distances as positive tick counts. Long: stop-loss below (negative),
    take-profit above (positive); short: the reverse. The gateway's docs example shows
    unsigned ticks, but the live service rejects them.
    """
    direction = 1 if side == "BUY" else -1
    stop_loss = (
        None
        if stop_loss_ticks is None
        else Bracket(ticks=-direction * stop_loss_ticks, type=OrderType.STOP)
    )
    take_profit = (
        None
        if take_profit_ticks is None
        else Bracket(ticks=direction * take_profit_ticks, type=OrderType.LIMIT)
    )
    return stop_loss, take_profit


def iso(moment: datetime) -> str:
    """The gateway's timestamp format: ISO 8601 with an explicit UTC offset (§8)."""
    return moment.astimezone(UTC).isoformat()


class GatewayClient:
    """ProjectX Gateway client. One per worker process, on the process's one session.

    ``set_token``/``get_token`` and ``set_contract_id``/``get_contract_id`` keep the
    predecessor's API. Every method that talks to the broker takes an optional
    ``stats`` (requests and time are added to it) and ``deadline`` (a ``time.monotonic()``
    time after which no retry starts).
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        *,
        username: str,
        api_key: str,
        retry: RetryPolicy | None = None,
        request_timeout: float = 3.0,
        connect_timeout: float = 1.0,
        token_lifetime: float = 24 * 3600.0,
        renew_margin: float = 3600.0,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.time,
        budget: Budget | None = None,
        tokens: TokenStore | None = None,
        contracts: ContractStore | None = None,
        contract_refresh_s: float = 60.0,
        observer: Observer | None = None,
    ) -> None:
        self._session = session
        self._budget = budget
        self._tokens = tokens
        self._contract_store = contracts
        self._contract_refresh_s = contract_refresh_s
        self._observer = observer or Observer()
        self._base_url = base_url.rstrip("/")
        self._username = username
        self._api_key = api_key
        self._retry = retry or RetryPolicy()
        self._timeout = aiohttp.ClientTimeout(total=request_timeout, connect=connect_timeout)
        self._token_lifetime = token_lifetime
        self._renew_margin = renew_margin
        self._sleep = sleep
        self._clock = clock
        self._token: str | None = None
        self._token_issued = 0.0
        self._token_expires = 0.0
        self._headers: dict[str, str] = {}
        self._auth_lock = asyncio.Lock()
        self._contracts: dict[str, ContractInfo] = {}
        self._contract_checked: dict[str, float] = {}
        self.logins = 0
        """Logins performed (a test and metrics figure)."""

    def __repr__(self) -> str:
        return f"GatewayClient(base_url={self._base_url!r}, username={self._username!r})"

    # --- token ------------------------------------------------------------------------

    def set_token(self, token: str, expires_at: float | None = None) -> None:
        """Use this session token (expiry read from the JWT unless given, epoch seconds)."""
        now = self._clock()
        self._use(
            Token(token, now, expires_at or token_expiry(token) or now + self._token_lifetime)
        )

    def _use(self, token: Token) -> None:
        self._token = token.value
        self._token_issued = token.issued_at
        self._token_expires = token.expires_at
        self._headers = {
            "Authorization": f"Bearer {token.value}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }

    def get_token(self) -> str | None:
        """The current session token, if any."""
        return self._token

    @property
    def token_expires_at(self) -> float:
        """When the current token expires (epoch seconds; 0 without a token)."""
        return self._token_expires if self._token else 0.0

    def _due(self) -> bool:
        """No token, or one close enough to its expiry to renew now."""
        if self._token is None:
            return True
        return Token(self._token, self._token_issued, self._token_expires).due(
            self._clock(), self._renew_margin
        )

    async def login(self, stats: CallStats | None = None, *, deadline: float | None = None) -> None:
        """POST /api/Auth/loginKey: a new session token (§2.1), shared if a store is set."""
        async with self._auth_lock:
            await self._refresh(self._token, lambda: self._login(stats, deadline))

    async def renew_token(self, stats: CallStats | None = None) -> None:
        """POST /api/Auth/validate for a fresh token (§2.3); a full login when refused.

        With a shared store, a token another worker renewed meanwhile is used instead.
        """
        async with self._auth_lock:
            await self._refresh(self._token, lambda: self._renewed(stats, None))

    async def ensure_token(
        self, stats: CallStats | None = None, *, deadline: float | None = None
    ) -> str:
        """A token good for a while yet: the current one, the fleet's, or a renewed one."""
        if not self._due():
            assert self._token is not None
            return self._token
        async with self._auth_lock:
            # Another request may have renewed it while this one waited for the lock.
            if self._due():
                shared = await self._tokens.current() if self._tokens is not None else None
                if shared is not None and not shared.due(self._clock(), self._renew_margin):
                    self._use(shared)
                else:
                    await self._refresh(self._token, lambda: self._renewed(stats, deadline))
            assert self._token is not None
            return self._token

    async def _refresh(self, stale: str | None, obtain: Callable[[], Awaitable[Token]]) -> None:
        token = await (self._tokens.replace(stale, obtain) if self._tokens else obtain())
        self._use(token)

    async def _login(self, stats: CallStats | None, deadline: float | None) -> Token:
        body = LoginKeyRequest(user_name=self._username, api_key=self._api_key)
        answer = await self._call(
            "/api/Auth/loginKey",
            body,
            LoginResponse,
            idempotent=True,
            stats=stats,
            deadline=deadline,
            auth="none",
        )
        if not answer.token:
            raise BrokerProtocolError(
                "login answered success without a token", endpoint="/api/Auth/loginKey", sent=True
            )
        self.logins += 1
        return self._token_of(answer.token)

    async def _renewed(self, stats: CallStats | None, deadline: float | None) -> Token:
        """validate for a fresh token; a full login without a token or when refused."""
        if self._token is None or self._clock() >= self._token_expires:
            return await self._login(stats, deadline)
        try:
            answer = await self._call(
                "/api/Auth/validate",
                None,
                ValidateResponse,
                idempotent=True,
                stats=stats,
                deadline=deadline,
                auth="token",
            )
        except (BrokerRejected, BrokerAuthError):
            return await self._login(stats, deadline)
        if not answer.new_token:
            # Still valid, no new one offered: keep it until the next renewal is due.
            return Token(self._token, self._token_issued, self._token_expires)
        return self._token_of(answer.new_token)

    def _token_of(self, value: str) -> Token:
        now = self._clock()
        return Token(value, now, token_expiry(value) or now + self._token_lifetime)

    async def _relogin_after_401(
        self, refused: str, stats: CallStats | None, deadline: float | None = None
    ) -> None:
        async with self._auth_lock:
            if self._token == refused:
                await self._refresh(refused, lambda: self._login(stats, deadline))

    # --- accounts and contracts -------------------------------------------------------

    async def search_accounts(
        self, only_active: bool = True, *, stats: CallStats | None = None
    ) -> list[Account]:
        """POST /api/Account/search (§3)."""
        answer = await self._call(
            "/api/Account/search",
            SearchAccountRequest(only_active_accounts=only_active),
            SearchAccountResponse,
            idempotent=True,
            stats=stats,
        )
        return answer.accounts or []

    async def search_contracts(
        self,
        text: str,
        *,
        live: bool = False,
        stats: CallStats | None = None,
        deadline: float | None = None,
    ) -> list[Contract]:
        """POST /api/Contract/search (§4.1): a substring search, at most 20 answers."""
        answer = await self._call(
            "/api/Contract/search",
            SearchContractRequest(search_text=text, live=live),
            SearchContractResponse,
            idempotent=True,
            stats=stats,
            deadline=deadline,
        )
        return answer.contracts or []

    async def contract_by_id(
        self, contract_id: str, *, stats: CallStats | None = None, deadline: float | None = None
    ) -> Contract:
        """POST /api/Contract/searchById (§4.2)."""
        answer = await self._call(
            "/api/Contract/searchById",
            SearchContractByIdRequest(contract_id=contract_id),
            SearchContractByIdResponse,
            idempotent=True,
            stats=stats,
            deadline=deadline,
        )
        if answer.contract is None:
            raise BrokerProtocolError(
                "searchById answered success without a contract",
                endpoint="/api/Contract/searchById",
                sent=True,
            )
        return answer.contract

    def set_contract_id(
        self,
        symbol: str,
        contract_id: str,
        tick_size: float | None = None,
        tick_value: float | None = None,
    ) -> None:
        """Pin a symbol to a contract ID (e.g. to trade a month other than the front)."""
        key = check_symbol(symbol)
        self._contracts[key] = ContractInfo(key, contract_id, tick_size, tick_value, pinned=True)
        self._contract_checked[key] = math.inf  # never re-read from a shared store

    def get_contract_id(self, symbol: str) -> str | None:
        """The cached contract ID of a symbol, if any."""
        info = self._contracts.get(check_symbol(symbol))
        return info.contract_id if info else None

    async def resolve_contract(
        self, symbol: str, *, stats: CallStats | None = None, deadline: float | None = None
    ) -> ContractInfo:
        """Symbol to contract (ID, tick size, tick value).

        Cached here; with a shared store, looked up there first (and re-read every
        ``contract_refresh_s``, so an override set from the command line reaches every
        worker) and searched at the broker only when nobody has it yet.
        """
        key = check_symbol(symbol)
        info = self._contracts.get(key)
        now = time.monotonic()
        checked = self._contract_checked.get(key, -math.inf)
        pinned_here = checked == math.inf
        if (
            info is not None
            and info.tick_size is not None
            and now - checked < self._contract_refresh_s
        ):
            return info
        if self._contract_store is not None and not pinned_here:
            info = await self._contract_store.load(key)
        if info is None or info.tick_size is None:
            if info is not None:
                # Pinned without a tick size: fetch it once.
                contract = await self.contract_by_id(
                    info.contract_id, stats=stats, deadline=deadline
                )
            else:
                found = await self.search_contracts(key, stats=stats, deadline=deadline)
                contract = self._pick_contract(key, found)
            pinned = info is not None and info.pinned
            info = ContractInfo(key, contract.id, contract.tick_size, contract.tick_value, pinned)
            if self._contract_store is not None and not pinned:
                await self._contract_store.save(info)
        self._contracts[key] = info
        if not pinned_here:
            self._contract_checked[key] = now
        return info

    @staticmethod
    def _pick_contract(symbol: str, contracts: list[Contract]) -> Contract:
        pattern = re.compile(_CONTRACT_NAME.format(symbol=re.escape(symbol)))
        matches = [c for c in contracts if pattern.match(c.name)]
        if not matches:
            raise InvalidOrder(f"no contract found for symbol {symbol!r}", code="unknown_symbol")
        # The front month is the active one; the gateway lists it first when several match.
        return next((c for c in matches if c.active_contract), matches[0])

    # --- orders -----------------------------------------------------------------------

    async def place_order(
        self,
        *,
        account_id: int,
        symbol: str,
        side: str,
        quantity: int,
        order_type: IntentOrderType | str = "market",
        limit_price: float | None = None,
        stop_price: float | None = None,
        stop_loss_ticks: int | None = None,
        take_profit_ticks: int | None = None,
        custom_tag: str | None = None,
        stats: CallStats | None = None,
        deadline: float | None = None,
    ) -> int:
        """POST /api/Order/place; returns the order ID.

        Validated before anything is sent. Sent once: a timeout, dropped connection or
        5xx raises ``BrokerUnavailable`` with ``sent=True`` (the order may exist), and only
        errors that prove the request never ran (refused connection, 429) are retried here.
        """
        account = check_account_id(account_id)
        kind = check_order_type(order_type)
        direction = check_side(side)
        size = check_quantity(quantity)
        limit = check_price(limit_price, "limit_price")
        stop = check_price(stop_price, "stop_price")
        check_place(kind, limit, stop)
        stop_loss, take_profit = signed_brackets(
            direction,
            check_ticks(stop_loss_ticks, "stop_loss_ticks"),
            check_ticks(take_profit_ticks, "take_profit_ticks"),
        )
        tag = check_custom_tag(custom_tag)
        # The look-ups before the place (contract, login) stop retrying at the deadline too,
        # or an order could reach the broker long after the intent's deadline.
        with _before_sending("/api/Order/place"):
            contract = await self.resolve_contract(symbol, stats=stats, deadline=deadline)
        if contract.tick_size:
            for value, field in ((limit, "limit_price"), (stop, "stop_price")):
                if value is not None:
                    check_on_tick(value, contract.tick_size, field)
        request = PlaceOrderRequest(
            account_id=account,
            contract_id=contract.contract_id,
            type=_ORDER_TYPES[kind],
            side=OrderSide.BID if direction == "BUY" else OrderSide.ASK,
            size=size,
            limit_price=limit,
            stop_price=stop,
            custom_tag=tag,
            stop_loss_bracket=stop_loss,
            take_profit_bracket=take_profit,
        )
        answer = await self._call(
            "/api/Order/place",
            request,
            PlaceOrderResponse,
            idempotent=False,
            stats=stats,
            deadline=deadline,
        )
        if answer.order_id is None:
            raise BrokerProtocolError(
                "place answered success without an orderId", endpoint="/api/Order/place", sent=True
            )
        return answer.order_id

    async def modify_order(
        self,
        *,
        account_id: int,
        order_id: int,
        quantity: int | None = None,
        limit_price: float | None = None,
        stop_price: float | None = None,
        stats: CallStats | None = None,
        deadline: float | None = None,
    ) -> None:
        """POST /api/Order/modify. Absolute values, so a repeat is harmless and retried."""
        size = None if quantity is None else check_quantity(quantity)
        limit = check_price(limit_price, "limit_price")
        stop = check_price(stop_price, "stop_price")
        check_modify(size, limit, stop)
        request = ModifyOrderRequest(
            account_id=check_account_id(account_id),
            order_id=check_order_id(order_id),
            size=size,
            limit_price=limit,
            stop_price=stop,
        )
        await self._call(
            "/api/Order/modify", request, Envelope, idempotent=True, stats=stats, deadline=deadline
        )

    async def cancel_order(
        self,
        *,
        account_id: int,
        order_id: int,
        stats: CallStats | None = None,
        deadline: float | None = None,
    ) -> None:
        """POST /api/Order/cancel. A repeat is refused as already cancelled, never harmful."""
        request = CancelOrderRequest(
            account_id=check_account_id(account_id), order_id=check_order_id(order_id)
        )
        await self._call(
            "/api/Order/cancel", request, Envelope, idempotent=True, stats=stats, deadline=deadline
        )

    async def search_orders(
        self,
        account_id: int,
        start: datetime,
        end: datetime | None = None,
        *,
        stats: CallStats | None = None,
        deadline: float | None = None,
    ) -> list[Order]:
        """POST /api/Order/search: the account's orders created in [start, end or now]."""
        request = SearchOrderRequest(
            account_id=check_account_id(account_id),
            start_timestamp=iso(start),
            end_timestamp=None if end is None else iso(end),
        )
        answer = await self._call(
            "/api/Order/search",
            request,
            SearchOrderResponse,
            idempotent=True,
            stats=stats,
            deadline=deadline,
        )
        return answer.orders or []

    async def search_open_orders(
        self, account_id: int, *, stats: CallStats | None = None, deadline: float | None = None
    ) -> list[Order]:
        """POST /api/Order/searchOpen: the account's working orders."""
        answer = await self._call(
            "/api/Order/searchOpen",
            SearchOpenOrderRequest(account_id=check_account_id(account_id)),
            SearchOrderResponse,
            idempotent=True,
            stats=stats,
            deadline=deadline,
        )
        return answer.orders or []

    async def search_open_positions(
        self, account_id: int, *, stats: CallStats | None = None, deadline: float | None = None
    ) -> list[Position]:
        """POST /api/Position/searchOpen: the account's open positions."""
        answer = await self._call(
            "/api/Position/searchOpen",
            SearchPositionRequest(account_id=check_account_id(account_id)),
            SearchPositionResponse,
            idempotent=True,
            stats=stats,
            deadline=deadline,
        )
        return answer.positions or []

    async def find_order(
        self,
        account_id: int,
        *,
        custom_tag: str | None = None,
        order_id: int | None = None,
        since: datetime,
        stats: CallStats | None = None,
        deadline: float | None = None,
    ) -> Order | None:
        """The account's order with this tag or ID, created since ``since``.

        No gateway search filters by tag (docs/gateway.md §5.3), so this searches a time
        window and filters. The window opens a few minutes early to absorb clock skew
        between this host and the broker.
        """
        orders = await self.search_orders(
            account_id, since - timedelta(minutes=5), stats=stats, deadline=deadline
        )
        for order in orders:
            if (custom_tag is not None and order.custom_tag == custom_tag) or (
                order_id is not None and order.id == order_id
            ):
                return order
        return None

    # --- transport --------------------------------------------------------------------

    async def _call(
        self,
        endpoint: str,
        body: msgspec.Struct | None,
        response_type: type[E],
        *,
        idempotent: bool,
        stats: CallStats | None,
        deadline: float | None = None,
        auth: Auth = "session",
    ) -> E:
        payload = b"{}" if body is None else ENCODER.encode(body)
        try:
            # The first attempt outside tenacity: setting up its controller costs more
            # than the rest of the call's Python work, and most calls need no retry.
            return await self._attempt(endpoint, payload, response_type, stats, auth, deadline)
        except (BrokerUnavailable, BrokerRateLimited) as error:
            if not may_retry(error, idempotent=idempotent) or not self._retry.schedule:
                raise
            first = error
        controller = retrying(
            self._retry,
            idempotent=idempotent,
            deadline=deadline,
            sleep=self._sleep,
            on_retry=lambda: self._observer.broker_retry(endpoint),
        )
        async for attempt in controller:
            with attempt:
                if attempt.retry_state.attempt_number == 1:
                    raise first  # replay the first attempt's failure to the controller
                return await self._attempt(endpoint, payload, response_type, stats, auth, deadline)
        raise AssertionError("unreachable: tenacity re-raises the last error")

    async def _attempt(
        self,
        endpoint: str,
        payload: bytes,
        response_type: type[E],
        stats: CallStats | None,
        auth: Auth,
        deadline: float | None = None,
    ) -> E:
        token = None
        if auth == "session":
            with _before_sending(endpoint):
                token = await self.ensure_token(stats, deadline=deadline)
        status, retry_after, body = await self._post(endpoint, payload, auth, stats, deadline)
        if status == 401 and token is not None:
            # One re-login and one retry (the refused request never ran).
            with _before_sending(endpoint):
                await self._relogin_after_401(token, stats, deadline)
            status, retry_after, body = await self._post(endpoint, payload, auth, stats, deadline)
            if status == 401:
                raise BrokerAuthError(
                    "token refused again right after a fresh login", endpoint=endpoint
                )
        if status == 429 and self._budget is not None:
            # The broker says the fleet is over its limit: hold every worker back.
            await self._budget.pause(_seconds(retry_after) or 1.0)
        return self._judge(endpoint, status, retry_after, body, response_type)

    async def _post(
        self,
        endpoint: str,
        payload: bytes,
        auth: Auth,
        stats: CallStats | None,
        deadline: float | None,
    ) -> tuple[int, str | None, bytes]:
        if stats is not None and stats.prepaid > 0:
            stats.prepaid -= 1
        elif self._budget is not None:
            await self._budget.take(endpoint, deadline)
        headers = self._headers if auth != "none" else _JSON_HEADERS
        started = time.perf_counter()
        if stats is not None:
            stats.attempts += 1
        outcome = "timeout"
        try:
            async with self._session.post(
                self._base_url + endpoint, data=payload, headers=headers, timeout=self._timeout
            ) as response:
                body = await response.read()
                outcome = str(response.status)
                return response.status, response.headers.get("Retry-After"), body
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as error:
            # The connection never opened: the request provably did not run.
            outcome = "refused"
            raise BrokerUnavailable(
                f"{endpoint}: cannot connect to the broker ({type(error).__name__})",
                endpoint=endpoint,
                sent=False,
            ) from None
        except (TimeoutError, aiohttp.ClientError) as error:
            outcome = "timeout" if isinstance(error, TimeoutError) else "connection"
            raise BrokerUnavailable(
                f"{endpoint}: no answer from the broker ({type(error).__name__}); "
                "the request may have taken effect",
                endpoint=endpoint,
                sent=True,
            ) from None
        finally:
            elapsed = time.perf_counter() - started
            if stats is not None:
                stats.broker_ms += elapsed * 1000
            self._observer.broker_request(endpoint, outcome, elapsed)

    def _judge(
        self,
        endpoint: str,
        status: int,
        retry_after: str | None,
        body: bytes,
        response_type: type[E],
    ) -> E:
        if status == 200:
            try:
                answer: E = _decoder(response_type).decode(body)
            except msgspec.DecodeError as error:
                raise BrokerProtocolError(
                    f"{endpoint}: unreadable answer ({error})", endpoint=endpoint, sent=True
                ) from None
            if not answer.success:
                if endpoint == "/api/Auth/loginKey":
                    raise BrokerAuthError(
                        f"login refused (gateway code {answer.error_code}): "
                        f"{answer.error_message or 'no message'}",
                        endpoint=endpoint,
                    )
                raise BrokerRejected(endpoint, answer.error_code, answer.error_message)
            return answer
        if status == 429:
            raise BrokerRateLimited(endpoint, _seconds(retry_after))
        if status >= 500:
            raise BrokerUnavailable(
                f"{endpoint}: broker answered HTTP {status}; the request may have taken effect",
                endpoint=endpoint,
                sent=True,
            )
        if status == 401:
            raise BrokerAuthError(
                "the broker refused the credentials (HTTP 401)", endpoint=endpoint
            )
        raise BrokerBadRequest(endpoint, status, _problem_title(body))


@contextlib.contextmanager
def _before_sending(endpoint: str) -> Iterator[None]:
    """A failure of what must come before a request (login, contract look-up) proves that
    request was never sent, whatever the failure says about itself."""
    try:
        yield
    except BrokerUnavailable as error:
        if not error.sent and error.endpoint == endpoint:
            raise
        raise BrokerUnavailable(
            f"{endpoint} not sent: {error.message}", endpoint=endpoint, sent=False
        ) from None


_JSON_HEADERS: Final = {"Content-Type": "application/json", "Accept": "application/json"}
_DECODERS: dict[type[Any], msgspec.json.Decoder[Any]] = {}


def _decoder(response_type: type[E]) -> msgspec.json.Decoder[E]:
    """One decoder per response type, made on first use (msgspec's advice for hot paths)."""
    decoder = _DECODERS.get(response_type)
    if decoder is None:
        decoder = _DECODERS[response_type] = msgspec.json.Decoder(response_type)
    return decoder


def _seconds(header: str | None) -> float | None:
    """A ``Retry-After`` in seconds (the HTTP-date form is not used by gateways we know)."""
    if header is None:
        return None
    try:
        value = float(header)
    except ValueError:
        return None
    return value if value >= 0 else None


def _problem_title(body: bytes) -> str:
    """The title of an ASP.NET problem body (§1), without echoing request values."""
    try:
        problem = json.loads(body)
    except ValueError:
        return "request refused"
    title = problem.get("title") if isinstance(problem, dict) else None
    return title if isinstance(title, str) else "request refused"
