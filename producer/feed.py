"""Market data for a strategy, from the fleet's one market-hub connection, over Redis.

    async with MarketFeed("redis://127.0.0.1:6379/0") as feed:
        async for quote in feed.quotes("MNQ"):
            ...

Asking for a symbol puts an entry in the fleet's subscription registry, renewed while the
iterator runs (a strategy that dies stops renewing, and the fleet drops its symbols when
the entries expire); an iterator that ends takes its entry out at once. The worker leading
the market hub subscribes every symbol someone asks for and publishes its quotes, trades
and bars on streams per contract (``worker/market/feed.py``); this reads them. Bar history
is a request any worker of the fleet answers from History/retrieveBars.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
import time
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Sequence
from types import TracebackType
from typing import Final, Self, cast

import msgspec
import redis.exceptions
from redis.asyncio import Redis

from ow_core.aio import cancel_and_wait
from ow_core.connect import RedisTarget
from ow_core.keys import DEFAULT_PREFIX, Keys
from ow_core.redis_down import REDIS_ERRORS, is_redis_down
from ow_core.urls import DEFAULT_REDIS_URL
from producer.errors import ClientClosed, InvalidConfig, MarketDataUnavailable, QueueUnavailable
from producer.intents import new_request_id
from producer.market import (
    BAR_DECODER,
    FEED_CONTRACT_DECODER,
    HISTORY_ANSWER_DECODER,
    MAX_HISTORY_BARS,
    QUOTE_DECODER,
    TICK_DECODER,
    Bar,
    HistoryRequest,
    Quote,
    Tick,
    Timeframe,
    demand_member,
)
from producer.validation import check_symbol

log = logging.getLogger("producer.feed")

_ENCODE: Final = msgspec.json.Encoder()
_BLOCK_MS: Final = 1000
_BATCH: Final = 500
_CONTRACT_POLL_S: Final = 0.05
_REQUESTS_MAXLEN: Final = 1000


class MarketFeed:
    """Quotes, trades and bars of any symbol, from the fleet.

    ``redis_url`` is the fleet's Redis; ``key_prefix`` its keys' prefix; ``timeout``
    (seconds) bounds the wait for the fleet to serve a new symbol and for a history
    answer; ``demand_ttl`` (seconds) is how long the fleet keeps serving a symbol for this
    feed after it stops renewing (it renews four times as often while it runs).
    ``sentinels`` and ``sentinel_master`` find the primary through Sentinel, as for
    ``OrderClient``.
    """

    def __init__(
        self,
        redis_url: str = DEFAULT_REDIS_URL,
        *,
        key_prefix: str = DEFAULT_PREFIX,
        timeout: float = 10.0,
        demand_ttl: float = 5.0,
        sentinels: str | Sequence[str | tuple[str, int]] | None = None,
        sentinel_master: str | None = None,
    ) -> None:
        try:
            self._target = RedisTarget.of(redis_url, sentinels, sentinel_master)
        except ValueError as error:
            raise InvalidConfig(str(error)) from None
        if not timeout > 0 or not demand_ttl > 0:
            raise InvalidConfig("timeout and demand_ttl must be positive numbers of seconds")
        self._keys = Keys(key_prefix)
        self._timeout = timeout
        self._ttl_ms = int(demand_ttl * 1000)
        self._id = secrets.token_urlsafe(8)
        self._asked: Counter[str] = Counter()
        self._redis: Redis | None = None
        self._renewer: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def open(self) -> None:
        """Connect (``async with`` does this); ``QueueUnavailable`` if Redis cannot be reached."""
        if self._redis is not None:
            return
        try:
            # A blocking read (XREAD, BLPOP) must never hit the socket timeout.
            self._redis = await self._target.reached(
                socket_timeout=max(self._timeout, _BLOCK_MS / 1000) + 5
            )
        except (*REDIS_ERRORS, redis.exceptions.RedisError) as error:
            raise self._unavailable(error) from None
        self._renewer = asyncio.create_task(self._renew(), name="market-feed-demand")

    async def close(self) -> None:
        """Stop asking for anything and close the connection."""
        if self._renewer is not None:
            await cancel_and_wait([self._renewer])
            self._renewer = None
        if self._redis is not None:
            if self._asked:
                with contextlib.suppress(*REDIS_ERRORS, redis.exceptions.RedisError):
                    await self._redis.zrem(self._keys.market_demand, *self._asked)
            self._asked.clear()
            await self._redis.aclose()
            self._redis = None

    # --- the API ----------------------------------------------------------------------

    async def quotes(self, symbol: str) -> AsyncGenerator[Quote, None]:
        """The symbol's quotes: the latest one the fleet has, then each new one."""
        async with self._asking(symbol) as contract_id:
            async for payload in self._read(self._keys.quotes(contract_id), latest=True):
                yield QUOTE_DECODER.decode(payload)

    async def trades(self, symbol: str) -> AsyncGenerator[Tick, None]:
        """The symbol's trades in the market from now on."""
        async with self._asking(symbol) as contract_id:
            async for payload in self._read(self._keys.trades(contract_id)):
                yield TICK_DECODER.decode(payload)

    async def bars(
        self, symbol: str, timeframe: str | Timeframe = "1m", history: int = 0
    ) -> AsyncGenerator[Bar, None]:
        """The symbol's bars of ``timeframe`` (``"1s"`` … ``"1h"``, or any multiple such as
        ``"90s"``): first the last ``history`` final bars, then every update of the bars
        from there on: a bar in progress each time it changes (``final=False``), then once
        final. No bar is missed or repeated between history and live, and none comes again
        after its final update."""
        frame = self._timeframe(timeframe)
        self._check_count(history, low=0)
        async with self._asking(symbol, frame.name) as contract_id:
            stream = self._keys.bars(contract_id, frame.name)
            # With history, live bars are read from the oldest the stream keeps, so a bar
            # that closed while history was fetched is not lost (the ones history has are
            # skipped below).
            cursor = "0-0" if history else await self._last_id(stream)
            last_final: int | None = None
            if history:
                for bar in await self.history(symbol, frame, history):
                    last_final = bar.start
                    yield bar
            async for payload in self._read(stream, cursor=cursor):
                bar = BAR_DECODER.decode(payload)
                if last_final is not None and bar.start <= last_final:
                    continue
                if bar.final:
                    last_final = bar.start
                yield bar

    async def history(self, symbol: str, timeframe: str | Timeframe, count: int) -> list[Bar]:
        """The last ``count`` final bars of the symbol (at most 20,000), oldest first, from
        the gateway's history through any worker of the fleet."""
        frame = self._timeframe(timeframe)
        self._check_count(count, low=1)
        client = self._connected()
        request = HistoryRequest(
            request_id=new_request_id(),
            symbol=check_symbol(symbol),
            timeframe=frame.name,
            count=count,
            end=int(time.time() * 1000),
        )
        answer_key = self._keys.history_answer(request.request_id)
        try:
            await client.xadd(
                self._keys.history_requests,
                {"d": _ENCODE.encode(request)},
                maxlen=_REQUESTS_MAXLEN,
                approximate=True,
            )
            popped = await cast(
                Awaitable[tuple[bytes, bytes] | None],
                client.blpop([answer_key], timeout=math.ceil(self._timeout)),
            )
        except (*REDIS_ERRORS, redis.exceptions.RedisError) as error:
            raise self._unavailable(error) from None
        if popped is None:
            raise MarketDataUnavailable(
                f"no worker answered the history of {symbol} within {self._timeout:g} s: "
                "is a worker with the market feed (PROJECTX_MARKET_HUB) running?",
                code="history_unavailable",
            )
        answer = HISTORY_ANSWER_DECODER.decode(popped[1])
        if answer.error is not None:
            raise MarketDataUnavailable(
                f"history of {symbol}: {answer.message}", code="history_unavailable"
            )
        return answer.bars

    # --- the registry -------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _asking(self, symbol: str, timeframe: str = "") -> AsyncIterator[str]:
        """Ask the fleet for the symbol while inside; the contract it is served from."""
        client = self._connected()
        symbol = check_symbol(symbol)
        member = demand_member(self._id, symbol, timeframe)
        self._asked[member] += 1
        try:
            if self._asked[member] == 1:
                await self._register(client, [member])
            yield await self._contract(client, symbol)
        finally:
            self._asked[member] -= 1
            if self._asked[member] <= 0:
                del self._asked[member]
                if self._redis is not None:
                    with contextlib.suppress(*REDIS_ERRORS, redis.exceptions.RedisError):
                        await self._redis.zrem(self._keys.market_demand, member)

    async def _register(self, client: Redis, members: list[str]) -> None:
        expiry = int(time.time() * 1000) + self._ttl_ms
        await client.zadd(self._keys.market_demand, dict.fromkeys(members, expiry))

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self._ttl_ms / 4000)
            if self._asked and self._redis is not None:
                try:
                    await self._register(self._redis, list(self._asked))
                except (*REDIS_ERRORS, redis.exceptions.RedisError) as error:
                    log.warning("market feed: cannot renew the subscriptions (%s)", error)

    async def _contract(self, client: Redis, symbol: str) -> str:
        deadline = time.monotonic() + self._timeout
        key = self._keys.market_contract(symbol)
        while True:
            try:
                raw = await client.get(key)
            except (*REDIS_ERRORS, redis.exceptions.RedisError) as error:
                raise self._unavailable(error) from None
            if raw is not None:
                served = FEED_CONTRACT_DECODER.decode(raw)
                if served.contract_id is not None:
                    return served.contract_id
                raise MarketDataUnavailable(
                    f"the fleet cannot serve {symbol}: {served.error}", code="unknown_symbol"
                )
            if time.monotonic() > deadline:
                raise MarketDataUnavailable(
                    f"no worker served {symbol} within {self._timeout:g} s: is a worker with "
                    "the market feed (PROJECTX_MARKET_HUB) running?",
                    code="feed_unavailable",
                )
            await asyncio.sleep(_CONTRACT_POLL_S)

    # --- reading ------------------------------------------------------------------------

    async def _read(
        self, stream: str, *, latest: bool = False, cursor: str | None = None
    ) -> AsyncGenerator[bytes, None]:
        """Entries' payloads from after ``cursor`` (default: the newest now, which comes
        first with ``latest``)."""
        client = self._connected()
        try:
            if cursor is None:
                newest = await client.xrevrange(stream, count=1)
                cursor = newest[0][0].decode() if newest else "0-0"
                if latest and newest:
                    yield newest[0][1][b"d"]
            while True:
                answer = await client.xread({stream: cursor}, count=_BATCH, block=_BLOCK_MS)
                for _stream, entries in answer or ():
                    for entry_id, fields in entries:
                        cursor = entry_id.decode()
                        yield fields[b"d"]
        except REDIS_ERRORS as error:
            if not is_redis_down(error):
                raise
            raise self._unavailable(error) from None

    async def _last_id(self, stream: str) -> str:
        newest = await self._connected().xrevrange(stream, count=1)
        return newest[0][0].decode() if newest else "0-0"

    # --- helpers --------------------------------------------------------------------------

    def _connected(self) -> Redis:
        if self._redis is None:
            raise ClientClosed("use the feed inside `async with MarketFeed(...)` (or open() it)")
        return self._redis

    def _unavailable(self, error: BaseException) -> QueueUnavailable:
        return QueueUnavailable(f"cannot reach Redis at {self._target.describe()}: {error}")

    @staticmethod
    def _timeframe(timeframe: str | Timeframe) -> Timeframe:
        try:
            return Timeframe.parse(timeframe)
        except ValueError as error:
            raise InvalidConfig(str(error), code="invalid_timeframe") from None

    @staticmethod
    def _check_count(count: int, *, low: int) -> None:
        if not low <= count <= MAX_HISTORY_BARS:
            raise InvalidConfig(
                f"a bar count must be between {low} and {MAX_HISTORY_BARS}, not {count}",
                code="invalid_count",
            )
