"""Errors of the broker client, part of the project's one hierarchy (``producer.errors``).

Each carries the endpoint it came from; none carries a request body, a header or the text
of an underlying library exception (aiohttp's can include request headers, hence the token).
"""

from __future__ import annotations

from producer.errors import OrderError


class BrokerError(OrderError):
    """Something went wrong talking to the broker."""

    code = "broker_error"

    def __init__(self, message: str, *, endpoint: str, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.endpoint = endpoint


class BrokerRejected(BrokerError):
    """The gateway answered ``success: false``: a business rejection, never retried."""

    code = "broker_rejected"

    def __init__(self, endpoint: str, broker_code: int, broker_message: str | None) -> None:
        text = broker_message or "no message"
        super().__init__(
            f"{endpoint} refused (gateway code {broker_code}): {text}", endpoint=endpoint
        )
        self.broker_code = broker_code
        self.broker_message = broker_message


class BrokerBadRequest(BrokerError):
    """The gateway refused the request itself (HTTP 4xx other than 401 and 429)."""

    code = "broker_bad_request"

    def __init__(self, endpoint: str, status: int, detail: str) -> None:
        super().__init__(f"{endpoint} answered HTTP {status}: {detail}", endpoint=endpoint)
        self.status = status


class BrokerAuthError(BrokerError):
    """Login refused, or the token was refused again right after a fresh login."""

    code = "broker_auth_failed"


class BrokerRateLimited(BrokerError):
    """HTTP 429. The request was refused before it ran, so it is always safe to send again."""

    code = "broker_rate_limited"

    def __init__(self, endpoint: str, retry_after: float | None) -> None:
        hint = f"; retry after {retry_after:g} s" if retry_after is not None else ""
        super().__init__(f"{endpoint} rate-limited (HTTP 429){hint}", endpoint=endpoint)
        self.retry_after = retry_after


class BrokerUnavailable(BrokerError):
    """No usable answer: connection failure, timeout, dropped connection, HTTP 5xx.

    ``sent`` is False only when the error proves the request never reached the broker
    (the connection was refused or never opened); otherwise the request may have taken
    effect and a place must be looked up by its tag before it is sent again.
    """

    code = "broker_unavailable"

    def __init__(self, message: str, *, endpoint: str, sent: bool) -> None:
        super().__init__(message, endpoint=endpoint)
        self.sent = sent


class BrokerProtocolError(BrokerUnavailable):
    """The gateway answered something that is not the JSON it documents."""

    code = "broker_protocol_error"
