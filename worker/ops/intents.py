"""``order-worker submit|record|replay``: intents from the shell, to and from files."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import msgspec

from ow_core.keys import Keys
from producer.contract import Intent, OrderResult
from producer.replay import read_intents, record_stream, replay
from worker.ops.args import account, order_client, redis_options, target
from worker.ops.progress import Progress
from worker.settings import ConfigError


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``submit``, ``record`` and ``replay`` commands."""
    submit = commands.add_parser(
        "submit",
        help="submit one intent from the shell and print its result",
        description="Submit one place, modify or cancel intent and print the result as JSON.",
    )
    redis_options(submit)
    submit.add_argument("kind", choices=("place", "modify", "cancel"))
    submit.add_argument("--account", type=account, required=True, help="broker account ID")
    submit.add_argument("--symbol", help="place: contract symbol, e.g. MNQ")
    submit.add_argument("--side", help="place: BUY or SELL")
    submit.add_argument("--quantity", type=int, help="contracts (place; optional for modify)")
    submit.add_argument("--type", dest="order_type", default="market", help="market, limit or stop")
    submit.add_argument("--limit-price", type=float, help="limit price (place, modify)")
    submit.add_argument("--stop-price", type=float, help="stop price (place, modify)")
    submit.add_argument("--stop-loss-ticks", type=int, help="bracket distance in ticks")
    submit.add_argument("--take-profit-ticks", type=int, help="bracket distance in ticks")
    submit.add_argument("--tag", help="your own tag for the order")
    submit.add_argument("--order-id", type=int, help="modify/cancel: the order")
    submit.add_argument("--timeout", type=float, default=10.0, help="seconds to wait (default 10)")
    submit.set_defaults(handler=_submit)

    record = commands.add_parser(
        "record",
        help="copy the intents on the stream to a JSON-lines file",
        description="Copy intents still on the stream (workers keep acknowledged ones for "
        "INTENTS_RETENTION_S) to FILE, one JSON intent per line.",
    )
    redis_options(record)
    record.add_argument("file", type=Path)
    record.add_argument("--start", default="-", help="first stream entry ID (default: oldest)")
    record.add_argument("--end", default="+", help="last stream entry ID (default: newest)")
    record.set_defaults(handler=_record)

    replay_cmd = commands.add_parser(
        "replay",
        help="submit the intents of a JSON-lines file and report their results",
        description="Submit every intent in FILE (one JSON intent per line, as `record` writes "
        "them) and wait for the results. Each gets a fresh request ID unless --keep-ids.",
    )
    redis_options(replay_cmd)
    replay_cmd.add_argument("file", type=Path)
    replay_cmd.add_argument(
        "--keep-ids",
        action="store_true",
        help="keep the recorded request IDs (requests with a stored result are answered from it)",
    )
    replay_cmd.add_argument(
        "--timeout", type=float, default=30.0, help="seconds per intent (default 30)"
    )
    replay_cmd.add_argument("--json", action="store_true", help="print every result as a JSON line")
    replay_cmd.set_defaults(handler=_replay)


def _submit(args: argparse.Namespace) -> int:
    client = order_client(args, args.account, timeout=args.timeout)
    # Built (and so validated) before connecting: a bad order is refused even with no Redis.
    intent: Intent
    if args.kind == "place":
        intent = client.make_place(
            args.symbol,
            args.side,
            args.quantity,
            order_type=args.order_type,
            limit_price=args.limit_price,
            stop_price=args.stop_price,
            stop_loss_ticks=args.stop_loss_ticks,
            take_profit_ticks=args.take_profit_ticks,
            custom_tag=args.tag,
        )
    elif args.order_id is None:
        raise ConfigError(f"{args.kind} needs --order-id")
    elif args.kind == "modify":
        intent = client.make_modify(
            args.order_id,
            price=args.limit_price,
            quantity=args.quantity,
            stop_price=args.stop_price,
        )
    else:
        intent = client.make_cancel(args.order_id)

    async def go() -> OrderResult:
        async with client:
            return await client.wait(await client.submit(intent))

    result = asyncio.run(go())
    print(msgspec.json.encode(result).decode())
    return 0 if result.ok else 1


def _record(args: argparse.Namespace) -> int:
    async def go() -> int:
        client = target(args).client()
        try:
            return await record_stream(
                client, args.file, keys=Keys(args.prefix), start=args.start, end=args.end
            )
        finally:
            await client.aclose()

    count = asyncio.run(go())
    print(f"recorded {count} intents to {args.file}")
    return 0


def _replay(args: argparse.Namespace) -> int:
    intents = list(read_intents(args.file))
    if not intents:
        print(f"{args.file}: no intents", file=sys.stderr)
        return 0

    bar = Progress(len(intents), "replay: answered")

    async def go() -> list[OrderResult | None]:
        async with order_client(args, timeout=args.timeout) as client:
            return await replay(
                client,
                intents,
                keep_ids=args.keep_ids,
                timeout=args.timeout,
                progress=lambda done, _total: bar.update(done),
            )

    results = asyncio.run(go())
    counts: dict[str, int] = {}
    for result in results:
        status = "no result" if result is None else result.status
        counts[status] = counts.get(status, 0) + 1
        if args.json and result is not None:
            print(msgspec.json.encode(result).decode())
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    print(f"replayed {len(results)} intents: {summary}", file=sys.stderr)
    return 1 if counts.get("no result") else 0
