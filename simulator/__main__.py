"""Command line of the simulator: `order-sim` or `python -m simulator`.

Prints one line, `order-sim listening on http://HOST:PORT`, once it accepts connections
(tests read the port from it when started with --port 0), then serves until SIGTERM/SIGINT.
"""

import argparse
import asyncio
import re
import signal
from collections.abc import Callable, Coroutine, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec
from aiohttp import web

from simulator.app import create_app
from simulator.config import DEFAULT_ACCOUNTS, SimConfig
from simulator.faults import FaultConfig
from simulator.orders import StopThroughMarket, TagUniqueness
from simulator.ratelimit import GATEWAY_LIMIT, RateLimit
from simulator.tokens import DEFAULT_TTL_S

EPILOG = """\
fault settings can also be changed while running: POST /_sim/faults with a JSON object of
latency_ms, jitter_ms, error_rate, commit_then_fail_rate, stall_rate, stall_ms,
rate_limit ({"requests": N, "seconds": S} or null), endpoints (list of /api paths the
error, commit-then-fail and stall faults apply to; null = all) and max_fill_size
(contracts one order fills per price event; null = all).
prices: POST /_sim/price {"contractId": ID or "symbol": "MNQ", "price": P}; GET /_sim/price.
introspection: GET /_sim/orders, GET /_sim/stats, GET|POST /_sim/faults, POST /_sim/reset.
"""


