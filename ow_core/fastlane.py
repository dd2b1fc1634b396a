"""A minimal pipelined Redis connection for the few commands on the hot path.

redis-py runs every command through a connection pool, a retry wrapper, a health check
and a read under ``asyncio.timeout``; measured here, that is several times the cost of
the round trip itself. This connection writes each request as it comes and matches the
answers in order (Redis answers in order on one connection), with hiredis parsing, so
concurrent callers share one socket with no lock. It speaks just enough: commands, and
Lua scripts by SHA with a fallback to loading them.

Errors look like redis-py's (``redis.exceptions.ConnectionError``, ``TimeoutError``,
``ResponseError``), so callers handle both clients the same way. A broken connection fails
every request in flight and is reopened on the next call. With a ``Discovery`` (Sentinel,
``ow_core.connect``) each new connection asks where the primary is, and a ``READONLY``
answer (the server was demoted to a replica by a failover) drops the connection like an
outage, so the next call finds the new primary.

TLS (``rediss://``) takes redis-py's URL options: ``ssl_ca_certs``, ``ssl_certfile``,
``ssl_keyfile``, ``ssl_cert_reqs`` (``none``, ``optional``, ``required``) and
``ssl_check_hostname``, which is on here unless the URL says ``false`` (redis-py's pooled
connections leave it off unless told).
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import ssl
import time
from collections.abc import Sequence
from importlib.resources.abc import Traversable
from typing import Any, Final, Protocol, cast
from urllib.parse import SplitResult, parse_qs, unquote, urlsplit

import hiredis
import redis.exceptions

Arg = str | bytes | int | float

_NOSCRIPT: Final = "NOSCRIPT"
_READONLY: Final = "READONLY"
_CERT_REQS: Final = {
    "none": ssl.CERT_NONE,
    "optional": ssl.CERT_OPTIONAL,
    "required": ssl.CERT_REQUIRED,
}


class Discovery(Protocol):
    """Finds the server to connect to (the primary of a Sentinel group)."""

    async def primary(self) -> tuple[str, int]:
        """Host and port of the primary now; a redis-py ConnectionError if none is known."""
        ...

    async def close(self) -> None:
        """Release what it holds."""
        ...


def _command(args: Sequence[Arg]) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, bytes):
            raw = arg
        elif isinstance(arg, str):
            raw = arg.encode()
        else:
            raw = repr(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(parts)


class Script:
    """A Lua script known by its SHA1."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()

    @classmethod
    def from_files(cls, *files: Traversable) -> Script:
        """A script made of ``.lua`` files shipped with a package, in order (a file of
        shared functions first, then the script that calls them)."""
        return cls("\n".join(file.read_text(encoding="utf-8") for file in files))


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.reader = hiredis.Reader(replyError=redis.exceptions.ResponseError)
        self.waiting: collections.deque[tuple[asyncio.Future[Any], float]] = collections.deque()
        self.transport: asyncio.Transport | None = None
        self.lost: Exception | None = None
        self.outgoing: list[bytes] = []
        self.flush_scheduled = False

    def flush(self) -> None:
        self.flush_scheduled = False
        if self.outgoing and self.transport is not None and self.lost is None:
            self.transport.write(b"".join(self.outgoing))
        self.outgoing.clear()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports quack like asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while (reply := self.reader.gets()) is not False:
            future, _ = self.waiting.popleft()
            if isinstance(reply, redis.exceptions.ResponseError):
                error = (
                    self._demoted()
                    if str(reply).startswith(_READONLY)
                    else _as_redis_py_would(reply)
                )
                if not future.done():
                    future.set_exception(error)
            elif not future.done():
                future.set_result(reply)

    def _demoted(self) -> Exception:
        """A write refused as READONLY: this server is a replica now (a failover made
        another the primary). Drop the connection (what is in flight fails), so the next
        call connects to the primary anew; the error to answer with, an outage."""
        if self.lost is None:
            self.lost = redis.exceptions.ConnectionError(
                "Redis answered READONLY: it is a replica now (failover); reconnecting"
            )
            if self.transport is not None:
                self.transport.abort()
        return self.lost

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = self.lost or redis.exceptions.ConnectionError(
            f"connection to Redis lost ({exc or 'closed'})"
        )
        while self.waiting:
            future, _ = self.waiting.popleft()
            if not future.done():
                future.set_exception(self.lost)


