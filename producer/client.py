"""``OrderClient``: what a strategy imports to send order intents and await their results.

One client holds one Redis connection pool, one reply stream of its own and one background
reader that resolves every call waiting on that stream (``replies.py``), so many calls can
be in flight at once. Calls build and validate their intent (``intents.py``) before they
enqueue it; nothing blocks the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncGenerator, Awaitable, Iterable, Sequence
from importlib.resources import files
from pathlib import Path
from types import TracebackType
from typing import Final, Self, TypeVar, Unpack

import msgspec
import redis.exceptions
from redis.asyncio import Redis

from ow_core.aio import cancel_and_wait
from ow_core.backoff import Backoff
from ow_core.connect import RedisTarget
from ow_core.fastlane import FastLane, Script
from ow_core.keys import CLIENT_NAME, DEFAULT_PREFIX, ORDER_QUEUE_TTL_S, Keys
from ow_core.redis_down import REDIS_ERRORS, is_redis_down
from ow_core.urls import DEFAULT_REDIS_URL
from producer.contract import (
    DATA_FIELD,
    VERSION_FIELD,
    CancelAll,
    CancelOrder,
    ClosePosition,
    Flatten,
    Intent,
    ModifyOrder,
    OrderResult,
    PlaceOrder,
    decode_result,
    encode_intent,
)
from producer.errors import (
    ClientClosed,
    InvalidConfig,
    QueueRefused,
    QueueUnavailable,
    ResultTimeout,
)
from producer.events import AccountUpdate, Event, OrderUpdate, Position
from producer.intents import (
    CallOptions,
    ModifyOptions,
    Origin,
    PlaceOptions,
    SymbolOptions,
    new_request_id,
)
from producer.lifecycle import Lifecycle
from producer.replay import IntentLog
from producer.replies import READ_BLOCK_MS, Replies
from producer.validation import check_account_id, check_timeout, validate_intent

log = logging.getLogger("producer.client")
T = TypeVar("T")

_EXPIRY_GRACE_S: Final = 1.0
# A follow-up (modify, cancel) is queued under its order in the same step as it is added to
# the stream, so workers apply follow-ups of one order in submission order.
_SUBMIT_FOLLOW_UP: Final = Script.from_files(files("producer") / "follow_up.lua")


class OrderClient:
    """Submit order intents to the workers through Redis and await their results.

    Use it as ``async with OrderClient(url, account_id=...) as client:``. Every call takes
    ``timeout`` (seconds, default the client's) and returns the ``OrderResult``; when no
    result arrives in time it raises ``ResultTimeout`` carrying the ``request_id``, and
    ``await client.result(request_id)`` fetches the result later. The intent's deadline is
    its creation time plus the timeout: a worker refuses (``expired``) what it picks up
    later than that, so a stale order never reaches the broker.

    ``sentinels`` (``"host:port,host:port"`` or a list) finds the primary through a Sentinel
    group monitoring it as ``sentinel_master`` (default ``mymaster``) and follows its
    failovers; ``redis_url`` then only says how to talk to it (scheme, user, password,
    database). ``name`` (letters, digits, ``_``) starts the client's reply stream's name,
    ``<prefix>:reply:<name>-<random>``, for a Redis ACL that lets a strategy's user read its
    own replies and nobody else's (``order-worker acl``).
    """

    def __init__(
        self,
        redis_url: str = DEFAULT_REDIS_URL,
        account_id: int | None = None,
        *,
        timeout: float = 10.0,
        key_prefix: str = DEFAULT_PREFIX,
        record: str | Path | None = None,
        sentinels: str | Sequence[str | tuple[str, int]] | None = None,
        sentinel_master: str | None = None,
        name: str | None = None,
    ) -> None:
        try:
            self._target = RedisTarget.of(redis_url, sentinels, sentinel_master)
        except ValueError as error:
            raise InvalidConfig(str(error)) from None
        self.timeout = check_timeout(timeout)
        self.account_id = None if account_id is None else check_account_id(account_id)
        self.keys = Keys(key_prefix)
        if name is not None and not CLIENT_NAME.fullmatch(name):
            raise InvalidConfig(f"a client's name is 1-40 letters, digits or _, got {name!r}")
        self.client_id = secrets.token_hex(8) if name is None else f"{name}-{secrets.token_hex(8)}"
        self.reply_stream = self.keys.reply(self.client_id)
        self._origin = Origin(self.reply_stream, self.account_id, self.timeout)
        self._replies = Replies(self.reply_stream)
        self._redis: Redis | None = None
        self._reader: asyncio.Task[None] | None = None
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
        """Connect and start the reply reader (``async with`` does this for you).

        Either the client is open afterwards, or it is as it was and ``QueueUnavailable``
        says why (open it again once Redis is back).
        """
        if self._redis is not None:
            return
        try:
            # A blocking read must never hit the socket timeout. Repeating a command is
            # safe: a duplicated intent is answered once per entry from the result stored
            # under its request ID, never executed twice.
            self._redis = await self._target.reached(socket_timeout=READ_BLOCK_MS / 1000 + 5)
        except (*REDIS_ERRORS, redis.exceptions.RedisError) as error:
            raise self._unavailable(error) from None
        # The hot path (enqueue, read replies) on pipelined connections of its own.
        self._lane = self._target.lane(timeout=5.0)
        self._reader_lane = self._target.lane(timeout=READ_BLOCK_MS / 1000 + 5)
        self._reader = asyncio.create_task(
            self._replies.read(self._reader_lane, self._deliver), name=f"replies-{self.client_id}"
        )

    async def close(self) -> None:
        """Stop the reader and close the connections; calls still waiting get ClientClosed."""
        if self._reader is not None:
            await cancel_and_wait([self._reader])
            self._reader = None
        self._replies.fail_all(ClientClosed("client closed while waiting for a result"))
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
        self, symbol: str, side: str, quantity: int, **options: Unpack[PlaceOptions]
    ) -> OrderResult:
        """Place an order (market, limit or stop), with optional brackets in ticks.

        Bracket distances are positive tick counts; the worker signs them for the
        gateway. ``cancel_after`` (seconds) cancels the order then if it is still open.
        The options are ``producer.intents.PlaceOptions``.
        """
        return await self._call(self.make_place(symbol, side, quantity, **options), options)

    place_market_order = place_order
    """The predecessor's name for ``place_order`` (``order_type`` says which kind)."""

    async def modify_order(self, order_id: int, **options: Unpack[ModifyOptions]) -> OrderResult:
        """Change a working order: ``price`` is the limit price, as in the predecessor."""
        return await self._call(self.make_modify(order_id, **options), options)

    async def cancel_order(self, order_id: int, **options: Unpack[CallOptions]) -> OrderResult:
        """Cancel a working order (cancelling one already cancelled is accepted)."""
        return await self._call(self.make_cancel(order_id, **options), options)

    # --- the way out: these pass a halted account and go first in the rate budget --------

    async def close_position(
        self, symbol: str, *, quantity: int | None = None, **options: Unpack[CallOptions]
    ) -> OrderResult:
        """Close the position in ``symbol``: all of it, or ``quantity`` contracts of it.

        Never reverses it and never closes twice (see the README). A flat position is
        ``accepted`` with ``order_state`` ``flat``; ``closed`` says what was closed.
        """
        return await self._call(self.make_close(symbol, quantity, **options), options)

    async def cancel_all(self, **options: Unpack[SymbolOptions]) -> OrderResult:
        """Cancel every working order of the account (or of ``symbol``), bracket legs
        included; ``cancelled`` lists them."""
        return await self._call(self.make_cancel_all(**options), options)

    async def flatten(self, **options: Unpack[SymbolOptions]) -> OrderResult:
        """Cancel every working order, close every position, then check at the broker that
        nothing is left (for the account, or ``symbol``). ``accepted`` with ``order_state``
        ``flat`` once verified; ``cancelled`` and ``closed`` say what it did."""
        return await self._call(self.make_flatten(**options), options)

    # --- lower level --------------------------------------------------------------------

    def make_place(
        self, symbol: str, side: str, quantity: int, **options: Unpack[PlaceOptions]
    ) -> PlaceOrder:
        """A validated place intent addressed to this client's reply stream (not sent)."""
        return self._origin.place(symbol, side, quantity, **options)

    def make_modify(self, order_id: int, **options: Unpack[ModifyOptions]) -> ModifyOrder:
        """A validated modify intent (not sent)."""
        return self._origin.modify(order_id, **options)

    def make_cancel(self, order_id: int, **options: Unpack[CallOptions]) -> CancelOrder:
        """A validated cancel intent (not sent)."""
        return self._origin.cancel(order_id, **options)

    def make_close(
        self, symbol: str, quantity: int | None = None, **options: Unpack[CallOptions]
    ) -> ClosePosition:
        """A validated close intent (not sent)."""
        return self._origin.close(symbol, quantity, **options)

    def make_cancel_all(self, **options: Unpack[SymbolOptions]) -> CancelAll:
        """A validated cancel-all intent (not sent)."""
        return self._origin.cancel_all(**options)

    def make_flatten(self, **options: Unpack[SymbolOptions]) -> Flatten:
        """A validated flatten intent (not sent)."""
        return self._origin.flatten(**options)

    async def submit(self, intent: Intent) -> str:
        """Validate and enqueue an intent; returns its request ID (await it with ``wait``).

        The intent's ``reply_to`` should be this client's ``reply_stream`` for ``wait`` to
        see its result (the ``make_*`` methods do that).
        """
        self._connected()
        intent = validate_intent(intent)
        # Registered before the XADD, so even an instant reply finds its waiter.
        self._replies.expect(intent.request_id)
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
                        raise self._unavailable(error) from None
                    log.warning(
                        "enqueueing %s failed; retrying in %.2f s", intent.request_id, delay
                    )
                    await asyncio.sleep(delay)
        except redis.exceptions.ResponseError as error:
            self._replies.forget(intent.request_id)
            raise QueueRefused(f"Redis refused intent {intent.request_id}: {error}") from None
        except BaseException:
            self._replies.forget(intent.request_id)
            raise
        if self._record is not None:
            self._record.append(intent)
        return intent.request_id

    async def _enqueue(self, intent: Intent, fields: dict[bytes, bytes]) -> None:
        lane = self._lane
        assert lane is not None
        version, data = fields[VERSION_FIELD], fields[DATA_FIELD]
        if not isinstance(intent, ModifyOrder | CancelOrder):
            await lane.execute(
                "XADD", self.keys.intents, "*", VERSION_FIELD, version, DATA_FIELD, data
            )
            return
        # A follow-up of one order waits for the ones before it in the order's queue.
        queue = self.keys.order_queue(intent.account_id, intent.order_id)
        await lane.run(
            _SUBMIT_FOLLOW_UP, [self.keys.intents, queue], [version, data, ORDER_QUEUE_TTL_S]
        )

    async def wait(self, request_id: str, timeout: float | None = None) -> OrderResult:
        """The result of a submitted intent; ``ResultTimeout`` if none within ``timeout``."""
        self._connected()
        limit = self.timeout if timeout is None else timeout
        future = self._replies.waiting(request_id)
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
            self._replies.forget(request_id)

    async def result(self, request_id: str, *, timeout: float = 0.0) -> OrderResult | None:
        """The result of a request if there is one yet (waiting up to ``timeout`` for it).

        Finds results that arrived after their call timed out, results stored by the
        workers (kept for ``RESULT_TTL_S``), and results of requests this client did not
        submit, such as the scheduled cancel of a good-til-time order
        (``<request_id>:gtt``).
        """
        conn = self._connected()
        future = self._replies.expect(request_id)
        try:
            if future.done():
                return future.result()
            late = self._replies.take_late(request_id)
            if late is None:
                late = await self._stored(conn, request_id)
            if late is not None or timeout <= 0:
                return late
            try:
                return await asyncio.wait_for(asyncio.shield(future), timeout)
            except TimeoutError:
                return None
        finally:
            self._replies.forget(request_id)

    # --- after "accepted": the lifecycle, from the fleet's mirror (no broker request) --------

    async def events(
        self, account_id: int | None = None, *, since: str | None = None
    ) -> AsyncGenerator[Event, None]:
        """Every change of the account, as it happens: ``OrderUpdate``, ``TradeUpdate``,
        ``PositionUpdate``, ``AccountUpdate``.

        From now, or after ``since`` (an event's ``event_id``), so a strategy that stops
        and starts again misses nothing the stream still holds (``EVENTS_RETENTION_S``).
        """
        lifecycle = self._lifecycle()
        try:
            async for event in lifecycle.events(self._origin.account(account_id), since):
                yield event
        except REDIS_ERRORS as error:
            if not is_redis_down(error):
                raise
            raise self._unavailable(error) from None

    async def wait_order(
        self,
        order_id: int,
        *,
        states: Iterable[str] = ("filled",),
        account_id: int | None = None,
        timeout: float | None = None,
    ) -> OrderUpdate:
        """The order's ``OrderUpdate`` once it is in one of ``states`` (at once when it is
        already: a fill can come before the call). ``OrderEnded`` when it ends in another
        state (cancelled, rejected, expired), ``WaitTimeout`` after ``timeout``."""
        limit = self._origin.lifetime(timeout)
        return await self._read(
            self._lifecycle().wait_order(self._origin.account(account_id), order_id, states, limit)
        )

    async def positions(self, account_id: int | None = None) -> list[Position]:
        """The account's open positions (signed sizes), from the fleet's mirror."""
        return await self._read(self._lifecycle().positions(self._origin.account(account_id)))

    async def open_orders(self, account_id: int | None = None) -> list[OrderUpdate]:
        """The account's working orders, bracket legs included, from the fleet's mirror."""
        return await self._read(self._lifecycle().open_orders(self._origin.account(account_id)))

    async def account(self, account_id: int | None = None) -> AccountUpdate | None:
        """The account's balance, right to trade and today's realized P&L (None until the
        fleet has mirrored it)."""
        return await self._read(self._lifecycle().account(self._origin.account(account_id)))

    async def mirror_live(self, account_id: int | None = None) -> bool:
        """Whether a worker keeps the account's mirror live right now (connected to the
        hub and reconciled): while it is not, events wait and the reads may be stale."""
        return await self._read(self._lifecycle().live(self._origin.account(account_id)))

    def _lifecycle(self) -> Lifecycle:
        return Lifecycle(self._connected(), self.keys)

    async def _read(self, read: Awaitable[T]) -> T:
        try:
            return await read
        except REDIS_ERRORS as error:
            if not is_redis_down(error):
                raise
            raise self._unavailable(error) from None

    async def _call(self, intent: Intent, options: CallOptions) -> OrderResult:
        request_id = await self.submit(intent)
        # The intent's deadline is its creation plus the timeout; a worker may answer
        # "expired" right at it, so the call waits a moment longer for that answer.
        limit = self._origin.lifetime(options.get("timeout")) + _EXPIRY_GRACE_S
        return await self.wait(request_id, limit)

    async def _stored(self, conn: Redis, request_id: str) -> OrderResult | None:
        """The result the workers stored for a request, if any."""
        try:
            stored = await conn.get(self.keys.result(request_id))
        except REDIS_ERRORS as error:
            if not is_redis_down(error):
                raise
            raise self._unavailable(error) from None
        except redis.exceptions.ResponseError as error:
            raise QueueRefused(f"Redis refused reading result {request_id}: {error}") from None
        if stored is None:
            return None
        try:
            return decode_result(stored)
        except msgspec.DecodeError:
            raise QueueRefused(
                f"the stored result of {request_id} is unreadable (not one a worker wrote)"
            ) from None

    def _unavailable(self, error: BaseException) -> QueueUnavailable:
        return QueueUnavailable(f"cannot reach Redis at {self._target.describe()}: {error}")

    def _deliver(self, fields: dict[bytes, bytes]) -> None:
        """One reply entry from the reader (a subclass may watch them go by)."""
        self._replies.deliver(fields)

    def _connected(self) -> Redis:
        if self._redis is None:
            raise ClientClosed("use the client inside `async with OrderClient(...)` (or open() it)")
        return self._redis
