"""One worker of the fleet does a job at a time: it holds a lease in Redis and renews it.

The lease is ``SET NX PX`` with the worker's name; the holder renews it every third of
its time to live and gives it back when it stops. Every worker that does not hold it tries
to take it every ``try_s``; so when the holder dies (SIGKILL) another worker takes over
within ``ttl + try_s`` (the README states the bound). A holder that cannot renew (Redis
away, or a stall long enough that another worker took over) stops its job at once; the
job's writes are safe to make twice, since for a moment two workers may both be writing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from importlib.resources import files
from typing import Any, Final

from redis.asyncio import Redis

from ow_core.aio import cancel_and_wait
from ow_core.fastlane import Script
from ow_core.redis_down import REDIS_ERRORS, is_redis_down

log = logging.getLogger("worker.hubs")

_LEASE: Final = Script.from_files(files("worker.hubs") / "lease.lua")


class Lease:
    """A leader lease in Redis."""

    def __init__(self, redis: Redis, key: str, holder: str, *, ttl_ms: int) -> None:
        self.key = key
        self.holder = holder
        self.ttl_ms = ttl_ms
        self._redis = redis
        self._script = redis.register_script(_LEASE.source)

    async def acquire(self) -> bool:
        """Take the lease if nobody holds it."""
        return bool(await self._redis.set(self.key, self.holder, nx=True, px=self.ttl_ms))

    async def renew(self) -> bool:
        """Extend it, if it is still ours."""
        return bool(await self._script(keys=[self.key], args=[self.holder, "renew", self.ttl_ms]))

    async def release(self) -> None:
        """Give it back, if it is still ours."""
        await self._script(keys=[self.key], args=[self.holder, "release", self.ttl_ms])


class Leadership:
    """Runs ``job`` on this worker while it holds ``lease``; stops it when the lease goes."""

    def __init__(
        self,
        lease: Lease,
        job: Callable[[], Coroutine[Any, Any, None]],
        *,
        what: str,
        try_s: float = 1.0,
    ) -> None:
        self._lease = lease
        self._job = job
        self._what = what
        self._try_s = try_s
        self.leading = False
        """Whether this worker holds the lease now."""

    async def run(self) -> None:
        """Until cancelled: take the lease when it is free, run the job while holding it."""
        while True:
            try:
                if await self._lease.acquire():
                    await self._lead()
            except REDIS_ERRORS as error:
                if not is_redis_down(error):
                    raise
                log.warning("%s: cannot reach Redis for the lease (%s)", self._what, error)
            await asyncio.sleep(self._try_s)

    async def stop(self) -> None:
        """Give the lease back (the job was stopped by cancelling ``run``)."""
        try:
            await asyncio.wait_for(self._lease.release(), 1.0)
        except (*REDIS_ERRORS, TimeoutError) as error:
            if not isinstance(error, TimeoutError) and not is_redis_down(error):
                raise
            # It expires by itself within its time to live.

    async def _lead(self) -> None:
        log.info("%s: this worker leads (lease %s)", self._what, self._lease.key)
        self.leading = True
        job = asyncio.create_task(self._job(), name=self._what)
        try:
            while not job.done():
                done, _ = await asyncio.wait([job], timeout=self._lease.ttl_ms / 3000)
                if done:
                    break
                renewed = False
                try:
                    renewed = await asyncio.wait_for(self._lease.renew(), self._lease.ttl_ms / 3000)
                except (*REDIS_ERRORS, TimeoutError) as error:
                    if not isinstance(error, TimeoutError) and not is_redis_down(error):
                        raise
                if not renewed:
                    log.warning("%s: lost the lease; stopping here", self._what)
                    return
            if job.exception() is not None:
                log.error("%s stopped: %r; leading again shortly", self._what, job.exception())
        finally:
            self.leading = False
            await cancel_and_wait([job])
