"""Where Redis is, and the one place that opens connections to it.

A deployment names one Redis server by its URL, or a Sentinel group that names the
primary (``REDIS_SENTINELS``, ``REDIS_SENTINEL_MASTER``). ``RedisTarget`` carries either;
``client()`` makes the redis-py client and ``lane()`` the hot path's pipelined connection,
both finding the primary through Sentinel when there is one and following a failover
(a connection to a primary that died or was demoted is dropped, and the next one asks the
sentinels again). Everything else in the project takes a target, never a URL of its own.

With Sentinel the URL still says how to talk to the data nodes (``rediss://`` for TLS,
user name and password, database); its host and port are not used.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, cast

import redis.exceptions
from redis.asyncio import Redis
from redis.asyncio.connection import parse_url
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialBackoff

from ow_core.fastlane import FastLane
from ow_core.urls import DEFAULT_REDIS_URL, check_redis_url, mask_url

DEFAULT_SENTINEL_MASTER: Final = "mymaster"
# Asking a sentinel is a short question; one that does not answer in this time is skipped.
_SENTINEL_TIMEOUT_S: Final = 1.0

Address = tuple[str, int]


def parse_sentinels(text: str | Sequence[str | Address]) -> tuple[Address, ...]:
    """``host:port,host:port`` (or a sequence of ``host:port`` / ``(host, port)``) as
    addresses; ``ValueError`` saying which one is wrong."""
    parts = [p.strip() for p in text.split(",")] if isinstance(text, str) else list(text)
    found: list[Address] = []
    for part in parts:
        if isinstance(part, tuple):
            host, port = part
        elif not part:
            continue
        else:
            host, _, number = part.rpartition(":")
            if not host or not number.isdigit():
                raise ValueError(f"expected host:port, got {part!r}")
            port = int(number)
        if not 0 < port < 65536:
            raise ValueError(f"port must be 1-65535, got {port} in {host}:{port}")
        found.append((host.strip("[]"), port))
    return tuple(found)


class SentinelDiscovery:
    """Asks a Sentinel group where its primary is (redis-py's ``discover_master``: the
    first sentinel that sees a primary neither subjectively nor objectively down)."""

    def __init__(self, sentinels: Sequence[Address], master: str) -> None:
        self._sentinel = _sentinel(sentinels)
        self._master = master

    async def primary(self) -> Address:
        """The primary's address; ``MasterNotFoundError`` (a ConnectionError) if no
        sentinel names a healthy one (an outage, ridden out like any other)."""
        host, port = await self._sentinel.discover_master(self._master)
        return str(host), int(port)

    async def close(self) -> None:
        """Close the connections to the sentinels."""
        await _close_sentinels(self._sentinel)


def _sentinel(sentinels: Sequence[Address], **data_nodes: Any) -> Sentinel:
    # redis-py leaves Sentinel's constructor unannotated.
    make = cast(Callable[..., Sentinel], Sentinel)
    return make(
        list(sentinels),
        sentinel_kwargs={
            "socket_timeout": _SENTINEL_TIMEOUT_S,
            "socket_connect_timeout": _SENTINEL_TIMEOUT_S,
        },
        **data_nodes,
    )


async def _close_sentinels(sentinel: Sentinel) -> None:
    for client in sentinel.sentinels:
        await client.aclose()


class _PrimaryClient(Redis):
    """A client of a Sentinel group's primary that closes its sentinels' connections too."""

    sentinel_group: Sentinel | None = None

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        if self.sentinel_group is not None:
            await _close_sentinels(self.sentinel_group)


@dataclass(frozen=True, slots=True)
class RedisTarget:
    """How to reach Redis: one server by ``url``, or the primary a Sentinel group names."""

    url: str = DEFAULT_REDIS_URL
    sentinels: tuple[Address, ...] = ()
    """Sentinels to ask for the primary (none: ``url`` names the server itself)."""
    sentinel_master: str = DEFAULT_SENTINEL_MASTER
    """The name the sentinels monitor the primary under."""

    def __post_init__(self) -> None:
        check_redis_url(self.url)
        if self.sentinels and self.url.startswith("unix:"):
            raise ValueError("a unix:// URL cannot be used with Sentinel")
        if self.sentinels and not self.sentinel_master:
            raise ValueError("the Sentinel master's name is empty")

    @classmethod
    def of(
        cls,
        url: str = DEFAULT_REDIS_URL,
        sentinels: str | Sequence[str | Address] | None = None,
        sentinel_master: str | None = None,
    ) -> RedisTarget:
        """A target from the forms a user gives (``"h:p,h:p"`` or a list); ``ValueError``
        saying what is wrong."""
        return cls(
            url,
            parse_sentinels(sentinels or ()),
            sentinel_master or DEFAULT_SENTINEL_MASTER,
        )

    @property
    def uses_sentinel(self) -> bool:
        """Whether the primary is found through Sentinel."""
        return bool(self.sentinels)

    def describe(self) -> str:
        """Where this is, for logs and errors (the password masked)."""
        if not self.sentinels:
            return mask_url(self.url)
        where = ",".join(f"{host}:{port}" for host, port in self.sentinels)
        return f"sentinel master {self.sentinel_master!r} via {where} ({mask_url(self.url)})"

    def client(self, **options: Any) -> Redis:
        """A redis-py client (``options`` as for ``Redis``: timeouts, retry, ...)."""
        if not self.sentinels:
            return cast(Redis, Redis.from_url(self.url, **options))
        settings: dict[str, Any] = dict(parse_url(self.url))
        for where in ("host", "port", "path"):
            settings.pop(where, None)
        if settings.pop("connection_class", None) is not None:
            settings["ssl"] = True  # rediss://: the Sentinel pool picks its SSL connection
        sentinel = _sentinel(self.sentinels, **settings, **options)
        client = cast(
            _PrimaryClient, sentinel.master_for(self.sentinel_master, redis_class=_PrimaryClient)
        )
        client.sentinel_group = sentinel
        return client

    async def reached(self, *, socket_timeout: float) -> Redis:
        """A client that retries a dropped connection a few times (a strategy's client: what
        it sends is safe to repeat), proven by a PING; the Redis error, and nothing left
        open, when Redis cannot be reached."""
        client = self.client(
            socket_timeout=socket_timeout,
            socket_connect_timeout=2,
            retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), 3),
            retry_on_error=[redis.exceptions.ConnectionError, redis.exceptions.TimeoutError],
        )
        try:
            await client.ping()
        except BaseException:
            await client.aclose()
            raise
        return client

    def lane(self, *, timeout: float = 5.0) -> FastLane:
        """The hot path's pipelined connection (``ow_core.fastlane``) to the primary."""
        discovery = (
            SentinelDiscovery(self.sentinels, self.sentinel_master) if self.sentinels else None
        )
        return FastLane(self.url, timeout=timeout, discovery=discovery)
