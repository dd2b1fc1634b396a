"""Contracts shared by the fleet: saved with a TTL, pinned without one, cleared on demand."""

from __future__ import annotations

from ow_core.keys import Keys
from tests.unit.worker.ledger_fakes import make_redis
from worker.broker.models import ContractInfo
from worker.fleet.contracts import SharedContracts

KEYS = Keys("t")
MNQ = ContractInfo("MNQ", "CON.F.US.MNQ.H27", 0.25, 0.5)


async def test_a_saved_contract_is_loaded_by_another_worker_until_its_ttl() -> None:
    redis = make_redis()
    await SharedContracts(redis, KEYS, ttl_s=600).save(MNQ)
    assert await SharedContracts(redis, KEYS).load("MNQ") == MNQ
    assert 0 < await redis.ttl(KEYS.contract("MNQ")) <= 600


async def test_a_pinned_contract_has_no_ttl_and_says_it_is_pinned() -> None:
    redis = make_redis()
    store = SharedContracts(redis, KEYS)
    await store.pin(MNQ)
    loaded = await store.load("MNQ")
    assert loaded is not None
    assert loaded.pinned
    assert await redis.ttl(KEYS.contract("MNQ")) == -1


async def test_clear_forgets_a_symbol() -> None:
    redis = make_redis()
    store = SharedContracts(redis, KEYS)
    await store.save(MNQ)
    assert await store.clear("MNQ")
    assert await store.load("MNQ") is None
    assert not await store.clear("MNQ")


async def test_unknown_and_unreadable_symbols_load_as_none() -> None:
    redis = make_redis()
    store = SharedContracts(redis, KEYS)
    assert await store.load("ES") is None
    await redis.set(KEYS.contract("ES"), b"{broken")
    assert await store.load("ES") is None
