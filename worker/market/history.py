"""Bar history for strategies: their requests answered from History/retrieveBars.

Every listener process reads the request stream in one consumer group (so any worker of
the fleet answers, leader or not, and a request is answered once), asks the gateway
through retrieveBars' own rate budget and pushes the answer on a list the strategy is
waiting on (with a TTL: an answer nobody took goes). A request whose strategy has given
up already (past its ``end`` by more than a minute) is not sent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Final

import msgspec
import redis.exceptions
from redis.asyncio import Redis

from ow_core.aio import cancel_and_wait
from ow_core.keys import Keys
from ow_core.redis_down import REDIS_ERRORS, is_redis_down
from producer.errors import OrderError
from producer.market import (
    HISTORY_REQUEST_DECODER,
    Bar,
    HistoryAnswer,
    HistoryRequest,
    Timeframe,
)
from worker.broker.client import GatewayClient

log = logging.getLogger("worker.market")

_ENCODE: Final = msgspec.json.Encoder()
_BLOCK_MS: Final = 1000
_ANSWER_TTL_S: Final = 60
_STALE_MS: Final = 60_000
_IN_FLIGHT: Final = 8
_WEEKEND: Final = timedelta(days=4)
"""Bars are asked for over their span plus this much: a weekend, a holiday, a halt."""


def window(timeframe: Timeframe, count: int, end: int) -> tuple[datetime, datetime]:
    """Where to look for the last ``count`` bars before ``end`` (epoch ms): their span
    twice over (intervals without a trade have no bar) and a long weekend more."""
    last = datetime.fromtimestamp((end - 1) / 1000, UTC)
    return last - timedelta(milliseconds=2 * count * timeframe.ms) - _WEEKEND, last


async def last_bars(
    broker: GatewayClient, symbol: str, timeframe: Timeframe, count: int, end: int
) -> list[Bar]:
    """The last ``count`` final bars of ``symbol`` that start before ``end``, oldest first."""
    contract = await broker.contracts.resolve(symbol)
    start, last = window(timeframe, count, end)
    bars = await broker.retrieve_bars(contract.contract_id, timeframe, start, last, limit=count)
    return [
        msgspec.structs.replace(bar, symbol=symbol) for bar in bars if bar.final and bar.start < end
    ][-count:]


class Historian:
    """One listener's share of the fleet's history requests."""

    def __init__(self, broker: GatewayClient, redis: Redis, keys: Keys, *, consumer: str) -> None:
        self._broker = broker
        self._redis = redis
        self._keys = keys
        self._consumer = consumer
        self._slots = asyncio.Semaphore(_IN_FLIGHT)

    async def run(self) -> None:
        """Answer requests until cancelled."""
        tasks: set[asyncio.Task[None]] = set()
        try:
            while True:
                try:
                    await self._read(tasks)
                except REDIS_ERRORS as error:
                    if not is_redis_down(error):
                        raise
                    log.warning("history requests: cannot reach Redis (%s)", error)
                    await asyncio.sleep(1.0)
        finally:
            await cancel_and_wait(tasks)

    async def _read(self, tasks: set[asyncio.Task[None]]) -> None:
        stream, group = self._keys.history_requests, self._keys.history_group
        try:
            answer = await self._redis.xreadgroup(
                group, self._consumer, {stream: ">"}, count=_IN_FLIGHT, block=_BLOCK_MS
            )
        except redis.exceptions.ResponseError as error:
            if "NOGROUP" not in str(error):
                raise
            try:
                await self._redis.xgroup_create(stream, group, id="0", mkstream=True)
            except redis.exceptions.ResponseError as exists:
                if "BUSYGROUP" not in str(exists):
                    raise
            return
        for _, entries in answer or ():
            for entry_id, fields in entries:
                await self._slots.acquire()
                task = asyncio.create_task(self._answer(entry_id, fields.get(b"d", b"")))
                tasks.add(task)
                task.add_done_callback(tasks.discard)

    async def _answer(self, entry_id: bytes, payload: bytes) -> None:
        try:
            await self._answer_one(payload)
            await self._redis.xack(self._keys.history_requests, self._keys.history_group, entry_id)
        except REDIS_ERRORS as error:
            if not is_redis_down(error):
                raise
            # Its strategy gives up after its timeout and may ask again.
            log.warning("history request: cannot answer (%s)", error)
        finally:
            self._slots.release()

    async def _answer_one(self, payload: bytes) -> None:
        try:
            request = HISTORY_REQUEST_DECODER.decode(payload)
        except msgspec.DecodeError as error:
            log.warning("ignoring a history request that does not decode: %s", error)
            return
        if request.end + _STALE_MS < time.time() * 1000:
            return  # its strategy has given up already
        answer = _ENCODE.encode(await self._bars(request))
        key = self._keys.history_answer(request.request_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.rpush(key, answer)
            pipe.expire(key, _ANSWER_TTL_S)
            await pipe.execute()

    async def _bars(self, request: HistoryRequest) -> HistoryAnswer:
        try:
            timeframe = Timeframe.parse(request.timeframe)
            bars = await last_bars(
                self._broker, request.symbol, timeframe, request.count, request.end
            )
        except OrderError as error:
            return HistoryAnswer(error=error.code, message=error.message)
        return HistoryAnswer(bars=bars)
