"""Bad inputs are refused with a typed InvalidOrder before anything goes on the wire."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from producer.errors import InvalidOrder, OrderError
from tests.integration.broker.conftest import MakeClient
from tests.integration.broker.helpers import (
    ACCOUNT,
    CONTRACT_SEARCH,
    PLACE,
    counts,
    sent_since,
)
from worker.broker.client import GatewayClient
from worker.broker.transport import CallStats
from worker.local.pytest_plugin import BrokerSim

NAN = float("nan")


@pytest.fixture
async def ready(client: GatewayClient) -> GatewayClient:
    """Logged in, with MNQ's contract (and so its tick size) cached."""
    await client.contracts.resolve("MNQ")
    return client


PLACE_CASES: list[tuple[dict[str, Any], str, str]] = [
    # (changes to a valid 1-lot MNQ market BUY, expected code, text the message must show)
    ({"quantity": 0}, "invalid_quantity", "quantity must be greater than 0"),
    ({"quantity": -3}, "invalid_quantity", "-3"),
    ({"quantity": 1.5}, "invalid_quantity", "quantity must be a whole number"),
    ({"quantity": "2"}, "invalid_quantity", "got str '2'"),
    ({"quantity": True}, "invalid_quantity", "got bool True"),
    ({"quantity": None}, "invalid_quantity", "got NoneType"),
    ({"quantity": NAN}, "invalid_quantity", "nan"),
    ({"quantity": 2**31}, "invalid_quantity", "too large"),
    ({"account_id": "12345678"}, "invalid_account", "account_id must be a whole number"),
    ({"account_id": -1}, "invalid_account", "account_id must be greater than 0"),
    ({"account_id": 0}, "invalid_account", "account_id"),
    ({"account_id": 1.5}, "invalid_account", "account_id"),
    ({"account_id": False}, "invalid_account", "got bool False"),
    ({"side": "HOLD"}, "invalid_side", "side must be BUY or SELL, got 'HOLD'"),
    ({"side": 0}, "invalid_side", "got 0"),
    ({"side": ""}, "invalid_side", "side"),
    ({"order_type": "trailing"}, "invalid_order_type", "got 'trailing'"),
    ({"order_type": 2}, "invalid_order_type", "order_type"),
    ({"order_type": "limit"}, "missing_limit_price", "a limit order needs limit_price"),
    ({"order_type": "stop"}, "missing_stop_price", "a stop order needs stop_price"),
    ({"limit_price": 20000.0}, "unexpected_limit_price", "limit_price is only for limit"),
    ({"stop_price": 20000.0}, "unexpected_stop_price", "stop_price is only for stop"),
    ({"order_type": "limit", "limit_price": -1.0}, "invalid_price", "limit_price"),
    ({"order_type": "limit", "limit_price": 0}, "invalid_price", "limit_price"),
    ({"order_type": "limit", "limit_price": "20000"}, "invalid_price", "got str"),
    ({"order_type": "limit", "limit_price": True}, "invalid_price", "got bool"),
    ({"order_type": "limit", "limit_price": NAN}, "invalid_price", "finite"),
    ({"order_type": "stop", "stop_price": float("inf")}, "invalid_price", "stop_price"),
    (
        {"order_type": "limit", "limit_price": 20000.1},
        "price_off_tick",
        "limit_price 20000.1 is not a multiple of the tick size 0.25",
    ),
    (
        {"order_type": "stop", "stop_price": 19999.9},
        "price_off_tick",
        "stop_price 19999.9 is not a multiple of the tick size 0.25",
    ),
    ({"stop_loss_ticks": 0}, "invalid_ticks", "stop_loss_ticks must be greater than 0"),
    ({"stop_loss_ticks": -10}, "invalid_ticks", "stop_loss_ticks"),
    ({"stop_loss_ticks": 2.5}, "invalid_ticks", "stop_loss_ticks must be a whole number"),
    ({"stop_loss_ticks": "10"}, "invalid_ticks", "got str"),
    ({"stop_loss_ticks": True}, "invalid_ticks", "got bool"),
    ({"take_profit_ticks": 0}, "invalid_ticks", "take_profit_ticks"),
    ({"take_profit_ticks": -4}, "invalid_ticks", "take_profit_ticks"),
    ({"take_profit_ticks": 0.5}, "invalid_ticks", "take_profit_ticks"),
    ({"custom_tag": ""}, "invalid_custom_tag", "custom_tag"),
    ({"custom_tag": "x" * 65}, "invalid_custom_tag", "1 to 64 characters"),
    ({"custom_tag": "line\nbreak"}, "invalid_custom_tag", "custom_tag"),
    ({"custom_tag": 7}, "invalid_custom_tag", "custom_tag"),
    ({"symbol": ""}, "invalid_symbol", "symbol must be a non-empty name"),
    ({"symbol": 42}, "invalid_symbol", "got 42"),
    ({"symbol": "M" * 33}, "invalid_symbol", "symbol"),
]


def _case_id(case: tuple[dict[str, Any], str, str]) -> str:
    changes, code, _ = case
    return f"{code}-{'-'.join(f'{k}={v!r}'[:30] for k, v in changes.items())}"


