"""Accounts and contracts: search, look-up by ID, symbol resolution, caching and overrides."""

from __future__ import annotations

import pytest

from producer.errors import InvalidOrder
from tests.integration.broker.conftest import MakeClient
from tests.integration.broker.helpers import (
    ACCOUNT,
    CONTRACT_BY_ID,
    CONTRACT_SEARCH,
    PLACE,
    counts,
    sent_since,
    sim_order,
)
from worker.broker.client import GatewayClient
from worker.broker.errors import BrokerRejected
from worker.broker.transport import CallStats
from worker.local.pytest_plugin import BrokerSim


async def test_search_accounts_lists_the_broker_accounts(client: GatewayClient) -> None:
    accounts = await client.search_accounts()
    assert [a.id for a in accounts] == [12345678, 12345679, 12345680]
    first = accounts[0]
    assert first.name == "SIM-12345678"
    assert first.balance == 50000
    assert first.can_trade
    assert first.is_visible
    assert first.simulated


async def test_search_contracts_is_a_substring_search(client: GatewayClient) -> None:
    found = {c.symbol_id: c for c in await client.contracts.search("NQ")}
    # "NQ" finds the micro too; each carries the gateway's tick arithmetic.
    assert {"F.US.MNQ", "F.US.ENQ"} <= set(found)
    assert found["F.US.ENQ"].id.startswith("CON.F.US.ENQ.")
    assert found["F.US.ENQ"].tick_size == 0.25
    assert found["F.US.ENQ"].tick_value == 5
    assert found["F.US.MNQ"].tick_value == 0.5
    assert all(c.active_contract for c in found.values())


async def test_search_contracts_live_finds_nothing_like_topstepx(client: GatewayClient) -> None:
    # docs/gateway.md §4.1: the live search answers nothing, so the default is live=False.
    assert await client.contracts.search("MNQ", live=True) == []
    assert await client.contracts.search("MNQ")


async def test_contract_by_id_round_trips(client: GatewayClient) -> None:
    # The search lists two months of MES (front and next); each resolves to itself.
    months = [c for c in await client.contracts.search("MES") if c.symbol_id == "F.US.MES"]
    assert len(months) == 2
    for month in months:
        assert await client.contracts.by_id(month.id) == month


async def test_contract_by_unknown_id_is_rejected_once(
    client: GatewayClient, broker_sim: BrokerSim
) -> None:
    before = counts(broker_sim)
    stats = CallStats()
    with pytest.raises(BrokerRejected) as raised:
        await client.contracts.by_id("CON.F.US.NOPE.Z99", stats=stats)
    assert raised.value.broker_code == 1  # ContractNotFound
    assert stats.attempts == 1
    assert sent_since(broker_sim, before, CONTRACT_BY_ID) == 1


@pytest.mark.parametrize(
    ("symbol", "root", "tick_size", "tick_value"),
    [
        ("MNQ", "MNQ", 0.25, 0.5),
        ("NQ", "ENQ", 0.25, 5.0),
        ("MES", "MES", 0.25, 1.25),
        ("ES", "EP", 0.25, 12.5),
        ("M2K", "M2K", 0.1, 0.5),
        ("CL", "CLE", 0.01, 10.0),
    ],
)
async def test_resolve_contract_picks_the_symbol_not_a_lookalike(
    client: GatewayClient, symbol: str, root: str, tick_size: float, tick_value: float
) -> None:
    # "NQ" also matches MNQ (listed first) and "ES" matches MES: the name must match exactly.
    info = await client.contracts.resolve(symbol)
    assert info.symbol == symbol
    assert info.contract_id.startswith(f"CON.F.US.{root}.")
    assert (info.tick_size, info.tick_value) == (tick_size, tick_value)


async def test_resolve_contract_takes_the_front_of_several_months(client: GatewayClient) -> None:
    months = [c for c in await client.contracts.search("ES") if c.symbol_id == "F.US.EP"]
    assert len(months) == 2  # the simulator lists the front and the next month, front first
    info = await client.contracts.resolve("ES")
    assert info.contract_id == months[0].id


async def test_resolve_contract_is_cached(client: GatewayClient, broker_sim: BrokerSim) -> None:
    before = counts(broker_sim)
    first = await client.contracts.resolve("MNQ")
    assert sent_since(broker_sim, before, CONTRACT_SEARCH) == 1

    stats = CallStats()
    again = [await client.contracts.resolve(s, stats=stats) for s in ("MNQ", "mnq", " MNQ ")]

    assert again == [first, first, first]
    assert stats.attempts == 0
    assert sent_since(broker_sim, before) == 1  # nothing else went on the wire
    assert client.get_contract_id("mnq") == first.contract_id


async def test_unknown_symbol_is_an_invalid_order(
    client: GatewayClient, broker_sim: BrokerSim
) -> None:
    before = counts(broker_sim)
    with pytest.raises(InvalidOrder) as raised:
        await client.contracts.resolve("ZZQX")
    assert raised.value.code == "unknown_symbol"
    assert "ZZQX" in raised.value.message
    assert sent_since(broker_sim, before, CONTRACT_SEARCH) == 1
    assert client.get_contract_id("ZZQX") is None


async def test_pinned_contract_id_wins_and_its_ticks_are_fetched_once(
    client: GatewayClient, make_client: MakeClient, broker_sim: BrokerSim
) -> None:
    nq = await make_client().contracts.resolve("NQ")  # another client finds the ID
    assert client.get_contract_id("MNQ") is None
    client.set_contract_id("mnq", nq.contract_id)  # e.g. to trade another contract or month
    assert client.get_contract_id("MNQ") == nq.contract_id
    before = counts(broker_sim)

    info = await client.contracts.resolve("MNQ")
    await client.contracts.resolve("MNQ")

    assert (info.contract_id, info.tick_size, info.tick_value) == (nq.contract_id, 0.25, 5.0)
    assert sent_since(broker_sim, before, CONTRACT_BY_ID) == 1
    assert sent_since(broker_sim, before, CONTRACT_SEARCH) == 0
    order_id = await client.place_order(account_id=ACCOUNT, symbol="MNQ", side="BUY", quantity=1)
    assert sim_order(broker_sim, order_id)["contractId"] == nq.contract_id


async def test_pinned_contract_with_ticks_needs_no_request(
    client: GatewayClient, broker_sim: BrokerSim
) -> None:
    client.set_contract_id("MNQ", "CON.F.US.MNQ.H99", tick_size=0.25, tick_value=0.5)
    before = counts(broker_sim)

    info = await client.contracts.resolve("MNQ")

    assert info.contract_id == "CON.F.US.MNQ.H99"
    assert sent_since(broker_sim, before) == 0
    # The pinned ID is what goes on the wire: this gateway does not list it.
    stats = CallStats()
    with pytest.raises(BrokerRejected) as raised:
        await client.place_order(
            account_id=ACCOUNT, symbol="MNQ", side="BUY", quantity=1, stats=stats
        )
    assert raised.value.broker_code == 8  # ContractNotFound
    assert stats.attempts == 1
    assert sent_since(broker_sim, before, PLACE) == 1
