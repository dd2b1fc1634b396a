"""Resolved contracts shared by the fleet through Redis, and the command line's overrides.

Symbol → contract ID, tick size and tick value, stored with a TTL (contracts roll
quarterly) so a new worker does not search the broker again. An override set with
``order-worker contract set`` is kept without a TTL until cleared; workers re-read the
store every ``CONTRACT_REFRESH_S`` so it reaches them all.
"""

from __future__ import annotations

import logging
from typing import Final

import msgspec
from redis.asyncio import Redis

from ow_core.keys import Keys
from ow_core.redis_down import REDIS_ERRORS, is_redis_down
from worker.broker.models import ContractInfo

log = logging.getLogger("worker.fleet.contracts")

_CONTRACT: Final = msgspec.json.Decoder(ContractInfo)


class SharedContracts:
    """The fleet's contract store (``worker.broker.contracts.ContractStore``).

    Redis trouble never stops an order: the client then searches the broker itself.
    """

    def __init__(self, redis: Redis, keys: Keys, *, ttl_s: int = 12 * 3600) -> None:
        self._redis = redis
        self._keys = keys
        self._ttl_s = ttl_s

    async def load(self, symbol: str) -> ContractInfo | None:
        """The shared contract of a symbol, if any."""
        try:
            data = await self._redis.get(self._keys.contract(symbol))
        except REDIS_ERRORS as error:
            if not is_redis_down(error):
                raise
            log.warning("cannot read the shared contract of %s (%s)", symbol, error)
            return None
        if data is None:
            return None
        try:
            return _CONTRACT.decode(data)
        except msgspec.DecodeError:
            return None

    async def save(self, info: ContractInfo) -> None:
        """Share a contract just resolved (with the TTL; overrides are set by ``pin``)."""
        try:
            await self._redis.set(
                self._keys.contract(info.symbol), msgspec.json.encode(info), ex=self._ttl_s
            )
        except REDIS_ERRORS as error:
            if not is_redis_down(error):
                raise
            log.warning("cannot share the contract of %s (%s)", info.symbol, error)

    async def pin(self, info: ContractInfo) -> None:
        """Set an override: kept (no TTL) until ``clear``."""
        pinned = msgspec.structs.replace(info, pinned=True)
        await self._redis.set(self._keys.contract(info.symbol), msgspec.json.encode(pinned))

    async def clear(self, symbol: str) -> bool:
        """Forget a symbol's shared contract (the next order searches the broker)."""
        return bool(await self._redis.delete(self._keys.contract(symbol)))
