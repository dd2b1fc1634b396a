"""The project's one error hierarchy.

Every error carries a stable machine-readable ``code`` (the same string that appears in an
``OrderResult.error_code``) and a human ``message``. Messages are built from our own words
and the broker's public error text, never from request bodies or headers, so they cannot
carry an API key or a token.
"""

from __future__ import annotations


class OrderError(Exception):
    """Base of every error raised by producer, worker and broker client."""

    code: str = "order_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class InvalidOrder(OrderError):
    """An intent or order request refused before anything was sent.

    ``code`` names the rule that failed (``invalid_quantity``, ``missing_limit_price``,
    ``price_off_tick``, ...); see the README's error table.
    """

    code = "invalid_order"


class ResultTimeout(OrderError):
    """No result arrived within the caller's timeout.

    The intent may still be executed (or may already have been): fetch its outcome later
    with ``OrderClient.result(request_id)``.
    """

    code = "result_timeout"

    def __init__(self, request_id: str, timeout: float) -> None:
        super().__init__(
            f"no result for request {request_id} within {timeout:g} s; "
            "it may still complete: fetch it with OrderClient.result()"
        )
        self.request_id = request_id
        self.timeout = timeout


class ClientClosed(OrderError):
    """The OrderClient was used outside ``async with`` or after it was closed."""

    code = "client_closed"


class QueueUnavailable(OrderError):
    """Redis, the queue between strategies and workers, cannot be reached.

    Raised by ``OrderClient.open()`` (the client is left closed: open it again later)
    and by a call whose intent could not be enqueued before its deadline. The message
    names the Redis URL with its password masked.
    """

    code = "queue_unavailable"


class QueueRefused(OrderError):
    """Redis refused a command of the client (a key of ours holds something else, say)."""

    code = "queue_refused"


class InvalidConfig(OrderError):
    """A client setting that cannot work (a Redis URL with no usable port, ...)."""

    code = "invalid_config"


class MarketDataUnavailable(OrderError):
    """Market data could not be had: no worker of the fleet serves the symbol in time
    (``feed_unavailable``), the broker does not know it (``unknown_symbol``), or bar
    history could not be fetched (``history_unavailable``)."""

    code = "market_data_unavailable"
