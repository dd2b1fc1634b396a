"""``order-worker``: run a worker, run the demo, submit, record and replay intents, watch the
fleet's status and deal with dead letters."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import msgspec
from redis.asyncio import Redis

from ow_core.keys import DEFAULT_PREFIX, Keys
from ow_core.redis_down import REDIS_ERRORS, is_redis_down
from producer.client import DEFAULT_REDIS_URL, OrderClient
from producer.contract import Intent, OrderResult
from producer.errors import OrderError
from producer.replay import read_intents, record_stream, replay
from producer.validation import check_symbol
from worker.broker.models import ContractInfo
from worker.fleet import halt as kill_switch
from worker.fleet.contracts import SharedContracts
from worker.fleet.halt import HaltRecord
from worker.ops.progress import Progress
from worker.settings import ConfigError, Settings, mask_url

Handler = Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``order-worker`` console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except (ConfigError, OrderError) as error:
        print(f"order-worker: {error}", file=sys.stderr)
        return 2
    except REDIS_ERRORS as error:
        if not is_redis_down(error):
            raise
        where = mask_url(args.redis_url)
        print(f"order-worker: cannot reach Redis at {where}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="order-worker",
        description="Redis-stream order worker for the ProjectX Gateway (TopstepX).",
        epilog="Configuration comes from environment variables; see the README.",
    )
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="run one worker process (configured from the environment)",
        description="Run one worker: consume the intents stream and execute against the "
        "broker. Needs REDIS_URL, PROJECTX_BASE_URL, PROJECTX_USERNAME, PROJECTX_API_KEY "
        "(see the README for the rest). Stops cleanly on SIGTERM or Ctrl-C.",
    )
    run.set_defaults(handler=_run, redis_url=os.environ.get("REDIS_URL", DEFAULT_REDIS_URL))

    demo = commands.add_parser(
        "demo",
        help="run a self-contained demo: Redis, the simulator, two workers, a burst of intents",
        description="Start a private redis-server (or use REDIS_URL), the broker simulator and "
        "worker processes, send a realistic burst of intents, print outcomes and latencies, "
        "and stop everything. Needs no account and no internet.",
    )
    demo.add_argument(
        "--orders", type=_positive, default=60, help="market orders to place (default 60)"
    )
    demo.add_argument("--workers", type=_positive, default=2, help="worker processes (default 2)")
    demo.add_argument("--logs", type=Path, help="keep process logs in this folder")
    demo.set_defaults(handler=_demo, redis_url=os.environ.get("REDIS_URL", ""))

    submit = commands.add_parser(
        "submit",
        help="submit one intent from the shell and print its result",
        description="Submit one place, modify or cancel intent and print the result as JSON.",
    )
    _redis_options(submit)
    submit.add_argument("kind", choices=("place", "modify", "cancel"))
    submit.add_argument("--account", type=int, required=True, help="broker account ID")
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
    _redis_options(record)
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
    _redis_options(replay_cmd)
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
    status = commands.add_parser(
        "status",
        help="show the fleet: stream, backlog, pending entries, workers, dead letters, halt",
        description="Show, from Redis: the intents stream's length, the consumer group's lag "
        "(entries not yet delivered) and pending entries (per consumer, with how long they "
        "have gone untouched), the dead letters, the workers alive (from their heartbeats: "
        "host, pid, uptime, last heartbeat, intents in flight and handled), the kill switch "
        "and a rate-budget pause. Read-only.",
    )
    _redis_options(status)
    status.add_argument(
        "--json", action="store_true", help="print one JSON object (one per refresh with --watch)"
    )
    status.add_argument(
        "--watch",
        nargs="?",
        const=2.0,
        type=_seconds,
        metavar="SECONDS",
        help="refresh every SECONDS (default 2) until Ctrl-C",
    )
    status.set_defaults(handler=_status)

    health = commands.add_parser(
        "health",
        help="exit 0 if this host's workers are alive and healthy (for HEALTHCHECK)",
        description="Check the workers' own health verdicts in their Redis heartbeats: alive "
        "(heartbeat not expired) and healthy (not cut off from Redis or the broker for "
        "HEALTH_MAX_OUTAGE_S). By default the workers of this host (one container, one "
        "worker); --name checks one worker, --all every worker. Exit 0 when at least one "
        "is checked and all are healthy, 1 otherwise, 2 when Redis cannot be reached.",
    )
    _redis_options(health)
    which = health.add_mutually_exclusive_group()
    which.add_argument("--name", help="the worker (its WORKER_NAME) to check")
    which.add_argument("--all", action="store_true", help="every worker of the fleet")
    health.set_defaults(handler=_health)

    dead = commands.add_parser(
        "dead-letters",
        help="list, retry or drop the intents that could not be executed",
        description="Entries that kept failing (delivered WORKER_MAX_DELIVERIES times) or did "
        "not decode are moved to the dead-letter stream (<prefix>:dead) with their error and "
        "history. Their producers were answered (failed/dead_lettered, or "
        "rejected/malformed_intent). `list` them, `retry` them or `drop` them.",
    )
    actions = dead.add_subparsers(title="actions", required=True, metavar="ACTION")
    listing = actions.add_parser(
        "list",
        help="show the dead letters, oldest first",
        description="Show each dead letter: its ID in the dead-letter stream (what retry and "
        "drop take), when it died, its request ID, what it was, its deliveries and why.",
    )
    _redis_options(listing)
    listing.add_argument(
        "--json", action="store_true", help="one JSON object per line: the full record with its id"
    )
    listing.add_argument(
        "--limit", type=_positive, default=100, help="show at most N (default 100)"
    )
    listing.set_defaults(handler=_dead_letters_list)
    retry = actions.add_parser(
        "retry",
        help="put dead letters' intents back on the intents stream",
        description="Add each dead letter's original intent (the same fields) to the intents "
        "stream as a new entry, and remove it from the dead-letter stream. A retried place "
        "cannot be placed twice: its broker customTag is derived from its request ID, and its "
        "history (kept for RESULT_TTL_S) tells the worker it was started before, so the "
        "worker first looks the order up by that tag and answers from what it finds (the "
        "gateway also refuses a second order with the same tag). Refused: an entry that is "
        "not a valid intent (drop it), a request that already has a stored result (its "
        "producer was answered; --force), and an intent past its deadline (--deadline).",
        epilog="Exit status 1 when any dead letter was not retried.",
    )
    _redis_options(retry)
    _dead_letter_ids(retry, "retry")
    retry.add_argument(
        "--force",
        action="store_true",
        help="delete a request's stored result first (a dead-lettered request has one: "
        "failed/dead_lettered), so it is executed again and answered anew",
    )
    retry.add_argument(
        "--deadline",
        type=_seconds,
        metavar="SECONDS",
        help="give each intent a new deadline SECONDS from now; without it, an intent past its "
        "deadline is refused (a worker would answer it expired without sending it)",
    )
    retry.set_defaults(handler=_dead_letters_retry)
    drop = actions.add_parser(
        "drop",
        help="delete dead letters",
        description="Delete dead letters from the dead-letter stream, without asking; prints "
        "each one dropped. Their producers were answered already.",
        epilog="Exit status 1 when any ID was not found.",
    )
    _redis_options(drop)
    _dead_letter_ids(drop, "drop")
    drop.set_defaults(handler=_dead_letters_drop)

    halt = commands.add_parser(
        "halt",
        help="kill switch: stop every worker from sending new orders (cancels still go through)",
        description="Stop every worker of the fleet from sending new orders, for all accounts "
        "or one. Modifies and cancels still go through, so positions can be flattened. Takes "
        "effect at once for intents not yet started, survives worker restarts (it is kept in "
        "Redis) and lasts until `order-worker resume`.",
    )
    _redis_options(halt)
    halt.add_argument("--account", type=int, help="only this account (default: all)")
    halt.add_argument("--reason", default="halted by an operator", help="shown in the results")
    halt.set_defaults(handler=_halt)

    resume = commands.add_parser(
        "resume",
        help="lift the kill switch",
        description="Let new orders through again (for all accounts, or the one given).",
    )
    _redis_options(resume)
    resume.add_argument("--account", type=int, help="only this account (default: all)")
    resume.set_defaults(handler=_resume)

    contract = commands.add_parser(
        "contract",
        help="show, set or clear the fleet's contract for a symbol",
        description="The fleet caches symbol → contract in Redis. `set` pins a symbol to a "
        "contract (e.g. to trade the next month before the roll) until `clear`; workers pick "
        "it up within CONTRACT_REFRESH_S.",
    )
    _redis_options(contract)
    contract.add_argument("action", choices=("show", "set", "clear"))
    contract.add_argument("symbol", help="e.g. MNQ")
    contract.add_argument("contract_id", nargs="?", help="set: e.g. CON.F.US.MNQ.H27")
    contract.add_argument("--tick-size", type=float, help="set: the contract's tick size")
    contract.add_argument("--tick-value", type=float, help="set: the contract's tick value")
    contract.set_defaults(handler=_contract)
    return parser


def _redis_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("REDIS_URL", DEFAULT_REDIS_URL),
        help="Redis URL (default: $REDIS_URL or redis://127.0.0.1:6379/0)",
    )
    parser.add_argument(
        "--prefix",
        default=os.environ.get("ORDER_KEY_PREFIX", DEFAULT_PREFIX),
        help="Redis key prefix (default: $ORDER_KEY_PREFIX or ow)",
    )


def _dead_letter_ids(parser: argparse.ArgumentParser, verb: str) -> None:
    parser.add_argument(
        "ids", nargs="*", metavar="ID", help="dead-letter IDs, as `dead-letters list` shows them"
    )
    parser.add_argument("--all", action="store_true", help=f"{verb} every dead letter")


def _seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0 seconds, got {text}")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


# --- commands ---------------------------------------------------------------------------


def _run(args: argparse.Namespace) -> int:
    from worker.app import Worker, worker_settings
    from worker.ops import logs

    settings = Settings.from_env()
    settings.require_credentials()
    logs.configure(
        settings.log_level,
        json_lines=None if settings.log_format == "auto" else settings.log_format == "json",
    )
    _use_uvloop()
    try:
        Worker(**worker_settings(settings)).run()
    except Exception:
        logging.getLogger("worker").critical("worker stopped by an error", exc_info=True)
        raise
    return 0


def _demo(args: argparse.Namespace) -> int:
    from worker.local.demo import run_demo

    return run_demo(
        orders=args.orders, workers=args.workers, redis_url=args.redis_url or None, logs=args.logs
    )


def _submit(args: argparse.Namespace) -> int:
    client = OrderClient(args.redis_url, args.account, timeout=args.timeout, key_prefix=args.prefix)
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
        client = Redis.from_url(args.redis_url)
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
        async with OrderClient(
            args.redis_url, timeout=args.timeout, key_prefix=args.prefix
        ) as client:
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


def _with_redis(args: argparse.Namespace, work: Callable[[Redis, Keys], Awaitable[int]]) -> int:
    async def go() -> int:
        client = Redis.from_url(args.redis_url, socket_connect_timeout=5, socket_timeout=5)
        try:
            return await work(client, Keys(args.prefix))
        finally:
            await client.aclose()

    return asyncio.run(go())


def _status(args: argparse.Namespace) -> int:
    from worker.ops import status

    async def work(client: Redis, keys: Keys) -> int:
        return await status.command(
            client, keys, where=mask_url(args.redis_url), as_json=args.json, watch=args.watch
        )

    try:
        return _with_redis(args, work)
    except KeyboardInterrupt:
        if args.watch is None:
            raise
        return 0  # Ctrl-C is how a watch ends


def _dead_letters_list(args: argparse.Namespace) -> int:
    from worker.ops import deadletters

    return _with_redis(
        args,
        lambda client, keys: deadletters.list_command(
            client, keys, limit=args.limit, as_json=args.json
        ),
    )


def _dead_letters_retry(args: argparse.Namespace) -> int:
    from worker.ops import deadletters

    ids = _chosen(args)

    async def work(client: Redis, keys: Keys) -> int:
        outcomes = await deadletters.retry(
            client, keys, ids, force=args.force, deadline_s=args.deadline
        )
        return deadletters.report(outcomes)

    return _with_redis(args, work)


def _dead_letters_drop(args: argparse.Namespace) -> int:
    from worker.ops import deadletters

    ids = _chosen(args)

    async def work(client: Redis, keys: Keys) -> int:
        return deadletters.report(await deadletters.drop(client, keys, ids))

    return _with_redis(args, work)


def _chosen(args: argparse.Namespace) -> list[str] | None:
    """The dead-letter IDs given, or None for --all."""
    if args.all == bool(args.ids):
        raise ConfigError("give dead-letter IDs or --all (not both)")
    return None if args.all else list(args.ids)


def _halt(args: argparse.Namespace) -> int:
    async def work(client: Redis, keys: Keys) -> int:
        record = HaltRecord(reason=args.reason, at=int(time.time() * 1000), by=_operator())
        await kill_switch.halt(client, keys, record, args.account)
        return 0

    code = _with_redis(args, work)
    scope = f"account {args.account}" if args.account else "all accounts"
    print(f"halted: no new orders for {scope} until `order-worker resume`")
    return code


def _resume(args: argparse.Namespace) -> int:
    async def work(client: Redis, keys: Keys) -> int:
        lifted = await kill_switch.resume(client, keys, args.account)
        scope = f"account {args.account}" if args.account else "all accounts"
        print(f"resumed: new orders allowed for {scope}" if lifted else f"{scope} were not halted")
        if args.account is None:
            rest = [k.decode() async for k in client.scan_iter(f"{keys.halt()}:*")]
            if rest:
                print(f"still halted: {', '.join(rest)}")
        return 0

    return _with_redis(args, work)


def _contract(args: argparse.Namespace) -> int:
    symbol = check_symbol(args.symbol)

    async def work(client: Redis, keys: Keys) -> int:
        store = SharedContracts(client, keys)
        if args.action == "set":
            if not args.contract_id or args.tick_size is None:
                raise ConfigError("contract set needs CONTRACT_ID and --tick-size")
            info = ContractInfo(symbol, args.contract_id, args.tick_size, args.tick_value)
            await store.pin(info)
            print(f"{symbol} → {args.contract_id} (until `order-worker contract clear {symbol}`)")
        elif args.action == "clear":
            cleared = await store.clear(symbol)
            print(f"{symbol}: cleared" if cleared else f"{symbol}: nothing to clear")
        else:
            found = await store.load(symbol)
            print(msgspec.json.encode(found).decode() if found else f"{symbol}: not resolved yet")
        return 0

    return _with_redis(args, work)


def _health(args: argparse.Namespace) -> int:
    from worker.ops import status

    async def work(client: Redis, keys: Keys) -> int:
        workers = (await status.gather(client, keys)).workers
        if args.name:
            checked = [w for w in workers if w.name == args.name]
        elif args.all:
            checked = workers
        else:
            checked = [w for w in workers if w.host == socket.gethostname()]
        for worker in checked:
            verdict = "healthy" if worker.healthy else f"UNHEALTHY: {worker.problem}"
            print(f"{worker.name}: {verdict}")
        if not checked:
            print("no live worker to check", file=sys.stderr)
        return 0 if checked and all(w.healthy for w in checked) else 1

    return _with_redis(args, work)


def _operator() -> str:
    return f"{os.environ.get('USER', 'someone')}@{socket.gethostname()}"


def _use_uvloop() -> None:
    """uvloop when installed: a faster event loop for the hot path."""
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
