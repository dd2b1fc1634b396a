"""The Redis side of the mirror: each change applied to an account's mirror and added to its
events stream in one atomic step, never twice, never backwards.

Writing twice is safe by design: a leader that lost its lease while it still ran, its
successor, and a reconciliation after a gap may all write the same change; the change's
identity (``normalize.identity``) makes every write after the first a no-op, and the
gateway's update time keeps an older state from replacing a newer one.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable
from importlib.resources import files
from typing import Any, Final, cast

import msgspec
from redis.asyncio import Redis

from ow_core.fastlane import FastLane, Script
from ow_core.keys import Keys
from producer.events import (
    EVENT_ENCODER,
    ORDER_DECODER,
    TRADE_DECODER,
    Event,
    OrderUpdate,
    PositionUpdate,
    TradeUpdate,
)
from worker.mirror.normalize import identity

_APPLY: Final = Script.from_files(
    files("worker.ledger") / "types.lua", files("worker.mirror") / "apply.lua"
)
# The mirror of an account outlives a quiet weekend; ``prune`` drops what is done and old.
_TTL_MS: Final = 4 * 24 * 3600 * 1000


class ApplyArgs(msgspec.Struct, frozen=True, kw_only=True):
    """``apply.lua``'s arguments."""

    field: str
    """The thing's field in the view (its ID)."""
    seen: str
    """Its field in the meta hash (the ID, prefixed by its kind)."""
    at: int
    identity: str
    view: str
    """The new state for the mirror ('' removes it: a position gone flat)."""
    event: str
    open: str
    """Orders only: 'set' while working, 'del' once final; '' for other kinds."""
    ttl_ms: int
    min_id: str
    """Events older than this stream ID are trimmed (the retention)."""


def _where(keys: Keys, event: Event) -> tuple[str, str, str]:
    """The mirror hash an event changes, its field there, and its field in the meta hash."""
    account = event.account_id
    if isinstance(event, OrderUpdate):
        return keys.mirror_orders(account), str(event.order_id), f"o:{event.order_id}"
    if isinstance(event, TradeUpdate):
        return keys.mirror_trades(account), str(event.trade_id), f"t:{event.trade_id}"
    if isinstance(event, PositionUpdate):
        return keys.mirror_positions(account), event.contract_id, f"p:{event.contract_id}"
    return keys.mirror_account(account), "a", "a"


class MirrorStore:
    """Writes an account's mirror and events (the leader of the user hub does)."""

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        *,
        retention_s: int = 86_400,
        lane: FastLane | None = None,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._retention_ms = retention_s * 1000
        # A fill makes five or more changes (order, legs, trade, position, account): on the
        # pipelined lane, each costs a fraction of a redis-py call. Tests on fakeredis go
        # without one.
        self._lane = lane
        self._apply = redis.register_script(_APPLY.source)

    async def apply(self, event: Event) -> str | None:
        """Apply one change; the new event's stream ID, or None when it was not new."""
        view_key, field, seen = _where(self._keys, event)
        encoded = EVENT_ENCODER.encode(event).decode()
        flat = isinstance(event, PositionUpdate) and event.size == 0
        account = event.account_id
        args = ApplyArgs(
            field=field,
            seen=seen,
            at=event.at,
            identity=identity(event),
            view="" if flat else encoded,
            event=encoded,
            open=("del" if event.final else "set") if isinstance(event, OrderUpdate) else "",
            ttl_ms=_TTL_MS,
            min_id=f"{max(0, int(time.time() * 1000) - self._retention_ms)}-0",
        )
        keys = [
            view_key,
            self._keys.mirror_meta(account),
            self._keys.events(account),
            self._keys.mirror_open(account),
            self._keys.mirror_unseen(account),
        ]
        encoded_args = [msgspec.json.encode(args)]
        answer: Any = (
            await self._lane.run(_APPLY, keys, encoded_args)
            if self._lane is not None
            else await self._apply(keys=keys, args=encoded_args)
        )
        if not answer:
            return None
        return answer.decode() if isinstance(answer, bytes) else str(answer)

    async def mark_synced(self, account_id: int, at_ms: int, ttl_ms: int) -> None:
        """The mirror of this account is proven live as of ``at_ms`` (for ``ttl_ms``)."""
        await self._redis.set(self._keys.mirror_synced(account_id), at_ms, px=ttl_ms)

    async def forget_synced(self, account_id: int) -> None:
        """The mirror may be missing changes now (a gap): readers fall back to REST."""
        await self._redis.delete(self._keys.mirror_synced(account_id))

    async def prune(self, account_id: int, before_ms: int) -> int:
        """Drop finished orders and trades that happened before ``before_ms`` (a trading
        day ago): the mirror holds today, not history. The number dropped."""
        dropped = 0
        meta = self._keys.mirror_meta(account_id)
        for key, decoder, kind in (
            (self._keys.mirror_orders(account_id), ORDER_DECODER, "o"),
            (self._keys.mirror_trades(account_id), TRADE_DECODER, "t"),
        ):
            held = await cast(Awaitable[dict[bytes, bytes]], self._redis.hgetall(key))
            old = []
            for field, raw in held.items():
                thing = decoder.decode(raw)
                if thing.at < before_ms and (not isinstance(thing, OrderUpdate) or thing.final):
                    old.append(field.decode())
            if old:
                async with self._redis.pipeline(transaction=False) as pipe:
                    pipe.hdel(key, *old)
                    pipe.hdel(meta, *(f"{kind}:{field}" for field in old))
                    await pipe.execute()
                dropped += len(old)
        return dropped
