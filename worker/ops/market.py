"""``order-worker quotes|bars``: a symbol's market data from the shell, as a live table, read
through the fleet's market feed like any strategy (``MarketFeed``)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TextIO

import msgspec

from producer.feed import MarketFeed
from producer.market import Bar, Quote, Timeframe
from worker.ops.args import positive, redis_options, target

QUOTE_HEADER = f"{'time (UTC)':<12}  {'symbol':<8}  {'bid':>11}  {'ask':>11}  {'last':>11}"
BAR_HEADER = (
    f"{'start (UTC)':<19}  {'bar':<4}  {'open':>11}  {'high':>11}  {'low':>11}  "
    f"{'close':>11}  {'volume':>8}"
)


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``quotes`` and ``bars`` commands."""
    quotes = commands.add_parser(
        "quotes",
        help="a symbol's quotes as they come, from the fleet's market feed",
        description="Print a symbol's best bid, best ask and last price as a live table, one "
        "row per quote, until Ctrl-C (or --count rows). The fleet subscribes the symbol at "
        "the market hub while this runs, as it does for a strategy.",
    )
    redis_options(quotes)
    quotes.add_argument("symbol", type=str.upper, help="the symbol, such as MNQ")
    quotes.add_argument("--count", type=positive, help="stop after this many quotes")
    quotes.add_argument("--json", action="store_true", help="one JSON quote per line")
    quotes.set_defaults(handler=_quotes)

    bars = commands.add_parser(
        "bars",
        help="a symbol's bars of one timeframe, history then live, from the fleet's feed",
        description="Print a symbol's last bars (--history) and then each bar as it closes, "
        "until Ctrl-C (or --count closed bars). On a terminal the bar in progress is shown "
        "too, on the last line, as it changes. Timeframes: 1s, 5s, 1m, 5m, 15m, 1h or any "
        "multiple such as 90s, 2m or 4h.",
    )
    redis_options(bars)
    bars.add_argument("symbol", type=str.upper, help="the symbol, such as MNQ")
    bars.add_argument(
        "--timeframe", type=_timeframe, default=Timeframe(60), help="bar length (default 1m)"
    )
    bars.add_argument(
        "--history", type=int, default=10, help="how many past bars first (default 10)"
    )
    bars.add_argument("--count", type=positive, help="stop after this many closed bars")
    bars.add_argument("--json", action="store_true", help="one JSON bar per line (final only)")
    bars.set_defaults(handler=_bars)


def quote_row(quote: Quote) -> str:
    """One quote as a row of the table under ``QUOTE_HEADER``."""
    return (
        f"{_time(quote.at)[11:]:<12}  {quote.symbol:<8}  {_price(quote.bid)}  "
        f"{_price(quote.ask)}  {_price(quote.last)}"
    )


def bar_row(bar: Bar) -> str:
    """One bar as a row of the table under ``BAR_HEADER`` (``…`` marks one in progress)."""
    mark = "" if bar.final else "  …"
    return (
        f"{_time(bar.start)[:19]:<19}  {bar.timeframe:<4}  {_price(bar.open)}  "
        f"{_price(bar.high)}  {_price(bar.low)}  {_price(bar.close)}  {bar.volume:>8}{mark}"
    )


def _quotes(args: argparse.Namespace) -> int:
    async def work(feed: MarketFeed, out: TextIO) -> None:
        if not args.json:
            print(QUOTE_HEADER, file=out, flush=True)
        shown = 0
        async for quote in feed.quotes(args.symbol):
            print(_json(quote) if args.json else quote_row(quote), file=out, flush=True)
            shown += 1
            if args.count is not None and shown >= args.count:
                return

    return _run(args, work)


def _bars(args: argparse.Namespace) -> int:
    live = sys.stdout.isatty() and not args.json

    async def work(feed: MarketFeed, out: TextIO) -> None:
        if not args.json:
            print(BAR_HEADER, file=out, flush=True)
        closed = 0
        updates = feed.bars(args.symbol, args.timeframe, history=max(args.history, 0))
        try:
            async for bar in updates:
                if not bar.final:
                    if live:
                        # The bar in progress stays on the last line, redrawn as it changes.
                        print(f"\r{bar_row(bar)}\x1b[K", end="", file=out, flush=True)
                    continue
                row = _json(bar) if args.json else bar_row(bar)
                print(("\r" if live else "") + row, file=out, flush=True)
                closed += 1
                if args.count is not None and closed >= args.count:
                    return
        finally:
            await updates.aclose()

    return _run(args, work)


def _run(args: argparse.Namespace, work: Callable[[MarketFeed, TextIO], Awaitable[None]]) -> int:
    async def go() -> None:
        where = target(args)
        feed = MarketFeed(
            where.url,
            key_prefix=args.prefix,
            sentinels=where.sentinels,
            sentinel_master=where.sentinel_master,
        )
        async with feed:
            await work(feed, sys.stdout)

    asyncio.run(go())
    return 0


def _json(item: Quote | Bar) -> str:
    return msgspec.json.encode(item).decode()


def _time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _price(price: float | None) -> str:
    return f"{'-' if price is None else f'{price:.2f}':>11}"


def _timeframe(text: str) -> Timeframe:
    try:
        return Timeframe.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
