"""``OrderClient``: what a strategy imports to send order intents and await their results.

One client holds one Redis connection pool, one reply stream of its own and one background
reader that resolves every call waiting on that stream, so many calls can be in flight at
once. Calls validate before they enqueue; nothing blocks the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import OrderedDict
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self, cast

import msgspec
import redis.exceptions
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from ow_core.aio import cancel_and_wait
from ow_core.backoff import Backoff
from ow_core.fastlane import FastLane, Script
from ow_core.keys import DEFAULT_PREFIX, ORDER_QUEUE_TTL_S, Keys
from ow_core.redis_down import REDIS_ERRORS, is_redis_down
from producer.contract import (
    DATA_FIELD,
    VERSION_BYTES,
    VERSION_FIELD,
    CancelOrder,
    Intent,
    ModifyOrder,
    OrderResult,
    PlaceOrder,
    decode_result,
    encode_intent,
)
from producer.errors import ClientClosed, InvalidOrder, ResultTimeout
from producer.replay import IntentLog
from producer.validation import check_account_id, validate_intent

log = logging.getLogger("producer.client")

DEFAULT_REDIS_URL: Final = "redis://127.0.0.1:6379/0"
_READ_BLOCK_MS: Final = 1000
_EXPIRY_GRACE_S: Final = 1.0
_LATE_RESULTS: Final = 10_000
# A follow-up (modify, cancel) is queued under its order in the same step as it is added to
# the stream, so workers apply follow-ups of one order in submission order.
_SUBMIT_FOLLOW_UP: Final = Script("""
local id = redis.call('XADD', KEYS[1], '*', 'v', ARGV[1], 'd', ARGV[2])
redis.call('RPUSH', KEYS[2], id)
redis.call('EXPIRE', KEYS[2], ARGV[3])
return id
""")


def new_request_id() -> str:
    """A fresh request ID: 96 random bits, 16 URL-safe characters."""
    return secrets.token_urlsafe(12)


class OrderClient:
    """Submit order intents to the workers through Redis and await their results.

    Use it as ``async with OrderClient(url, account_id=...) as client:``. Every call takes
    ``timeout`` (seconds, default the client's) and returns the ``OrderResult``; when no
    result arrives in time it raises ``ResultTimeout`` carrying the ``request_id``, and
    ``await client.result(request_id)`` fetches the result later. The intent's deadline is
    its creation time plus the timeout: a worker refuses (``expired``) what it picks up
    later than that, so a stale order never reaches the broker.
    """

    def __init__(
        self,
        redis_url: str = DEFAULT_REDIS_URL,
        account_id: int | None = None,
        *,
        timeout: float = 10.0,
        key_prefix: str = DEFAULT_PREFIX,
        record: str | Path | None = None,
    ) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0, got {timeout!r}")
        self.account_id = None if account_id is None else check_account_id(account_id)
        self.timeout = timeout
        self.keys = Keys(key_prefix)
        self.client_id = secrets.token_hex(8)
        self.reply_stream = self.keys.reply(self.client_id)
        self._redis_url = redis_url
        self._redis: Redis | None = None
        self._reader: asyncio.Task[None] | None = None
        self._waiting: dict[str, asyncio.Future[OrderResult]] = {}
        self._late: OrderedDict[str, OrderResult] = OrderedDict()
        self._record = None if record is None else IntentLog(record)
        self._lane: FastLane | None = None
        self._reader_lane: FastLane | None = None

    def __repr__(self) -> str:
        return f"OrderClient(client_id={self.client_id!r}, account_id={self.account_id!r})"

    new_request_id = staticmethod(new_request_id)

    # --- life cycle -------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def open(self) -> None:
        """Connect and start the reply reader (``async with`` does this for you)."""
        if self._redis is not None:
            return
        self._redis = Redis.from_url(
            self._redis_url,
            # A blocking read must never hit the socket timeout.
            socket_timeout=_READ_BLOCK_MS / 1000 + 5,
            socket_connect_timeout=2,
            # Safe to repeat: a duplicated intent is answered once per entry from the
            # result stored under its request ID, never executed twice.
            retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), 3),
            retry_on_error=[redis.exceptions.ConnectionError, redis.exceptions.TimeoutError],
        )
        await self._redis.ping()
        # The hot path (enqueue, read replies) on pipelined connections of its own.
        self._lane = FastLane(self._redis_url, timeout=5.0)
        self._reader_lane = FastLane(self._redis_url, timeout=_READ_BLOCK_MS / 1000 + 5)
        self._reader = asyncio.create_task(self._read_replies(), name=f"replies-{self.client_id}")

    async def close(self) -> None:
        """Stop the reader and close the connections; calls still waiting get ClientClosed."""
        if self._reader is not None:
            await cancel_and_wait([self._reader])
            self._reader = None
        for request_id, future in self._waiting.items():
            if not future.done():
                future.set_exception(ClientClosed(f"client closed while waiting for {request_id}"))
        self._waiting.clear()
        if self._redis is not None:
            with contextlib.suppress(redis.exceptions.RedisError):
                await self._redis.delete(self.reply_stream)
            await self._redis.aclose()
            self._redis = None
        for lane in (self._lane, self._reader_lane):
            if lane is not None:
                await lane.close()
        self._lane = self._reader_lane = None
        if self._record is not None:
            self._record.close()

    # --- the predecessor's API, through the queue ---------------------------------------

    async def place_order(
        self,
        symbol: str,
        side: str,
        quantity: int,
        *,
        account_id: int | None = None,
        order_type: str = "market",
        limit_price: float | None = None,
        stop_price: float | None = None,
        stop_loss_ticks: int | None = None,
        take_profit_ticks: int | None = None,
        custom_tag: str | None = None,
        cancel_after: float | None = None,
        timeout: float | None = None,
        request_id: str | None = None,
    ) -> OrderResult:
        """Place an order (market, limit or stop), with optional brackets in ticks.

        Bracket distances are positive tick counts; the worker signs them for the
        gateway. ``cancel_after`` (seconds) cancels the order then if it is still open.
        """
        intent = self.make_place(
            symbol,
            side,
            quantity,
            account_id=account_id,
            order_type=order_type,
            limit_price=limit_price,
            stop_price=stop_price,
            stop_loss_ticks=stop_loss_ticks,
            take_profit_ticks=take_profit_ticks,
            custom_tag=custom_tag,
            cancel_after=cancel_after,
            timeout=timeout,
            request_id=request_id,
        )
        return await self._call(intent, timeout)

    place_market_order = place_order
    """The predecessor's name for ``place_order`` (``order_type`` says which kind)."""

    async def modify_order(
        self,
        order_id: int,
        *,
        price: float | None = None,
        quantity: int | None = None,
        stop_price: float | None = None,
        account_id: int | None = None,
        timeout: float | None = None,
        request_id: str | None = None,
    ) -> OrderResult:
        """Change a working order: ``price`` is the limit price, as in the predecessor."""
        intent = self.make_modify(
            order_id,
            price=price,
            quantity=quantity,
            stop_price=stop_price,
            account_id=account_id,
            timeout=timeout,
            request_id=request_id,
        )
        return await self._call(intent, timeout)

    async def cancel_order(
        self,
        order_id: int,
        *,
        account_id: int | None = None,
        timeout: float | None = None,
        request_id: str | None = None,
    ) -> OrderResult:
        """Cancel a working order (cancelling one already cancelled is accepted)."""
        intent = self.make_cancel(
            order_id, account_id=account_id, timeout=timeout, request_id=request_id
        )
        return await self._call(intent, timeout)

    # --- lower level --------------------------------------------------------------------

    def make_place(
        self,
        symbol: str,
        side: str,
        quantity: int,
        *,
        account_id: int | None = None,
        order_type: str = "market",
        limit_price: float | None = None,
        stop_price: float | None = None,
        stop_loss_ticks: int | None = None,
        take_profit_ticks: int | None = None,
        custom_tag: str | None = None,
        cancel_after: float | None = None,
        timeout: float | None = None,
        request_id: str | None = None,
    ) -> PlaceOrder:
        """A validated place intent addressed to this client's reply stream (not sent)."""
        created, deadline = self._times(timeout)
        intent = PlaceOrder(
            request_id=request_id or new_request_id(),
            reply_to=self.reply_stream,
            account_id=self._account(account_id),
            created_at=created,
            deadline=deadline,
            symbol=symbol,
            side=cast(Any, side),
            quantity=quantity,
            order_type=cast(Any, order_type),
            limit_price=limit_price,
            stop_price=stop_price,
            stop_loss_ticks=stop_loss_ticks,
            take_profit_ticks=take_profit_ticks,
            custom_tag=custom_tag,
            cancel_after=cancel_after,
        )
        return cast(PlaceOrder, validate_intent(intent))

    def make_modify(
        self,
        order_id: int,
        *,
        price: float | None = None,
        quantity: int | None = None,
        stop_price: float | None = None,
        account_id: int | None = None,
        timeout: float | None = None,
        request_id: str | None = None,
    ) -> ModifyOrder:
        """A validated modify intent (not sent)."""
        created, deadline = self._times(timeout)
        intent = ModifyOrder(
            request_id=request_id or new_request_id(),
            reply_to=self.reply_stream,
            account_id=self._account(account_id),
            created_at=created,
            deadline=deadline,
            order_id=order_id,
            quantity=quantity,
            limit_price=price,
            stop_price=stop_price,
        )
        return cast(ModifyOrder, validate_intent(intent))

    def make_cancel(
        self,
        order_id: int,
        *,
        account_id: int | None = None,
        timeout: float | None = None,
        request_id: str | None = None,
    ) -> CancelOrder:
        """A validated cancel intent (not sent)."""
        created, deadline = self._times(timeout)
        intent = CancelOrder(
            request_id=request_id or new_request_id(),
            reply_to=self.reply_stream,
            account_id=self._account(account_id),
            created_at=created,
            deadline=deadline,
            order_id=order_id,
        )
        return cast(CancelOrder, validate_intent(intent))

    async def submit(self, intent: Intent) -> str:
        """Validate and enqueue an intent; returns its request ID (await it with ``wait``).

        The intent's ``reply_to`` should be this client's ``reply_stream`` for ``wait`` to
        see its result (the ``make_*`` methods do that).
        """
        self._connected()
        intent = validate_intent(intent)
        # Registered before the XADD, so even an instant reply finds its waiter.
        self._waiting.setdefault(intent.request_id, asyncio.get_running_loop().create_future())
        fields = encode_intent(intent)
        backoff = Backoff(0.05, 1.0)
        try:
            while True:
                try:
                    await self._enqueue(intent, fields)
                    break
                except REDIS_ERRORS as error:
                    if not is_redis_down(error):
                        raise
                    # Redis is restarting or unreachable: try again until the intent's
                    # deadline. A repeat is safe: a request ID that ends up twice on the
                    # stream is executed once and answered from its stored result.
                    delay = backoff.next()
                    if time.time() * 1000 + delay * 1000 >= intent.deadline:
                        raise
                    log.warning(
                        "enqueueing %s failed; retrying in %.2f s", intent.request_id, delay
                    )
                    await asyncio.sleep(delay)
        except BaseException:
            self._waiting.pop(intent.request_id, None)
            raise
        if self._record is not None:
            self._record.append(intent)
        return intent.request_id

    async def _enqueue(self, intent: Intent, fields: dict[bytes, bytes]) -> None:
        lane = self._lane
        assert lane is not None
        version, data = fields[VERSION_FIELD], fields[DATA_FIELD]
        if isinstance(intent, PlaceOrder):
            await lane.execute(
                "XADD", self.keys.intents, "*", VERSION_FIELD, version, DATA_FIELD, data
            )
            return
        queue = self.keys.order_queue(intent.account_id, intent.order_id)
        await lane.run(
            _SUBMIT_FOLLOW_UP, [self.keys.intents, queue], [version, data, ORDER_QUEUE_TTL_S]
        )

    async def wait(self, request_id: str, timeout: float | None = None) -> OrderResult:
        """The result of a submitted intent; ``ResultTimeout`` if none within ``timeout``."""
        self._connected()
        limit = self.timeout if timeout is None else timeout
        future = self._waiting.get(request_id)
        if future is None:
            found = await self.result(request_id, timeout=limit)
            if found is None:
                raise ResultTimeout(request_id, limit)
            return found
        try:
            return await asyncio.wait_for(asyncio.shield(future), limit)
        except TimeoutError:
            raise ResultTimeout(request_id, limit) from None
        finally:
            # A result arriving later is kept for result() by the reader.
            self._waiting.pop(request_id, None)

    async def result(self, request_id: str, *, timeout: float = 0.0) -> OrderResult | None:
        """The result of a request if there is one yet (waiting up to ``timeout`` for it).

        Finds results that arrived after their call timed out, results stored by the
        workers (kept for ``RESULT_TTL_S``), and results of requests this client did not
        submit, such as the scheduled cancel of a good-til-time order
        (``<request_id>:gtt``).
        """
        conn = self._connected()
        future = self._waiting.get(request_id)
        if future is None:
            future = self._waiting[request_id] = asyncio.get_running_loop().create_future()
        if future.done():
            self._waiting.pop(request_id, None)
            return future.result()
        late = self._late.pop(request_id, None)
        if late is None:
            stored = await conn.get(self.keys.result(request_id))
            late = None if stored is None else decode_result(stored)
        if late is not None:
            self._waiting.pop(request_id, None)
            return late
        if timeout <= 0:
            self._waiting.pop(request_id, None)
            return None
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            return None
        finally:
            self._waiting.pop(request_id, None)

    async def _call(self, intent: Intent, timeout: float | None) -> OrderResult:
        request_id = await self.submit(intent)
        # The intent's deadline is its creation plus the timeout; a worker may answer
        # "expired" right at it, so the call waits a moment longer for that answer.
        limit = (self.timeout if timeout is None else timeout) + _EXPIRY_GRACE_S
        return await self.wait(request_id, limit)

    # --- the reply reader ---------------------------------------------------------------

    async def _read_replies(self) -> None:
        lane = self._reader_lane
        assert lane is not None
        last: bytes = b"0-0"
        trimmed = time.monotonic()
        backoff = Backoff(0.05, 2.0)
        while True:
            try:
                replies = await lane.execute(
                    "XREAD",
                    "COUNT",
                    1000,
                    "BLOCK",
                    _READ_BLOCK_MS,
                    "STREAMS",
                    self.reply_stream,
                    last,
                )
                # Replies are read once; trimming what was read keeps the stream small
                # (now and then: a trim per reply would cost a round trip each).
                if replies and time.monotonic() - trimmed > 1.0:
                    await lane.execute("XTRIM", self.reply_stream, "MINID", "~", last)
                    trimmed = time.monotonic()
            except REDIS_ERRORS as error:
                if not is_redis_down(error):
                    raise
                delay = backoff.next()
                log.warning("reading replies failed (%s); retrying in %.2f s", error, delay)
                await asyncio.sleep(delay)
                continue
            backoff.reset()
            for _stream, entries in replies or ():
                for entry_id, flat in entries:
                    last = entry_id
                    # XREAD answers each entry's fields as a flat [name, value, ...] list.
                    self._deliver(dict(zip(flat[::2], flat[1::2], strict=True)))

    def _deliver(self, fields: dict[bytes, bytes]) -> None:
        if fields.get(b"v") != VERSION_BYTES:
            log.warning("ignoring a reply of an unknown contract version %r", fields.get(b"v"))
            return
        try:
            result = decode_result(fields.get(b"r", b""))
        except msgspec.DecodeError as error:
            log.warning("ignoring an unreadable reply: %s", error)
            return
        future = self._waiting.get(result.request_id)
        if future is not None and not future.done():
            future.set_result(result)
            return
        # Nobody waits (the call timed out, or it is a scheduled cancel): keep it for result().
        self._late[result.request_id] = result
        while len(self._late) > _LATE_RESULTS:
            self._late.popitem(last=False)

    # --- helpers ------------------------------------------------------------------------

    def _connected(self) -> Redis:
        if self._redis is None:
            raise ClientClosed("use the client inside `async with OrderClient(...)` (or open() it)")
        return self._redis

    def _account(self, account_id: int | None) -> int:
        chosen = self.account_id if account_id is None else account_id
        if chosen is None:
            raise InvalidOrder(
                "account_id is needed: give it to the call or to OrderClient(..., account_id=N)",
                code="invalid_account",
            )
        return check_account_id(chosen)

    def _times(self, timeout: float | None) -> tuple[int, int]:
        limit = self.timeout if timeout is None else timeout
        if not limit > 0:
            raise InvalidOrder(
                f"timeout must be > 0 seconds, got {limit!r}", code="invalid_timeout"
            )
        created = int(time.time() * 1000)
        return created, created + int(limit * 1000)
