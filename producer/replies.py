"""One client's replies: a reader of its reply stream that resolves each waiting call by
request ID, and keeps the results nobody waits for (yet) for ``OrderClient.result``."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Final

import msgspec

from ow_core.backoff import Backoff
from ow_core.fastlane import FastLane
from ow_core.redis_down import REDIS_ERRORS, is_redis_down
from producer.contract import VERSION_BYTES, OrderResult, decode_result
from producer.errors import OrderError

log = logging.getLogger("producer.client")

READ_BLOCK_MS: Final = 1000
_LATE_RESULTS: Final = 10_000


class Replies:
    """Futures waiting for results, and the reader that resolves them."""

    def __init__(self, stream: str) -> None:
        self.stream = stream
        self._waiting: dict[str, asyncio.Future[OrderResult]] = {}
        self._late: OrderedDict[str, OrderResult] = OrderedDict()

    def expect(self, request_id: str) -> asyncio.Future[OrderResult]:
        """The future a result for ``request_id`` will resolve (registered before the
        intent is sent, so even an instant reply finds it)."""
        future = self._waiting.get(request_id)
        if future is None:
            future = self._waiting[request_id] = asyncio.get_running_loop().create_future()
        return future

    def waiting(self, request_id: str) -> asyncio.Future[OrderResult] | None:
        """The future of a request being waited for, if any."""
        return self._waiting.get(request_id)

    def forget(self, request_id: str) -> None:
        """Nobody waits for this request any more (a result arriving later is kept)."""
        self._waiting.pop(request_id, None)

    def take_late(self, request_id: str) -> OrderResult | None:
        """A result that arrived while nobody waited for it."""
        return self._late.pop(request_id, None)

    def fail_all(self, error: OrderError) -> None:
        """Every waiting call gets ``error`` (the client is closing)."""
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(error)
        self._waiting.clear()

    async def read(self, lane: FastLane, deliver: Callable[[dict[bytes, bytes]], None]) -> None:
        """Read the reply stream until cancelled, riding out Redis outages; each entry's
        fields go to ``deliver`` (the client's, which hands them to ``deliver`` here)."""
        last: bytes = b"0-0"
        trimmed = time.monotonic()
        backoff = Backoff(0.05, 2.0)
        while True:
            try:
                replies = await lane.execute(
                    "XREAD", "COUNT", 1000, "BLOCK", READ_BLOCK_MS, "STREAMS", self.stream, last
                )
                # Replies are read once; trimming what was read keeps the stream small
                # (now and then: a trim per reply would cost a round trip each).
                if replies and time.monotonic() - trimmed > 1.0:
                    await lane.execute("XTRIM", self.stream, "MINID", "~", last)
                    trimmed = time.monotonic()
            except REDIS_ERRORS as error:
                if not is_redis_down(error):
                    raise
                delay = backoff.next()
                log.warning("reading replies failed (%s); retrying in %.2f s", error, delay)
                await asyncio.sleep(delay)
                continue
            backoff.reset()
            for _stream, entries in replies or ():
                for entry_id, flat in entries:
                    last = entry_id
                    # XREAD answers each entry's fields as a flat [name, value, ...] list.
                    deliver(dict(zip(flat[::2], flat[1::2], strict=True)))

    def deliver(self, fields: dict[bytes, bytes]) -> None:
        """One reply entry: resolve its waiter, or keep it for ``result()``."""
        if fields.get(b"v") != VERSION_BYTES:
            log.warning("ignoring a reply of an unknown contract version %r", fields.get(b"v"))
            return
        try:
            result = decode_result(fields.get(b"r", b""))
        except msgspec.DecodeError as error:
            log.warning("ignoring an unreadable reply: %s", error)
            return
        future = self._waiting.get(result.request_id)
        if future is not None and not future.done():
            future.set_result(result)
            return
        # Nobody waits (the call timed out, or it is a scheduled cancel): keep it for result().
        self._late[result.request_id] = result
        while len(self._late) > _LATE_RESULTS:
            self._late.popitem(last=False)
