"""What every ``order-worker`` command shares: the Redis options, argument types, and a way
to run a command against Redis (one server, or the primary of a Sentinel group)."""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

from ow_core.connect import DEFAULT_SENTINEL_MASTER, Address, RedisTarget, parse_sentinels
from ow_core.keys import DEFAULT_PREFIX, Keys
from ow_core.urls import DEFAULT_REDIS_URL, check_redis_url
from producer.client import OrderClient
from producer.errors import InvalidConfig, InvalidOrder
from producer.validation import check_account_id

Handler = Callable[[argparse.Namespace], int]


def redis_options(parser: argparse.ArgumentParser) -> None:
    """``--redis-url``, ``--sentinels``, ``--sentinel-master`` and ``--prefix``, defaulting
    to the worker's own variables."""
    parser.add_argument(
        "--redis-url",
        type=redis_url,
        default=os.environ.get("REDIS_URL", DEFAULT_REDIS_URL),
        help="Redis URL (default: $REDIS_URL or redis://127.0.0.1:6379/0); with --sentinels "
        "only its scheme, user, password and database are used",
    )
    parser.add_argument(
        "--sentinels",
        type=sentinels,
        default=os.environ.get("REDIS_SENTINELS", ""),  # a string default is parsed by type
        help="find the primary through these sentinels, host:port,host:port "
        "(default: $REDIS_SENTINELS)",
    )
    parser.add_argument(
        "--sentinel-master",
        default=os.environ.get("REDIS_SENTINEL_MASTER", "").strip() or DEFAULT_SENTINEL_MASTER,
        help="the name the sentinels know the primary by "
        f"(default: $REDIS_SENTINEL_MASTER or {DEFAULT_SENTINEL_MASTER})",
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
        client = target(args).client(socket_connect_timeout=5, socket_timeout=5)
        try:
            if ping:
                await client.ping()
            return await work(client, Keys(args.prefix))
        finally:
            await client.aclose()

    return asyncio.run(go())


def target(args: argparse.Namespace) -> RedisTarget:
    """Where the command's Redis is (``--redis-url``, ``--sentinels``, ``--sentinel-master``)."""
    try:
        return RedisTarget(
            args.redis_url,
            getattr(args, "sentinels", ()),
            getattr(args, "sentinel_master", DEFAULT_SENTINEL_MASTER),
        )
    except ValueError as error:
        raise InvalidConfig(str(error)) from None


def order_client(
    args: argparse.Namespace, account_id: int | None = None, *, timeout: float
) -> OrderClient:
    """An ``OrderClient`` on the command's Redis and ``--prefix``."""
    where = target(args)
    return OrderClient(
        where.url,
        account_id,
        timeout=timeout,
        key_prefix=args.prefix,
        sentinels=where.sentinels,
        sentinel_master=where.sentinel_master,
    )


def sentinels(text: str) -> tuple[Address, ...]:
    """A ``--sentinels`` list, ``host:port,host:port``."""
    try:
        return parse_sentinels(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


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
