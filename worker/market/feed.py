"""The market-data feed, held by the fleet's leader of the market hub: the symbols
strategies ask for, subscribed while anyone asks, their quotes and trades on streams per
contract, and bars of every timeframe built from the trades.

It runs as the job of a ``Leadership`` (lease ``<prefix>:leader:market``), so one worker
per login holds the hub; every write is safe to make twice (two leaders may overlap for a
moment): quotes and trades are market data a reader may see twice, and a bar is never
published again once published final (``last_final``, read back from the streams when a
leader takes over), which readers check too.

Demand is a sorted set of ``<feed>|<symbol>|<timeframe>`` members scored by their expiry:
strategies renew theirs, so a dead strategy's symbols are dropped, and a symbol nobody
asks for is unsubscribed. Each new subscription, each reconnect and each takeover rebuilds
the bars in progress from history (``worker/market/backfill.py``): the bars a gap hid are
published then, final.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import msgspec
from redis.asyncio import Redis

from ow_core.aio import cancel_and_wait
from ow_core.fastlane import Arg, FastLane
from ow_core.keys import Keys
from ow_core.redis_down import REDIS_ERRORS, is_redis_down
from producer.errors import OrderError
from producer.market import (
    BAR_DECODER,
    Bar,
    FeedContract,
    Quote,
    Tick,
    Timeframe,
    parse_demand_member,
)
from worker.broker.client import GatewayClient
from worker.broker.errors import (
    BrokerAuthError,
    BrokerError,
    BrokerRateLimited,
    BrokerUnavailable,
)
from worker.hubs.connection import Handler, HubConnection, Subscription, TokenKeeper
from worker.market import backfill
from worker.market.bars import DEFAULT_GRACE_MS, STANDARD_TIMEFRAMES, BarAggregator
from worker.market.normalize import merged_quote, ticks_of

log = logging.getLogger("worker.market")

_ENCODE: Final = msgspec.json.Encoder()
_SECOND: Final = Timeframe(1)
_TICK_S: Final = 0.1
"""Bars in progress are published at most this often, and closed on this timer."""
_DEMAND_S: Final = 0.25
"""How often the registry is read."""
_REFUSED_S: Final = 30.0
"""How long a symbol the broker refused is not asked about again."""
_UNREACHABLE_S: Final = 2.0
"""How long to wait before resolving a symbol again when the broker was out of reach."""
_CONTRACT_TTL_S: Final = 12 * 3600
_MAX_WRITES: Final = 1000
"""Writes to Redis in flight, unanswered, before a push waits for them."""
_TAKEOVER_LOOKBACK: Final = 50
"""Entries read back per bar stream to find the last bar published final."""


@dataclass(slots=True, eq=False)
class _Feed:
    """One subscribed contract."""

    symbol: str
    contract_id: str
    timeframes: tuple[Timeframe, ...]
    aggregator: BarAggregator
    last_final: dict[str, int] = field(default_factory=dict)
    """Per timeframe, the start of the last bar published final."""
    buffer: list[Tick] | None = field(default_factory=list)
    """Trades held while history rebuilds the bars (``None``: live)."""
    quote: Quote | None = None
    rebuild: asyncio.Task[None] | None = None


def wanted_of(members: Iterable[bytes | str]) -> dict[str, set[Timeframe]]:
    """Registry entries as symbols and the timeframes asked for beyond the standard ones."""
    wanted: dict[str, set[Timeframe]] = {}
    for member in members:
        parsed = parse_demand_member(member.decode() if isinstance(member, bytes) else member)
        if parsed is None:
            continue
        symbol, name = parsed
        extras = wanted.setdefault(symbol, set())
        if name:
            try:
                timeframe = Timeframe.parse(name)
            except ValueError:
                continue
            if timeframe not in STANDARD_TIMEFRAMES:
                extras.add(timeframe)
    return wanted


def fresh(last_final: dict[str, int], bar: Bar) -> bool:
    """Whether a bar may be published (nothing at or before a final bar is); notes a final one."""
    last = last_final.get(bar.timeframe)
    if last is not None and bar.start <= last:
        return False
    if bar.final:
        last_final[bar.timeframe] = bar.start
    return True


class MarketHub:
    """The leader's job: the market hub's quotes and trades of every symbol asked for."""

    def __init__(
        self,
        broker: GatewayClient,
        redis: Redis,
        keys: Keys,
        *,
        hub_url: str,
        lane: FastLane,
        quotes_maxlen: int = 10_000,
        trades_maxlen: int = 10_000,
        bars_maxlen: int = 2_000,
        grace_ms: int = DEFAULT_GRACE_MS,
        ping_s: float = 10.0,
    ) -> None:
        self._broker = broker
        self._redis = redis
        self._keys = keys
        self._hub_url = hub_url
        self._lane = lane
        self._quotes_maxlen = quotes_maxlen
        self._trades_maxlen = trades_maxlen
        self._bars_maxlen = bars_maxlen
        self._grace_ms = grace_ms
        self._ping_s = ping_s
        self._feeds: dict[str, _Feed] = {}
        """By contract ID."""
        self._symbols: dict[str, str] = {}
        """Symbol to contract ID, of the feeds."""
        self._refused: dict[str, float] = {}
        self._writes: set[asyncio.Task[None]] = set()
        self._wanted = asyncio.Event()
        """Set once a symbol is served: the hub is connected from then on."""
        self.connection: HubConnection | None = None

    async def run(self) -> None:
        """Keep the hub connected and the subscriptions those asked for, until cancelled."""
        self.connection = connection = HubConnection(
            self._hub_url,
            self._broker.auth.ensure_token,
            handlers={
                "GatewayQuote": self._safely(self._on_quote),
                "GatewayTrade": self._safely(self._on_trade),
            },
            subscriptions=self._subscriptions,
            on_open=self._opened,
            on_gap=self._gap,
            ping_s=self._ping_s,
        )
        tasks = [
            asyncio.create_task(self._watch_demand(), name="market-demand"),
            asyncio.create_task(self._tick(), name="market-bars"),
        ]
        try:
            # No connection, and no login, until a strategy asks for a symbol.
            wanted = asyncio.create_task(self._wanted.wait(), name="market-wanted")
            await asyncio.wait([*tasks, wanted], return_when=asyncio.FIRST_COMPLETED)
            await cancel_and_wait([wanted])
            if self._wanted.is_set():
                tasks.append(asyncio.create_task(connection.run(), name="market-hub"))
                tasks.append(asyncio.create_task(self._keep_token(connection), name="market-token"))
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()
        finally:
            await cancel_and_wait(tasks)
            await cancel_and_wait([f.rebuild for f in self._feeds.values() if f.rebuild])
            await cancel_and_wait(self._writes)
            self._feeds.clear()
            self._symbols.clear()
            self._wanted.clear()

    def _subscriptions(self) -> list[Subscription]:
        subscriptions: list[Subscription] = []
        for contract_id in sorted(self._feeds):
            subscriptions.append(Subscription("SubscribeContractQuotes", (contract_id,)))
            subscriptions.append(Subscription("SubscribeContractTrades", (contract_id,)))
        return subscriptions

    async def _opened(self) -> None:
        for feed in self._feeds.values():
            self._rebuild(feed)

    def _gap(self, why: str) -> None:
        # Trades are missed from now: hold every bar until history has rebuilt it, so no
        # bar is closed short of them.
        for feed in self._feeds.values():
            if feed.rebuild is not None:
                feed.rebuild.cancel()
                feed.rebuild = None
            if feed.buffer is None:
                feed.buffer = []

    # --- demand -----------------------------------------------------------------------

    async def _watch_demand(self) -> None:
        while True:
            try:
                await self._follow_demand()
            except REDIS_ERRORS as error:
                if not is_redis_down(error):
                    raise
                log.warning("market feed: cannot read the subscriptions (%s)", error)
            await asyncio.sleep(_DEMAND_S)

    async def _follow_demand(self) -> None:
        now = int(time.time() * 1000)
        demand = self._keys.market_demand
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zremrangebyscore(demand, "-inf", now)
            pipe.zrange(demand, 0, -1)
            _, members = await pipe.execute()
        wanted = wanted_of(members)
        for symbol in [s for s in self._symbols if s not in wanted]:
            await self._drop(symbol)
        extras: dict[str, set[Timeframe]] = {}
        for symbol, asked in wanted.items():
            contract_id = self._symbols.get(symbol) or await self._add(symbol, asked)
            if contract_id is not None:
                # Two symbols may name one contract (an alias pinned to it): one feed.
                extras.setdefault(contract_id, set()).update(asked)
        for contract_id, asked in extras.items():
            feed = self._feeds[contract_id]
            timeframes = _timeframes(asked)
            if timeframes != feed.timeframes:
                feed.timeframes = timeframes
                self._rebuild(feed)

    async def _add(self, symbol: str, extras: set[Timeframe]) -> str | None:
        """Serve a symbol; the contract it is served from (``None``: not now)."""
        refused = self._refused.get(symbol)
        if refused is not None and time.monotonic() < refused:
            return None
        try:
            contract_id = (await self._broker.contracts.resolve(symbol)).contract_id
        except (BrokerUnavailable, BrokerRateLimited, BrokerAuthError) as error:
            # The broker out of reach says nothing about the symbol: ask again shortly.
            self._refused[symbol] = time.monotonic() + _UNREACHABLE_S
            log.warning("market feed: cannot resolve %s yet (%s)", symbol, error.code)
            return None
        except OrderError as error:  # an unknown symbol, one the broker will not take
            self._refused[symbol] = time.monotonic() + _REFUSED_S
            log.warning("market feed: no contract for %s (%s)", symbol, error.code)
            answer = FeedContract(error=f"{error.code}: {error.message}")
            await self._redis.set(
                self._keys.market_contract(symbol), _ENCODE.encode(answer), ex=int(_REFUSED_S)
            )
            return None
        self._refused.pop(symbol, None)
        served = _ENCODE.encode(FeedContract(contract_id=contract_id))
        if contract_id in self._feeds:
            self._symbols[symbol] = contract_id
            await self._redis.set(self._keys.market_contract(symbol), served, ex=_CONTRACT_TTL_S)
            return contract_id
        timeframes = _timeframes(extras)
        feed = _Feed(symbol, contract_id, timeframes, self._aggregator(symbol, timeframes))
        feed.last_final = await self._published_finals(contract_id, timeframes)
        self._feeds[contract_id] = feed
        self._symbols[symbol] = contract_id
        self._wanted.set()
        await self._redis.set(self._keys.market_contract(symbol), served, ex=_CONTRACT_TTL_S)
        log.info("market feed: %s (%s) subscribed", symbol, contract_id)
        connection = self.connection
        if connection is not None and connection.connected.is_set():
            await connection.subscribe(Subscription("SubscribeContractQuotes", (contract_id,)))
            await connection.subscribe(Subscription("SubscribeContractTrades", (contract_id,)))
            self._rebuild(feed)
        return contract_id

    async def _drop(self, symbol: str) -> None:
        contract_id = self._symbols.pop(symbol)
        if contract_id in self._symbols.values():
            return  # another symbol still names it
        feed = self._feeds.pop(contract_id)
        if feed.rebuild is not None:
            await cancel_and_wait([feed.rebuild])
        log.info("market feed: %s (%s) unsubscribed: nobody asks", symbol, contract_id)
        connection = self.connection
        if connection is not None:
            await connection.subscribe(Subscription("UnsubscribeContractQuotes", (contract_id,)))
            await connection.subscribe(Subscription("UnsubscribeContractTrades", (contract_id,)))

    async def _published_finals(
        self, contract_id: str, timeframes: Iterable[Timeframe]
    ) -> dict[str, int]:
        """What an earlier leader published final (so it is not published again)."""
        last_final: dict[str, int] = {}
        for timeframe in timeframes:
            entries = await self._redis.xrevrange(
                self._keys.bars(contract_id, timeframe.name), count=_TAKEOVER_LOOKBACK
            )
            finals = [bar.start for bar in map(_bar_of, entries) if bar.final]
            if finals:
                last_final[timeframe.name] = max(finals)
        return last_final

    # --- history --------------------------------------------------------------------------

    def _rebuild(self, feed: _Feed) -> None:
        if feed.rebuild is not None:
            feed.rebuild.cancel()
            feed.rebuild = None
        if feed.buffer is None:
            feed.buffer = []
        connection = self.connection
        if connection is None or not connection.connected.is_set():
            return  # trades are not flowing: the next connection rebuilds it
        feed.rebuild = asyncio.create_task(
            self._rebuild_from_history(feed, int(time.time() * 1000)),
            name=f"market-rebuild-{feed.symbol}",
        )

    async def _rebuild_from_history(self, feed: _Feed, subscribed_at: int) -> None:
        cutoff = backfill.cutoff_after(subscribed_at)
        await asyncio.sleep(max(0.0, backfill.history_ready_at(cutoff) / 1000 - time.time()))
        start = backfill.since(feed.timeframes, feed.last_final, cutoff)
        try:
            seconds = await self._broker.retrieve_bars(
                feed.contract_id,
                _SECOND,
                _moment(start),
                _moment(cutoff - 1),
                limit=backfill.MAX_SECONDS,
                partial=True,
            )
        except BrokerError as error:
            log.warning(
                "market feed: no history for %s (%s): bars in progress start from now",
                feed.symbol,
                error.code,
            )
            seconds = []
        aggregator = self._aggregator(feed.symbol, feed.timeframes)
        closed = backfill.replay(aggregator, seconds, feed.buffer or (), cutoff)
        closed.extend(aggregator.advance(int(time.time() * 1000)))
        closed.extend(aggregator.changed())
        # From here the hub's trades go to the new bars (no await in between: none is lost).
        feed.aggregator = aggregator
        feed.buffer = None
        feed.rebuild = None
        log.info("market feed: %s bars rebuilt from %d s of history", feed.symbol, len(seconds))
        await self._send(self._bar_commands(feed, closed))

    # --- pushes ---------------------------------------------------------------------------

    async def _on_quote(self, arguments: list[Any]) -> None:
        feed = self._feed_of(arguments)
        if feed is None:
            return
        try:
            quote = merged_quote(
                feed.quote,
                arguments[1],
                symbol=feed.symbol,
                contract_id=feed.contract_id,
                now=int(time.time() * 1000),
            )
        except msgspec.ValidationError as error:
            log.warning("ignoring a quote the feed does not read: %s", error)
            return
        feed.quote = quote
        stream = self._keys.quotes(feed.contract_id)
        await self._send([_xadd(stream, self._quotes_maxlen, _ENCODE.encode(quote))])

    async def _on_trade(self, arguments: list[Any]) -> None:
        feed = self._feed_of(arguments)
        if feed is None:
            return
        try:
            ticks = ticks_of(
                arguments[1],
                symbol=feed.symbol,
                contract_id=feed.contract_id,
                now=int(time.time() * 1000),
            )
        except msgspec.ValidationError as error:
            log.warning("ignoring a trade the feed does not read: %s", error)
            return
        stream = self._keys.trades(feed.contract_id)
        commands = [_xadd(stream, self._trades_maxlen, _ENCODE.encode(tick)) for tick in ticks]
        if feed.buffer is not None:
            feed.buffer.extend(ticks)
        else:
            closed: list[Bar] = []
            for tick in ticks:
                closed.extend(feed.aggregator.add(tick.price, tick.size, tick.at))
            commands.extend(self._bar_commands(feed, closed))
        await self._send(commands)

    def _feed_of(self, arguments: list[Any]) -> _Feed | None:
        if len(arguments) < 2:
            return None
        return self._feeds.get(str(arguments[0]))

    # --- bars -----------------------------------------------------------------------------

    async def _tick(self) -> None:
        """Close bars on time without trades, publish bars in progress that changed."""
        while True:
            await asyncio.sleep(_TICK_S)
            now = int(time.time() * 1000)
            commands: list[tuple[Arg, ...]] = []
            for feed in list(self._feeds.values()):
                if feed.buffer is not None:
                    continue
                bars = [*feed.aggregator.advance(now), *feed.aggregator.changed()]
                commands.extend(self._bar_commands(feed, bars))
            try:
                await self._publish(commands)
            except REDIS_ERRORS as error:
                if not is_redis_down(error):
                    raise
                log.warning("market feed: cannot publish bars (%s)", error)

    def _aggregator(self, symbol: str, timeframes: tuple[Timeframe, ...]) -> BarAggregator:
        return BarAggregator(symbol, timeframes, grace_ms=self._grace_ms)

    def _bar_commands(self, feed: _Feed, bars: Iterable[Bar]) -> list[tuple[Arg, ...]]:
        return [
            _xadd(
                self._keys.bars(feed.contract_id, bar.timeframe),
                self._bars_maxlen,
                _ENCODE.encode(bar),
            )
            for bar in bars
            if fresh(feed.last_final, bar)
        ]

    async def _publish(self, commands: list[tuple[Arg, ...]]) -> None:
        if commands:
            await asyncio.gather(*(self._lane.execute(*command) for command in commands))

    async def _send(self, commands: list[tuple[Arg, ...]]) -> None:
        """Publish without waiting for Redis's answer: the hub's pushes are handled one at a
        time, so a round trip per push would cap the feed at one push per round trip
        (measured: 1,000 quotes/s fell a second behind). The fast lane writes commands in
        the order they are given, so the streams keep the hub's order; past
        ``_MAX_WRITES`` unanswered writes the push waits (Redis is slower than the hub)."""
        if not commands:
            return
        write = asyncio.create_task(self._publish(commands))
        self._writes.add(write)
        write.add_done_callback(self._written)
        if len(self._writes) > _MAX_WRITES:
            await asyncio.wait(self._writes, return_when=asyncio.FIRST_COMPLETED)

    def _written(self, write: asyncio.Task[None]) -> None:
        self._writes.discard(write)
        if write.cancelled():
            return
        error = write.exception()
        if error is None:
            return
        if isinstance(error, REDIS_ERRORS) and is_redis_down(error):
            log.warning("market feed: cannot write to Redis (%s)", error)
        else:
            log.error("market feed: a write failed: %r", error)

    # --- the connection's upkeep ------------------------------------------------------------

    async def _keep_token(self, connection: HubConnection) -> None:
        keeper = TokenKeeper(
            connection,
            self._broker.auth.ensure_token,
            current=self._broker.get_token(),
            hub="market hub",
        )
        while True:
            await asyncio.sleep(5.0)
            await keeper.tend()

    def _safely(self, handler: Handler) -> Handler:
        """A push handler that rides out a Redis outage rather than end the session."""

        async def handle(arguments: list[Any]) -> None:
            try:
                await handler(arguments)
            except REDIS_ERRORS as error:
                if not is_redis_down(error):
                    raise
                log.warning("market feed: cannot write to Redis (%s)", error)

        return handle


def _bar_of(entry: tuple[bytes, dict[bytes, bytes]]) -> Bar:
    return BAR_DECODER.decode(entry[1][b"d"])


def _timeframes(extras: Iterable[Timeframe]) -> tuple[Timeframe, ...]:
    return tuple(sorted({*STANDARD_TIMEFRAMES, *extras}, key=lambda t: t.seconds))


def _moment(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _xadd(stream: str, maxlen: int, payload: bytes) -> tuple[Arg, ...]:
    # Trimmed by length, approximately (whole nodes at a time: cheap): market data may be
    # dropped once old, unlike intents.
    return ("XADD", stream, "MAXLEN", "~", maxlen, "*", "d", payload)