def _port(text: str) -> int:
    port = int(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0-65535, got {port}")
    return port


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _dollars(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"expected an amount in dollars, got {text!r}") from None
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def _positive_dollars(text: str) -> Decimal:
    value = _dollars(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def _accounts(text: str) -> tuple[int, ...]:
    try:
        ids = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated account IDs, got {text!r}"
        ) from None
    if any(not 0 < i < 2**31 for i in ids) or len(set(ids)) != len(ids):
        raise argparse.ArgumentTypeError(
            f"account IDs must be distinct positive int32s, got {text!r}"
        )
    return ids


def _rate_limit(text: str) -> RateLimit:
    requests, _, seconds = text.partition("/")
    try:
        return msgspec.convert({"requests": int(requests), "seconds": float(seconds)}, RateLimit)
    except (ValueError, msgspec.ValidationError):
        raise argparse.ArgumentTypeError(
            f"expected REQUESTS/SECONDS such as 200/60, got {text!r}"
        ) from None


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `order-sim`."""
    parser = argparse.ArgumentParser(
        prog="order-sim",
        description="ProjectX Gateway (TopstepX) compatible broker simulator.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    add(
        "--port",
        type=_port,
        default=7070,
        help="port to bind; 0 picks a free one (default: %(default)s)",
    )
    add(
        "--accounts",
        type=_accounts,
        default=DEFAULT_ACCOUNTS,
        metavar="ID,ID,...",
        help=f"account IDs (default: {','.join(map(str, DEFAULT_ACCOUNTS))})",
    )
    add("--username", help="only this user name may log in (default: any)")
    add("--api-key", help="only this API key is accepted (default: any non-empty key)")
    add(
        "--token-ttl",
        type=_positive,
        default=DEFAULT_TTL_S,
        metavar="SECONDS",
        help="session token lifetime (default: %(default)g, the gateway's 24 h)",
    )
    limits = parser.add_mutually_exclusive_group()
    limits.add_argument(
        "--rate-limit",
        type=_rate_limit,
        default=GATEWAY_LIMIT,
        metavar="N/SECONDS",
        help="requests per login per sliding window, retrieveBars aside (default: 200/60)",
    )
    limits.add_argument(
        "--no-rate-limit",
        dest="rate_limit",
        action="store_const",
        const=None,
        help="no rate limiting",
    )
    add(
        "--retry-after",
        type=_non_negative_int,
        metavar="N",
        help="send Retry-After: N with 429s (default: none, like the gateway)",
    )
    faults = parser.add_argument_group("faults (rates are shares in [0, 1]; all default to 0)")
    fault = faults.add_argument
    fault(
        "--latency-ms", type=float, default=0.0, metavar="MS", help="delay added to every request"
    )
    fault("--jitter-ms", type=float, default=0.0, metavar="MS", help="plus uniform(0, MS)")
    fault(
        "--error-rate",
        type=float,
        default=0.0,
        metavar="RATE",
        help="requests answered 500 without taking effect",
    )
    fault(
        "--commit-then-fail-rate",
        type=float,
        default=0.0,
        metavar="RATE",
        help="place/modify/cancel that take effect, then get a 500 or a dropped connection",
    )
    fault(
        "--stall-rate",
        type=float,
        default=0.0,
        metavar="RATE",
        help="requests held --stall-ms before being processed",
    )
    fault("--stall-ms", type=float, default=0.0, metavar="MS", help="how long a stall lasts")
    fault(
        "--max-fill-size",
        type=_positive_int,
        metavar="N",
        help="fill at most N contracts of an order per price event (default: all at once)",
    )
    market = parser.add_argument_group("the market")
    market.add_argument(
        "--spread-ticks",
        type=_positive_int,
        default=1,
        metavar="N",
        help="ask minus bid, in ticks (default: %(default)s)",
    )
    market.add_argument(
        "--random-walk-ms",
        type=_non_negative,
        default=0.0,
        metavar="MS",
        help="move every price a seeded random step of up to 3 ticks every MS ms, for demos "
        "(default: off; prices move only through POST /_sim/price)",
    )
    market.add_argument(
        "--stop-through-market",
        choices=[m.value for m in StopThroughMarket],
        default=StopThroughMarket.REJECT.value,
        help="what a stop placed at or through the last price gets (default: %(default)s)",
    )
    market.add_argument(
        "--fee-per-contract",
        type=_dollars,
        metavar="DOLLARS",
        help="fee per contract and fill (default: the product's: 1.40 full size, 0.37 micro)",
    )
    market.add_argument(
        "--daily-loss-limit",
        type=_positive_dollars,
        metavar="DOLLARS",
        help="flatten and stop an account that loses this much in a trading day (default: none)",
    )
    add(
        "--tag-unique",
        choices=[m.value for m in TagUniqueness],
        default=TagUniqueness.FOREVER.value,
        help="customTag uniqueness per account: forever (the gateway's rule), only among "
        "open orders, or off (default: %(default)s)",
    )
    add(
        "--duplicate-tag-code",
        type=int,
        default=2,
        metavar="N",
        help="errorCode answered to a reused customTag (default: %(default)s, OrderRejected)",
    )
    add("--seed", type=int, help="seed for simulated prices and fault draws (default: random)")
    return parser


def config_from_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> SimConfig:
    """The SimConfig the parsed flags describe; bad fault values end in a parser error."""
    try:
        faults = msgspec.convert(
            {
                "latency_ms": args.latency_ms,
                "jitter_ms": args.jitter_ms,
                "error_rate": args.error_rate,
                "commit_then_fail_rate": args.commit_then_fail_rate,
                "stall_rate": args.stall_rate,
                "stall_ms": args.stall_ms,
                "rate_limit": args.rate_limit,
                "max_fill_size": args.max_fill_size,
            },
            FaultConfig,
        )
    except msgspec.ValidationError as exc:
        # msgspec names the field (`$.error_rate`); the user typed the flag (--error-rate).
        flag = re.sub(r"`\$\.(\w+)`", lambda m: "--" + m.group(1).replace("_", "-"), str(exc))
        parser.error(f"invalid value: {flag}")
    return SimConfig(
        accounts=args.accounts,
        username=args.username,
        api_key=args.api_key,
        token_ttl_s=args.token_ttl,
        retry_after_s=args.retry_after,
        faults=faults,
        tag_uniqueness=TagUniqueness(args.tag_unique),
        duplicate_tag_code=args.duplicate_tag_code,
        seed=args.seed,
        spread_ticks=args.spread_ticks,
        random_walk_ms=args.random_walk_ms,
        stop_through_market=StopThroughMarket(args.stop_through_market),
        fee_per_contract=args.fee_per_contract,
        daily_loss_limit=args.daily_loss_limit,
    )


async def serve(config: SimConfig, host: str, port: int) -> None:
    """Serve the simulator until SIGTERM or SIGINT."""
    # No access log: per-request logging would cost more than the simulated work.
    runner = web.AppRunner(create_app(config), access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        bound_port = runner.addresses[0][1]
        shown_host = f"[{host}]" if ":" in host else host
        print(f"order-sim listening on http://{shown_host}:{bound_port}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()


def _event_loop_runner() -> Callable[[Coroutine[Any, Any, None]], None]:
    try:
        import uvloop
    except ImportError:  # uvloop is optional (no Windows build)
        return asyncio.run
    return uvloop.run


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of `order-sim`."""
    parser = build_parser()
    args = parser.parse_args(argv)
    config = config_from_args(parser, args)
    _event_loop_runner()(serve(config, args.host, args.port))


if __name__ == "__main__":
    main()
