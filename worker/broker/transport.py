"""HTTP to the gateway: one persistent aiohttp session, JSON in and out, answers judged, retries.

Every request is a POST of a msgspec Struct. An answer is judged by its ``success`` flag,
never by the HTTP status alone (docs/gateway.md §1), and every failure becomes one error of
the project's hierarchy that says whether the request may have reached the broker
(``BrokerUnavailable.sent``). Retries follow ``retry.py``; the first attempt runs outside
tenacity, which costs more to set up than the rest of a call's Python work.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol, TypeVar

import aiohttp
import msgspec

from worker.broker.errors import (
    BrokerAuthError,
    BrokerBadRequest,
    BrokerProtocolError,
    BrokerRateLimited,
    BrokerRejected,
    BrokerUnavailable,
)
from worker.broker.models import ENCODER, Envelope, ProblemDetails
from worker.broker.retry import RetryPolicy, Sleep, may_retry, retrying
from worker.observe import Observer

E = TypeVar("E", bound=Envelope)
# How a request authenticates: not at all (login), with the token as it stands (validate,
# which must not trigger a renewal of itself), or with a live session (renewed when due,
# one re-login after a 401).
AuthMode = Literal["none", "token", "session"]

LOGIN_ENDPOINT: Final = "/api/Auth/loginKey"
_JSON_HEADERS: Final = {"Content-Type": "application/json", "Accept": "application/json"}
_PROBLEM: Final = msgspec.json.Decoder(ProblemDetails)


@dataclass(slots=True)
class CallStats:
    """What talking to the broker cost one intent: requests sent and time waited."""

    attempts: int = 0
    broker_ms: float = 0.0
    prepaid: int = 0
    """Requests already paid for in the rate budget (the executor's claim takes the first)."""


class Budget(Protocol):
    """A request budget shared with other clients (``worker.fleet.budget.RateBudget``)."""

    async def take(self, endpoint: str, deadline: float | None) -> None:
        """Wait for room for one request; ``BrokerRateLimited`` if none before deadline."""

    async def pause(self, endpoint: str, seconds: float) -> None:
        """Hold every client back from ``endpoint``'s limit for a while (the broker
        answered 429)."""


class Authenticator(Protocol):
    """Where a request gets its session (``worker.broker.auth.SessionAuth``)."""

    headers: dict[str, str]
    """The headers of an authenticated request (the Bearer token)."""

    async def ensure_token(
        self, stats: CallStats | None = None, *, deadline: float | None = None
    ) -> str:
        """A token good for a while yet, renewing it when due."""

    async def after_401(
        self, refused: str, stats: CallStats | None, deadline: float | None
    ) -> None:
        """The broker refused ``refused``: log in again (once, however many asked)."""


def make_session(*, connections: int = 100, keepalive_s: float = 60.0) -> aiohttp.ClientSession:
    """The one persistent session a worker process keeps: pooled keep-alive connections."""
    connector = aiohttp.TCPConnector(
        limit=connections, keepalive_timeout=keepalive_s, ttl_dns_cache=300
    )
    return aiohttp.ClientSession(connector=connector)


@contextlib.contextmanager
def before_sending(endpoint: str) -> Iterator[None]:
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


class Transport:
    """POSTs to the gateway on one session, with the fleet's budget and the retry policy.

    ``auth`` is set by the client once its authenticator exists (the authenticator uses
    this transport for its own login requests).
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        *,
        retry: RetryPolicy | None = None,
        request_timeout: float = 3.0,
        connect_timeout: float = 1.0,
        sleep: Sleep = asyncio.sleep,
        budget: Budget | None = None,
        observer: Observer | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.auth: Authenticator | None = None
        self._session = session
        self._budget = budget
        self._observer = observer or Observer()
        self._retry = retry or RetryPolicy()
        self._timeout = aiohttp.ClientTimeout(total=request_timeout, connect=connect_timeout)
        self._sleep = sleep

    async def call(
        self,
        endpoint: str,
        body: msgspec.Struct | None,
        response_type: type[E],
        *,
        idempotent: bool,
        stats: CallStats | None,
        deadline: float | None = None,
        auth: AuthMode = "session",
    ) -> E:
        """POST ``body`` to ``endpoint`` and decode a successful answer.

        ``deadline`` is a ``time.monotonic()`` time after which no retry starts.
        """
        payload = b"{}" if body is None else ENCODER.encode(body)
        try:
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
        auth: AuthMode,
        deadline: float | None = None,
    ) -> E:
        token = None
        if auth == "session":
            assert self.auth is not None
            with before_sending(endpoint):
                token = await self.auth.ensure_token(stats, deadline=deadline)
        status, retry_after, body = await self._post(endpoint, payload, auth, stats, deadline)
        if status == 401 and token is not None:
            assert self.auth is not None
            # One re-login and one retry (the refused request never ran).
            with before_sending(endpoint):
                await self.auth.after_401(token, stats, deadline)
            status, retry_after, body = await self._post(endpoint, payload, auth, stats, deadline)
            if status == 401:
                raise BrokerAuthError(
                    "token refused again right after a fresh login", endpoint=endpoint
                )
        if status == 429 and self._budget is not None:
            # The broker says the fleet is over its limit: hold every worker back.
            await self._budget.pause(endpoint, retry_after_seconds(retry_after) or 1.0)
        return self._judge(endpoint, status, retry_after, body, response_type)

    async def _post(
        self,
        endpoint: str,
        payload: bytes,
        auth: AuthMode,
        stats: CallStats | None,
        deadline: float | None,
    ) -> tuple[int, str | None, bytes]:
        if stats is not None and stats.prepaid > 0:
            stats.prepaid -= 1
        elif self._budget is not None:
            await self._budget.take(endpoint, deadline)
        headers = _JSON_HEADERS if auth == "none" or self.auth is None else self.auth.headers
        started = time.perf_counter()
        if stats is not None:
            stats.attempts += 1
        outcome = "timeout"
        try:
            async with self._session.post(
                self.base_url + endpoint, data=payload, headers=headers, timeout=self._timeout
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
                if endpoint == LOGIN_ENDPOINT:
                    raise BrokerAuthError(
                        f"login refused (gateway code {answer.error_code}): "
                        f"{answer.error_message or 'no message'}",
                        endpoint=endpoint,
                    )
                raise BrokerRejected(endpoint, answer.error_code, answer.error_message)
            return answer
        if status == 429:
            raise BrokerRateLimited(endpoint, retry_after_seconds(retry_after))
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
        raise BrokerBadRequest(endpoint, status, problem_title(body))


_DECODERS: dict[type[Any], msgspec.json.Decoder[Any]] = {}


def _decoder(response_type: type[E]) -> msgspec.json.Decoder[E]:
    """One decoder per response type, made on first use (msgspec's advice for hot paths)."""
    decoder = _DECODERS.get(response_type)
    if decoder is None:
        decoder = _DECODERS[response_type] = msgspec.json.Decoder(response_type)
    return decoder


def retry_after_seconds(header: str | None) -> float | None:
    """A ``Retry-After`` in seconds (the HTTP-date form is not used by gateways we know)."""
    if header is None:
        return None
    try:
        value = float(header)
    except ValueError:
        return None
    return value if value >= 0 else None


def problem_title(body: bytes) -> str:
    """The title of an ASP.NET problem body (§1), without echoing request values."""
    try:
        problem = _PROBLEM.decode(body)
    except msgspec.DecodeError:
        return "request refused"
    return problem.title or "request refused"
