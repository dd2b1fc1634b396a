"""What every ``order-worker`` command shares: the Redis options, argument types, and a way
to run a command against Redis."""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

from ow_core.keys import DEFAULT_PREFIX, Keys
from ow_core.urls import DEFAULT_REDIS_URL, check_redis_url
from producer.errors import InvalidOrder
from producer.validation import check_account_id

Handler = Callable[[argparse.Namespace], int]


def redis_options(parser: argparse.ArgumentParser) -> None:
    """``--redis-url`` and ``--prefix``, defaulting to the worker's own variables."""
    parser.add_argument(
        "--redis-url",
        type=redis_url,
        default=os.environ.get("REDIS_URL", DEFAULT_REDIS_URL),
        help="Redis URL (default: $REDIS_URL or redis://127.0.0.1:6379/0)",
    )
    parser.add_argument(
        "--prefix",
        default=os.environ.get("ORDER_KEY_PREFIX", DEFAULT_PREFIX),
        help="Redis key prefix (default: $ORDER_KEY_PREFIX or ow)",
    )


def seconds(text: str) -> float:
    """An argument of seconds, > 0."""
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0 seconds, got {text}")
    return value


def positive(text: str) -> int:
    """An argument of a whole number, >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def with_redis(
    args: argparse.Namespace,
    work: Callable[[Redis, Keys], Awaitable[int]],
    *,
    ping: bool = True,
) -> int:
    """Run ``work`` on a Redis client for ``--redis-url`` and the keys under ``--prefix``.

    Redis is pinged first, so a command that finds it unreachable says so (exit 2) rather
    than report "nothing there"; ``ping=False`` for one that rides out an outage itself.
    """

    async def go() -> int:
        client = Redis.from_url(args.redis_url, socket_connect_timeout=5, socket_timeout=5)
        try:
            if ping:
                await client.ping()
            return await work(client, Keys(args.prefix))
        finally:
            await client.aclose()

    return asyncio.run(go())


def redis_url(text: str) -> str:
    """A ``--redis-url`` that can work (port, database, scheme)."""
    try:
        return check_redis_url(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def account(text: str) -> int:
    """A broker account ID (``--account``): a whole number > 0."""
    try:
        return check_account_id(int(text))
    except (ValueError, InvalidOrder):
        raise argparse.ArgumentTypeError(
            f"must be a broker account ID (a whole number > 0), got {text}"
        ) from None


def operator() -> str:
    """Who is at the keyboard, for the records an operator's command leaves."""
    return f"{os.environ.get('USER', 'someone')}@{socket.gethostname()}"
