"""``order-worker events|positions|orders``: an account's lifecycle from the shell, read from
the fleet's mirror in Redis (no broker request)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from datetime import UTC, datetime

import msgspec
from redis.asyncio import Redis

from ow_core.keys import Keys
from producer.events import AccountUpdate, Event, OrderUpdate, PositionUpdate, TradeUpdate
from producer.lifecycle import Lifecycle
from worker.ops.args import account, redis_options, with_redis
from worker.ops.status import table


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``events``, ``positions`` and ``orders`` commands."""
    events = commands.add_parser(
        "events",
        help="an account's order, trade, position and balance changes",
        description="Print an account's events from the fleet's mirror: the last ones "
        "(--last N), and with --follow every new one as it comes, until Ctrl-C. Each line "
        "says whether the hub pushed it or reconciliation inferred it after a gap.",
    )
    redis_options(events)
    events.add_argument("--account", type=account, required=True, help="broker account ID")
    events.add_argument("--follow", action="store_true", help="keep printing new events")
    events.add_argument("--last", type=int, default=20, help="how many past events (default 20)")
    events.add_argument("--json", action="store_true", help="one JSON event per line")
    events.set_defaults(handler=_events)

    positions = commands.add_parser(
        "positions",
        help="an account's open positions, from the fleet's mirror",
        description="The account's open positions (signed size, average price) and its "
        "balance and today's realized P&L, as the fleet's mirror holds them.",
    )
    redis_options(positions)
    positions.add_argument("--account", type=account, required=True, help="broker account ID")
    positions.add_argument("--json", action="store_true", help="print JSON")
    positions.set_defaults(handler=_positions)

    orders = commands.add_parser(
        "orders",
        help="an account's working orders, from the fleet's mirror",
        description="The account's working orders (bracket legs waiting for their entry "
        "included), as the fleet's mirror holds them.",
    )
    redis_options(orders)
    orders.add_argument("--account", type=account, required=True, help="broker account ID")
    orders.add_argument("--json", action="store_true", help="print JSON")
    orders.set_defaults(handler=_orders)


def describe(event: Event) -> str:
    """One event as one line for a terminal."""
    when = datetime.fromtimestamp(event.at / 1000, UTC).strftime("%H:%M:%S.%f")[:-3]
    how = " (reconciled)" if event.reconciled else ""
    if isinstance(event, OrderUpdate):
        fill = (
            f" filled {event.filled_quantity} @ {event.fill_price}" if event.filled_quantity else ""
        )
        price = event.limit_price or event.stop_price
        at_price = f" @ {price}" if price is not None else ""
        what = f"order {event.order_id} {event.state}: {event.side} {event.quantity}"
        return f"{when}  {what} {event.symbol or event.contract_id}{at_price}{fill}{how}"
    if isinstance(event, TradeUpdate):
        pnl = "" if event.pnl is None else f" P&L {event.pnl:+.2f}"
        return (
            f"{when}  trade {event.trade_id}: {event.side} {event.quantity} "
            f"{event.symbol or event.contract_id} @ {event.price} (order {event.order_id})"
            f"{pnl} fees {event.fees:.2f}{how}"
        )
    if isinstance(event, PositionUpdate):
        where = event.symbol or event.contract_id
        size = "flat" if event.size == 0 else f"{event.size:+d} @ {event.average_price}"
        return f"{when}  position {where}: {size}{how}"
    assert isinstance(event, AccountUpdate)
    trade = "can trade" if event.can_trade else "CANNOT TRADE"
    return (
        f"{when}  account {event.account_id}: balance {event.balance:.2f}, realized today "
        f"{event.realized_pnl:+.2f}, {trade}{how}"
    )


def _events(args: argparse.Namespace) -> int:
    async def work(client: Redis, keys: Keys) -> int:
        lifecycle = Lifecycle(client, keys)
        past = await lifecycle.recent(args.account, max(args.last, 0))
        for event in past:
            _print(event, as_json=args.json)
        if not args.follow:
            return 0
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        since = past[-1].event_id if past else await lifecycle.last_id(args.account)
        reader = lifecycle.events(args.account, since)
        try:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    _print(await asyncio.wait_for(anext(reader), 1.0), as_json=args.json)
        finally:
            await reader.aclose()
        return 0

    return with_redis(args, work)


def _print(event: Event, *, as_json: bool) -> None:
    print(msgspec.json.encode(event).decode() if as_json else describe(event), flush=True)


def _positions(args: argparse.Namespace) -> int:
    async def work(client: Redis, keys: Keys) -> int:
        lifecycle = Lifecycle(client, keys)
        positions = await lifecycle.positions(args.account)
        held = await lifecycle.account(args.account)
        live = await lifecycle.live(args.account)
        if args.json:
            print(
                msgspec.json.encode(
                    {"account": held, "positions": positions, "live": live}
                ).decode()
            )
            return 0
        if held is not None:
            print(describe(held).split("  ", 1)[1])
        if not live:
            print("(no worker keeps this mirror live right now: it may be out of date)")
        if not positions:
            print("no open positions")
            return 0
        rows = [("contract", "symbol", "size", "average price")]
        rows += [
            (p.contract_id, p.symbol or "?", f"{p.size:+d}", f"{p.average_price:g}")
            for p in positions
        ]
        for line in table(rows, right=frozenset({2, 3})):
            print(line)
        return 0

    return with_redis(args, work)


def _orders(args: argparse.Namespace) -> int:
    async def work(client: Redis, keys: Keys) -> int:
        orders = await Lifecycle(client, keys).open_orders(args.account)
        if args.json:
            print(msgspec.json.encode(orders).decode())
            return 0
        if not orders:
            print("no working orders")
            return 0
        rows = [("order", "state", "side", "qty", "filled", "symbol", "limit", "stop", "request")]
        rows += [
            (
                str(o.order_id),
                o.state,
                o.side,
                str(o.quantity),
                str(o.filled_quantity),
                o.symbol or o.contract_id,
                "-" if o.limit_price is None else f"{o.limit_price:g}",
                "-" if o.stop_price is None else f"{o.stop_price:g}",
                o.request_id or "-",
            )
            for o in orders
        ]
        for line in table(rows, right=frozenset({3, 4})):
            print(line)
        return 0

    return with_redis(args, work)
