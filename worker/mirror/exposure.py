"""An account's exposure in one contract as the mirror has it, for the risk check: the
position, what working orders could add, and accepted orders the mirror has not seen yet.

Reading it costs one Redis round trip and no broker request. It is only trusted while a
leader keeps the mirror live (``synced``); otherwise the risk check asks the broker.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from importlib.resources import files
from typing import Any, Final, cast

from redis.asyncio import Redis

from ow_core.fastlane import Script
from ow_core.keys import Keys
from producer.events import ORDER_DECODER, POSITION_DECODER

_UNSEEN: Final = Script.from_files(files("worker.mirror") / "unseen.lua")
UNSEEN_GRACE_MS: Final = 30_000
"""How long an accepted order counts while the mirror has not seen it: far longer than
the hub takes to push it; past that, it is taken for lost rather than counted forever."""


@dataclass(frozen=True, slots=True)
class Exposure:
    """Signed contracts of one account in one contract."""

    position: int
    working_buy: int
    """Contracts working buy orders could still add (bracket legs included)."""
    working_sell: int
    unseen: int
    """Signed size of accepted orders the mirror does not show yet."""


def exposure_of(
    contract_id: str,
    position: bytes | None,
    working: Sequence[bytes],
    unseen: Mapping[bytes, bytes],
    now_ms: int,
) -> tuple[Exposure, list[bytes]]:
    """The exposure from the mirror's raw values, and the unseen entries gone stale."""
    size = 0 if position is None else POSITION_DECODER.decode(position).size
    buy = sell = 0
    for raw in working:
        order = ORDER_DECODER.decode(raw)
        if order.contract_id == contract_id and not order.final:
            left = max(0, order.quantity - order.filled_quantity)
            if order.side == "BUY":
                buy += left
            else:
                sell += left
    pending = 0
    stale = []
    for order_id, value in unseen.items():
        contract, signed, at = value.decode().rsplit("|", 2)
        if now_ms - int(at) > UNSEEN_GRACE_MS:
            stale.append(order_id)
        elif contract == contract_id:
            pending += int(signed)
    return Exposure(size, buy, sell, pending), stale


class MirrorExposure:
    """Reads exposure from the mirror and notes accepted orders it has not seen yet."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys
        self._unseen = redis.register_script(_UNSEEN.source)

    async def of(self, account_id: int, contract_id: str) -> Exposure | None:
        """The exposure, or None when no leader keeps the mirror live."""
        keys = self._keys
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.exists(keys.mirror_synced(account_id))
            pipe.hget(keys.mirror_positions(account_id), contract_id)
            pipe.hvals(keys.mirror_open(account_id))
            pipe.hgetall(keys.mirror_unseen(account_id))
            live, position, working, unseen = await pipe.execute()
        if not live:
            return None
        exposure, stale = exposure_of(
            contract_id, position, working, unseen, int(time.time() * 1000)
        )
        if stale:
            gone = [order_id.decode() for order_id in stale]
            await cast(Awaitable[Any], self._redis.hdel(keys.mirror_unseen(account_id), *gone))
        return exposure

    async def accepted(self, account_id: int, order_id: int, contract_id: str, signed: int) -> None:
        """A new order the broker accepted: counted until the mirror shows it."""
        value = f"{contract_id}|{signed}|{int(time.time() * 1000)}"
        await self._unseen(
            keys=[self._keys.mirror_orders(account_id), self._keys.mirror_unseen(account_id)],
            args=[order_id, value, UNSEEN_GRACE_MS * 2],
        )
