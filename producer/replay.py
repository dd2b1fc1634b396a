"""Record intents to a JSON-lines file and replay such a file onto the stream.

One intent per line, exactly as it travels on the stream (the contract's JSON, with its
``kind``), so a file can be written by hand for a test, recorded from a live stream
(``record_stream``) or from a client's own run (``OrderClient(record=path)``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, Final, Protocol, cast

import msgspec
from redis.asyncio import Redis

from ow_core.keys import Keys
from producer.contract import DATA_FIELD, ENCODER, INTENT_DECODER, Intent, OrderResult
from producer.errors import InvalidOrder


class Submitter(Protocol):
    """What replaying needs of a client (``OrderClient`` is one)."""

    reply_stream: str
    timeout: float

    def new_request_id(self) -> str:
        """A fresh request ID."""

    async def submit(self, intent: Intent) -> str:
        """Enqueue an intent; its request ID."""

    async def result(self, request_id: str, *, timeout: float = 0.0) -> OrderResult | None:
        """A request's result, waiting up to ``timeout`` for it."""


_PAGE: Final = 1000


class IntentLog:
    """An append-only JSON-lines file of intents, flushed line by line."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file: IO[bytes] | None = None

    def append(self, intent: Intent) -> None:
        """Write one intent as one line."""
        if self._file is None:
            self._file = self.path.open("ab")
        self._file.write(ENCODER.encode(intent) + b"\n")
        self._file.flush()

    def close(self) -> None:
        """Close the file (appending again reopens it)."""
        if self._file is not None:
            self._file.close()
            self._file = None


def read_intents(path: str | Path) -> Iterator[Intent]:
    """The intents of a JSON-lines file; a bad line raises ``InvalidOrder`` naming it."""
    with Path(path).open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                yield INTENT_DECODER.decode(line)
            except msgspec.DecodeError as error:
                raise InvalidOrder(
                    f"{path}:{number}: not an intent: {error}", code="bad_replay_file"
                ) from None


async def record_stream(
    redis: Redis, path: str | Path, *, keys: Keys | None = None, start: str = "-", end: str = "+"
) -> int:
    """Copy the intents on the stream (between two entry IDs) to a file; returns the count.

    Workers keep acknowledged intents for ``INTENTS_RETENTION_S`` before trimming them.
    Entries that are not readable intents are skipped.
    """
    stream = (keys or Keys()).intents
    log = IntentLog(path)
    count = 0
    cursor = start
    try:
        while True:
            page = await redis.xrange(stream, min=cursor, max=end, count=_PAGE)
            for _entry_id, fields in page:
                try:
                    log.append(INTENT_DECODER.decode(fields.get(DATA_FIELD, b"")))
                    count += 1
                except msgspec.DecodeError:
                    continue
            if len(page) < _PAGE:
                return count
            cursor = "(" + page[-1][0].decode()
    finally:
        log.close()


async def replay(
    client: Submitter,
    intents: list[Intent],
    *,
    keep_ids: bool = False,
    timeout: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[OrderResult | None]:
    """Submit recorded intents through ``client`` and collect their results, in order.

    Each intent gets this client's reply stream, a fresh creation time and the deadline
    it had relative to its creation. It also gets a fresh request ID unless ``keep_ids``
    (then a request that already has a result is answered from it, not executed again).
    ``None`` stands for an intent whose result did not arrive within the timeout.
    """
    now = int(time.time() * 1000)
    request_ids: list[str] = []
    for intent in intents:
        lifetime = max(intent.deadline - intent.created_at, 1)
        fresh = msgspec.structs.replace(
            intent,
            request_id=intent.request_id if keep_ids else client.new_request_id(),
            reply_to=client.reply_stream,
            created_at=now,
            deadline=now + (int(timeout * 1000) if timeout else lifetime),
        )
        request_ids.append(await client.submit(cast(Any, fresh)))
    results: list[OrderResult | None] = []
    for done, request_id in enumerate(request_ids, start=1):
        results.append(await client.result(request_id, timeout=timeout or client.timeout))
        if progress is not None:
            progress(done, len(request_ids))
    return results