class FastLane:
    """One pipelined connection to Redis (see the module docstring)."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 5.0,
        connect_timeout: float = 2.0,
        discovery: Discovery | None = None,
    ) -> None:
        self._url = url
        self._discovery = discovery
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Lock | None = None
        self._watchdog: asyncio.TimerHandle | None = None

    async def execute(self, *args: Arg) -> Any:
        """One command; its reply (bytes, int, list, ...) or a redis-py style error."""
        protocol = self._protocol
        if protocol is None or protocol.lost is not None:
            protocol = await self._connect()
        assert protocol.transport is not None
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        protocol.waiting.append((future, time.monotonic()))
        # Commands issued in the same turn of the event loop go out in one write (one
        # system call) instead of one each: under load that is most of them.
        protocol.outgoing.append(_command(args))
        if not protocol.flush_scheduled:
            protocol.flush_scheduled = True
            loop.call_soon(protocol.flush)
        return await future

    async def run(self, script: Script, keys: Sequence[Arg], args: Sequence[Arg]) -> Any:
        """EVALSHA, loading the script first if this Redis does not know it yet."""
        try:
            return await self.execute("EVALSHA", script.sha, len(keys), *keys, *args)
        except redis.exceptions.ResponseError as error:
            if not str(error).startswith(_NOSCRIPT):
                raise
            return await self.execute("EVAL", script.source, len(keys), *keys, *args)

    async def close(self) -> None:
        """Close the connection (requests in flight fail)."""
        if self._watchdog is not None:
            self._watchdog.cancel()
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.close()
        self._protocol = None
        if self._discovery is not None:
            await self._discovery.close()

    async def _connect(self) -> _Protocol:
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._protocol is not None and self._protocol.lost is None:
                return self._protocol
            loop = asyncio.get_running_loop()
            parts = urlsplit(self._url)
            host, port = parts.hostname or "127.0.0.1", parts.port or 6379
            try:
                if parts.scheme == "unix":
                    _, protocol = await asyncio.wait_for(
                        loop.create_unix_connection(_Protocol, parts.path), self._connect_timeout
                    )
                else:
                    if self._discovery is not None:
                        host, port = await self._discovery.primary()
                    _, protocol = await asyncio.wait_for(
                        loop.create_connection(
                            _Protocol,
                            host,
                            port,
                            ssl=_ssl_context(parts) if parts.scheme == "rediss" else None,
                        ),
                        self._connect_timeout,
                    )
            except (OSError, TimeoutError) as error:
                raise redis.exceptions.ConnectionError(
                    f"cannot connect to Redis at {host}:{port} ({error})"
                ) from None
            self._protocol = protocol
            await self._hello(parts.username, parts.password, parts.path)
            self._arm_watchdog()
            return protocol

    async def _hello(self, username: str | None, password: str | None, path: str) -> None:
        if password is not None:
            credentials = (
                [unquote(username), unquote(password)] if username else [unquote(password)]
            )
            await self.execute("AUTH", *credentials)
        database = path.strip("/") or "0"
        if database != "0":
            await self.execute("SELECT", database)

    def _arm_watchdog(self) -> None:
        """Every request has a timeout without a timer each: once a second, a connection
        whose oldest unanswered request is older than the timeout is dropped (which fails
        all requests on it, as redis-py does on a socket timeout)."""
        loop = asyncio.get_running_loop()

        def check() -> None:
            protocol = self._protocol
            if protocol is None or protocol.lost is not None:
                return
            if protocol.waiting and time.monotonic() - protocol.waiting[0][1] > self._timeout:
                protocol.lost = redis.exceptions.TimeoutError("Redis did not answer in time")
                while protocol.waiting:
                    future, _ = protocol.waiting.popleft()
                    if not future.done():
                        future.set_exception(protocol.lost)
                if protocol.transport is not None:
                    protocol.transport.abort()
                return
            self._watchdog = loop.call_later(1.0, check)

        self._watchdog = loop.call_later(1.0, check)


def _ssl_context(parts: SplitResult) -> ssl.SSLContext:
    """The TLS context redis-py would make from the same URL's options."""
    options = {name: values[-1] for name, values in parse_qs(parts.query).items()}
    context = ssl.create_default_context(cafile=options.get("ssl_ca_certs"))
    reqs = options.get("ssl_cert_reqs", "required").lower()
    if reqs not in _CERT_REQS:
        raise redis.exceptions.ConnectionError(
            f"ssl_cert_reqs must be none, optional or required, got {reqs!r}"
        )
    context.check_hostname = reqs != "none" and options.get(
        "ssl_check_hostname", "true"
    ).lower() not in ("0", "false", "no")
    context.verify_mode = _CERT_REQS[reqs]
    if "ssl_certfile" in options:
        context.load_cert_chain(options["ssl_certfile"], options.get("ssl_keyfile"))
    return context


def _as_redis_py_would(error: redis.exceptions.ResponseError) -> Exception:
    """A Redis that restarts answers ``LOADING`` until its data is read back: redis-py
    raises that as ``BusyLoadingError`` (a ConnectionError: an outage to ride out)."""
    text = str(error)
    if text.startswith("LOADING"):
        return redis.exceptions.BusyLoadingError(text)
    return error