@pytest.mark.parametrize("case", PLACE_CASES, ids=[_case_id(c) for c in PLACE_CASES])
async def test_bad_place_is_refused_before_the_wire(
    ready: GatewayClient, broker_sim: BrokerSim, case: tuple[dict[str, Any], str, str]
) -> None:
    changes, code, text = case
    order: dict[str, Any] = {"account_id": ACCOUNT, "symbol": "MNQ", "side": "BUY", "quantity": 1}
    order.update(changes)
    before = counts(broker_sim)
    stats = CallStats()

    with pytest.raises(InvalidOrder) as raised:
        await ready.place_order(stats=stats, **order)

    assert isinstance(raised.value, OrderError)
    assert raised.value.code == code
    assert text in raised.value.message
    assert str(raised.value) == f"{code}: {raised.value.message}"
    assert stats.attempts == 0
    assert sent_since(broker_sim, before) == 0


MODIFY_CASES: list[tuple[dict[str, Any], str, str]] = [
    ({}, "empty_modify", "at least one of quantity, limit_price, stop_price"),
    ({"quantity": 0}, "invalid_quantity", "quantity"),
    ({"quantity": 1.25}, "invalid_quantity", "quantity"),
    ({"quantity": False}, "invalid_quantity", "got bool"),
    ({"limit_price": -5.0}, "invalid_price", "limit_price"),
    ({"stop_price": "x"}, "invalid_price", "stop_price"),
    ({"quantity": 1, "order_id": 0}, "invalid_order_id", "order_id"),
    ({"quantity": 1, "order_id": "1001"}, "invalid_order_id", "got str"),
    ({"quantity": 1, "order_id": 2**63}, "invalid_order_id", "too large"),
    ({"quantity": 1, "account_id": None}, "invalid_account", "account_id"),
]


@pytest.mark.parametrize("case", MODIFY_CASES, ids=[_case_id(c) for c in MODIFY_CASES])
async def test_bad_modify_is_refused_before_the_wire(
    ready: GatewayClient, broker_sim: BrokerSim, case: tuple[dict[str, Any], str, str]
) -> None:
    changes, code, text = case
    request: dict[str, Any] = {"account_id": ACCOUNT, "order_id": 1001}
    request.update(changes)
    before = counts(broker_sim)

    with pytest.raises(InvalidOrder) as raised:
        await ready.modify_order(**request)

    assert raised.value.code == code
    assert text in raised.value.message
    assert sent_since(broker_sim, before) == 0


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"order_id": -1}, "invalid_order_id"),
        ({"order_id": 10.5}, "invalid_order_id"),
        ({"order_id": True}, "invalid_order_id"),
        ({"account_id": "abc"}, "invalid_account"),
        ({"account_id": 2**31}, "invalid_account"),
    ],
)
async def test_bad_cancel_is_refused_before_the_wire(
    ready: GatewayClient, broker_sim: BrokerSim, changes: dict[str, Any], code: str
) -> None:
    request: dict[str, Any] = {"account_id": ACCOUNT, "order_id": 1001}
    request.update(changes)
    before = counts(broker_sim)

    with pytest.raises(InvalidOrder) as raised:
        await ready.cancel_order(**request)

    assert raised.value.code == code
    assert sent_since(broker_sim, before) == 0


async def _search_orders_bad_account(client: GatewayClient) -> None:
    await client.search_orders("12345678", datetime.now(UTC))  # type: ignore[arg-type]


async def _search_open_orders_bad_account(client: GatewayClient) -> None:
    await client.search_open_orders(-2)


@pytest.mark.parametrize("call", [_search_orders_bad_account, _search_open_orders_bad_account])
async def test_bad_account_on_searches_is_refused_before_the_wire(
    ready: GatewayClient,
    broker_sim: BrokerSim,
    call: Callable[[GatewayClient], Awaitable[None]],
) -> None:
    before = counts(broker_sim)
    with pytest.raises(InvalidOrder) as raised:
        await call(ready)
    assert raised.value.code == "invalid_account"
    assert sent_since(broker_sim, before) == 0


async def test_off_tick_price_of_an_uncached_contract_needs_only_the_contract_search(
    make_client: MakeClient, broker_sim: BrokerSim
) -> None:
    gateway = make_client()
    await gateway.auth.login()
    before = counts(broker_sim)

    with pytest.raises(InvalidOrder) as raised:
        await gateway.place_order(
            account_id=ACCOUNT,
            symbol="M2K",
            side="SELL",
            quantity=1,
            order_type="limit",
            limit_price=2300.05,  # M2K ticks are 0.1
        )

    assert raised.value.code == "price_off_tick"
    assert "0.1" in raised.value.message
    assert sent_since(broker_sim, before, CONTRACT_SEARCH) == 1
    assert sent_since(broker_sim, before, PLACE) == 0
    assert sent_since(broker_sim, before) == 1


async def test_on_tick_prices_with_awkward_floats_are_accepted(
    ready: GatewayClient, broker_sim: BrokerSim
) -> None:
    # 0.1-tick arithmetic in binary floats is inexact; the check is decimal, so these pass.
    order_id = await ready.place_order(
        account_id=ACCOUNT,
        symbol="M2K",
        side="BUY",
        quantity=1,
        order_type="limit",
        limit_price=2300.3,
    )
    assert order_id > 0


async def test_unknown_symbol_sends_a_contract_search_and_no_order(
    ready: GatewayClient, broker_sim: BrokerSim
) -> None:
    before = counts(broker_sim)

    with pytest.raises(InvalidOrder) as raised:
        await ready.place_order(account_id=ACCOUNT, symbol="QQQQ", side="BUY", quantity=1)

    assert raised.value.code == "unknown_symbol"
    assert "'QQQQ'" in raised.value.message
    assert sent_since(broker_sim, before, CONTRACT_SEARCH) == 1
    assert sent_since(broker_sim, before, PLACE) == 0
