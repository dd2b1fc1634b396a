"""One broker token for the whole fleet, shared through Redis.

Every worker acts for the same login, and the gateway counts requests per login: a fleet
that logs in once per worker, or once per worker after every 401, wastes its budget and
invites a stampede. Here the token lives in Redis with its expiry; a worker that needs a
new one takes a short lock, checks again (someone may just have renewed it), obtains it,
and stores it; the others wait for it and use it.

The token in Redis is as secret as the API key: it is never logged, and nobody should run
Redis where untrusted clients can read it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Final

import msgspec
from redis.asyncio import Redis

from ow_core.keys import Keys
from ow_core.redis_down import REDIS_ERRORS, is_redis_down
from worker.broker.auth import login_not_reached
from worker.broker.models import LoginRefusal, Token

log = logging.getLogger("worker.fleet.tokens")

_TOKEN: Final = msgspec.json.Decoder(Token)
_REFUSAL: Final = msgspec.json.Decoder(LoginRefusal)


class SharedTokens:
    """The fleet's token store (``worker.broker.auth.TokenStore``)."""

    def __init__(self, redis: Redis, keys: Keys, *, lock_ms: int = 10_000) -> None:
        self._redis = redis
        self._keys = keys
        self._lock_ms = lock_ms
        self._owner = f"{socket.gethostname()}-{os.getpid()}"

    async def current(self) -> Token | None:
        """The shared token, unless it is missing, unreadable or expired."""
        try:
            data = await self._redis.get(self._keys.token)
        except REDIS_ERRORS as error:
            if not is_redis_down(error):
                raise
            log.warning("cannot read the shared token (%s)", error)
            return None
        if data is None:
            return None
        try:
            token = _TOKEN.decode(data)
        except msgspec.DecodeError:
            return None
        return token if token.expires_at > time.time() else None

    async def replace(
        self,
        stale: str | None,
        obtain: Callable[[], Awaitable[Token]],
        deadline: float | None = None,
    ) -> Token:
        """A token instead of ``stale``: one another worker just stored, or ``obtain()``'s,
        obtained by at most one worker at a time (the lock's holder). Waiting for the
        holder ends at ``deadline`` (``time.monotonic()``) with ``BrokerUnavailable``, not
        sent: the intent behind it expires on time instead of answering late."""
        give_up = time.monotonic() + self._lock_ms / 1000
        while True:
            newer = await self._newer_than(stale)
            if newer is not None:
                return newer
            try:
                locked = await self._redis.set(
                    self._keys.token_lock, self._owner, nx=True, px=self._lock_ms
                )
            except REDIS_ERRORS as error:
                if not is_redis_down(error):
                    raise
                log.warning("cannot coordinate the token through Redis (%s); renewing alone", error)
                return await obtain()
            if locked:
                return await self._obtain_locked(stale, obtain)
            now = time.monotonic()
            if deadline is not None and now > deadline:
                raise login_not_reached()
            if now > give_up:
                # The holder is stuck or gone (its lock expires): do not wait for ever.
                return await obtain()
            await asyncio.sleep(0.05)

    async def refusal(self) -> LoginRefusal | None:
        """The refusal the fleet is waiting out, if any (it expires when the wait is over)."""
        try:
            data = await self._redis.get(self._keys.login_refused)
        except REDIS_ERRORS as error:
            if not is_redis_down(error):
                raise
            return None
        if data is None:
            return None
        try:
            return _REFUSAL.decode(data)
        except msgspec.DecodeError:
            return None

    async def refused(self, refusal: LoginRefusal) -> None:
        """Share a refusal until its wait is over (and some more, so the next refusal
        still knows how many came before it)."""
        ttl_ms = int((refusal.until - time.time()) * 1000) + 120_000
        try:
            await self._redis.set(
                self._keys.login_refused, msgspec.json.encode(refusal), px=max(ttl_ms, 1)
            )
        except REDIS_ERRORS as error:
            if not is_redis_down(error):
                raise

    async def accepted(self) -> None:
        """A login worked: the fleet stops waiting."""
        try:
            await self._redis.delete(self._keys.login_refused)
        except REDIS_ERRORS as error:
            if not is_redis_down(error):
                raise

    async def _obtain_locked(
        self, stale: str | None, obtain: Callable[[], Awaitable[Token]]
    ) -> Token:
        try:
            newer = await self._newer_than(stale)  # renewed between our look and our lock
            if newer is not None:
                return newer
            token = await obtain()
            try:
                await self._redis.set(
                    self._keys.token,
                    msgspec.json.encode(token),
                    pxat=max(int(token.expires_at * 1000), int(time.time() * 1000) + 1),
                )
            except REDIS_ERRORS as error:
                if not is_redis_down(error):
                    raise
                log.warning("cannot share the new token (%s)", error)
            return token
        finally:
            try:
                if await self._redis.get(self._keys.token_lock) == self._owner.encode():
                    await self._redis.delete(self._keys.token_lock)
            except REDIS_ERRORS as error:
                if not is_redis_down(error):
                    raise
                # The lock expires by itself.

    async def _newer_than(self, stale: str | None) -> Token | None:
        token = await self.current()
        return token if token is not None and token.value != stale else None
