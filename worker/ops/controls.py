"""``order-worker halt|resume|flatten|contract``: the operator's controls over the fleet."""

from __future__ import annotations

import argparse
import asyncio
import time

import msgspec
from redis.asyncio import Redis

from ow_core.keys import Keys
from producer.contract import OrderResult
from producer.validation import check_symbol
from worker.broker.models import ContractInfo
from worker.fleet import halt as kill_switch
from worker.fleet.contracts import SharedContracts
from worker.fleet.halt import HaltRecord
from worker.ops.args import account, operator, order_client, redis_options, seconds, with_redis
from worker.settings import ConfigError


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``halt``, ``resume`` and ``contract`` commands."""
    halt = commands.add_parser(
        "halt",
        help="kill switch: stop every worker from sending new orders (cancels still go through)",
        description="Stop every worker of the fleet from sending new orders, for all accounts "
        "or one. Modifies and cancels still go through, so positions can be flattened. Takes "
        "effect at once for intents not yet started, survives worker restarts (it is kept in "
        "Redis) and lasts until `order-worker resume`.",
    )
    redis_options(halt)
    halt.add_argument("--account", type=account, help="only this account (default: all)")
    halt.add_argument("--reason", default="halted by an operator", help="shown in the results")
    halt.add_argument(
        "--flatten",
        action="store_true",
        help="then flatten the account (needs --account and running workers)",
    )
    _flatten_options(halt, symbol=False)
    halt.set_defaults(handler=_halt)

    flatten = commands.add_parser(
        "flatten",
        help="cancel every working order and close every position of an account",
        description="Submit a flatten intent and wait for its result: the workers cancel every "
        "working order (bracket legs included), close every position, then check at the "
        "broker that nothing is left. It passes a halted account. Needs running workers. "
        "Exit status 0 when the account is flat, 1 when it is not (the output says what is "
        "left).",
    )
    redis_options(flatten)
    flatten.add_argument("--account", type=account, required=True, help="broker account ID")
    _flatten_options(flatten, symbol=True)
    flatten.set_defaults(handler=_flatten)

    resume = commands.add_parser(
        "resume",
        help="lift the kill switch",
        description="Let new orders through again (for all accounts, or the one given).",
    )
    redis_options(resume)
    resume.add_argument("--account", type=account, help="only this account (default: all)")
    resume.set_defaults(handler=_resume)

    contract = commands.add_parser(
        "contract",
        help="show, set or clear the fleet's contract for a symbol",
        description="The fleet caches symbol → contract in Redis. `set` pins a symbol to a "
        "contract (e.g. to trade the next month before the roll) until `clear`; workers pick "
        "it up within CONTRACT_REFRESH_S.",
    )
    redis_options(contract)
    contract.add_argument("action", choices=("show", "set", "clear"))
    contract.add_argument("symbol", help="e.g. MNQ")
    contract.add_argument("contract_id", nargs="?", help="set: e.g. CON.F.US.MNQ.H27")
    contract.add_argument("--tick-size", type=float, help="set: the contract's tick size")
    contract.add_argument("--tick-value", type=float, help="set: the contract's tick value")
    contract.set_defaults(handler=_contract)


def _flatten_options(parser: argparse.ArgumentParser, *, symbol: bool) -> None:
    if symbol:
        parser.add_argument("--symbol", help="only this symbol's orders and position")
    parser.add_argument(
        "--timeout", type=seconds, default=60.0, help="seconds to wait for the result (60)"
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def _halt(args: argparse.Namespace) -> int:
    if args.flatten and args.account is None:
        raise ConfigError("halt --flatten needs --account (a flatten is for one account)")

    async def work(client: Redis, keys: Keys) -> int:
        record = HaltRecord(reason=args.reason, at=int(time.time() * 1000), by=operator())
        await kill_switch.halt(client, keys, record, args.account)
        return 0

    code = with_redis(args, work)
    print(f"halted: no new orders for {_scope(args.account)} until `order-worker resume`")
    if args.flatten:
        return _flatten(args)
    return code


def _flatten(args: argparse.Namespace) -> int:
    async def work() -> OrderResult:
        async with order_client(args, args.account, timeout=args.timeout) as client:
            return await client.flatten(symbol=getattr(args, "symbol", None))

    result = asyncio.run(work())
    if args.json:
        print(msgspec.json.encode(result).decode())
    else:
        print(describe_flatten(result))
    return 0 if result.ok else 1


def describe_flatten(result: OrderResult) -> str:
    """A flatten's result in one line."""
    cancelled = result.cancelled or []
    closed = ", ".join(f"{c.contract_id} {c.quantity}" for c in result.closed or []) or "nothing"
    done = f"cancelled {len(cancelled)} orders, closed {closed}"
    if result.ok:
        return f"flat: {done}"
    return f"NOT flat ({result.status}: {result.error_code}): {result.message}; {done}"


def _resume(args: argparse.Namespace) -> int:
    async def work(client: Redis, keys: Keys) -> int:
        lifted = await kill_switch.resume(client, keys, args.account)
        scope = _scope(args.account)
        print(f"resumed: new orders allowed for {scope}" if lifted else f"{scope}: not halted")
        if args.account is None:
            rest = [k.decode() async for k in client.scan_iter(f"{keys.halt()}:*")]
            if rest:
                print(f"still halted: {', '.join(rest)}")
        return 0

    return with_redis(args, work)


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

    return with_redis(args, work)


def _scope(account_id: int | None) -> str:
    return "all accounts" if account_id is None else f"account {account_id}"
