"""The kill switch: no new orders, for every account or for one, until it is lifted.

It is a key in Redis (``<prefix>:halt`` for all accounts, ``<prefix>:halt:<account>`` for
one) holding a ``HaltRecord``; its presence is what halts. The ledger's claim script
checks it in the same atomic step that claims each new order, so it takes effect for the
next intent any worker picks up and survives worker restarts. Modifies and cancels are
never halted: the kill switch stops new risk, never the way out.
"""

from __future__ import annotations

import msgspec
from redis.asyncio import Redis

from ow_core.keys import Keys


class HaltRecord(msgspec.Struct, kw_only=True, frozen=True):
    """Why, when (epoch ms) and by whom new orders were halted."""

    reason: str
    at: int
    by: str


class Halts(msgspec.Struct, frozen=True, kw_only=True):
    """Every halt in force: for all accounts, and per account (keyed by account ID)."""

    all_accounts: HaltRecord | None
    accounts: dict[str, HaltRecord]


def read_record(data: bytes | str | None) -> HaltRecord | None:
    """The record a halt key holds. Any value halts (the claim checks only that the key
    exists), so a key set by hand reads as a halt whose reason is its value."""
    if data is None:
        return None
    raw = data.encode() if isinstance(data, str) else data
    try:
        return msgspec.json.decode(raw, type=HaltRecord)
    except msgspec.DecodeError:
        return HaltRecord(reason=raw.decode(errors="replace"), at=0, by="?")


async def halt(redis: Redis, keys: Keys, record: HaltRecord, account_id: int | None) -> None:
    """Halt new orders for one account, or for all when ``account_id`` is None."""
    await redis.set(keys.halt(account_id), msgspec.json.encode(record))


async def resume(redis: Redis, keys: Keys, account_id: int | None) -> bool:
    """Lift a halt; False when there was none."""
    return bool(await redis.delete(keys.halt(account_id)))


async def read(redis: Redis, keys: Keys) -> Halts:
    """Every halt in force."""
    accounts: dict[str, HaltRecord] = {}
    head = f"{keys.halt()}:"
    async for key in redis.scan_iter(match=f"{head}*", count=1000):
        record = read_record(await redis.get(key))
        if record is not None:
            name = key.decode(errors="replace") if isinstance(key, bytes) else str(key)
            accounts[name[len(head) :]] = record
    return Halts(
        all_accounts=read_record(await redis.get(keys.halt())),
        accounts=dict(sorted(accounts.items())),
    )
