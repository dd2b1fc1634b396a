"""From the gateway's JSON to our events: a hub push and a REST read of the same state make
the same event; wrapped and bare payloads read alike."""

from __future__ import annotations

import msgspec
import pytest

from producer.events import OrderUpdate
from tests.unit.mirror.fakes import (
    ACCOUNT,
    MNQ,
    gateway_order,
    gateway_position,
    gateway_trade,
    symbols,
)
from worker.broker.models import Order, Trade
from worker.mirror import normalize


def test_a_wrapped_payload_and_a_bare_one_decode_alike() -> None:
    bare = msgspec.json.encode(gateway_order(5))
    wrapped = b'{"action": 1, "data": ' + bare + b"}"
    assert normalize.decode(Order, wrapped) == normalize.decode(Order, bare) == gateway_order(5)


def test_a_payload_that_is_no_model_is_a_decode_error() -> None:
    with pytest.raises(msgspec.DecodeError):
        normalize.decode(Trade, b'{"data": {"id": "x"}}')


@pytest.mark.parametrize(
    ("stamp", "ms"),
    [
        ("2026-12-01T15:00:00+00:00", 1_796_137_200_000),
        ("2026-12-01T15:00:00Z", 1_796_137_200_000),
        ("2026-12-01T15:00:00.1234567+00:00", 1_796_137_200_123),
        ("2026-12-01T09:00:00-06:00", 1_796_137_200_000),
        ("not a time", 0),
        (None, 0),
    ],
)
def test_gateway_times_become_epoch_milliseconds(stamp: str | None, ms: int) -> None:
    assert normalize.epoch_ms(stamp) == ms


@pytest.mark.parametrize(
    ("name", "symbol"), [("MNQZ5", "MNQ"), ("ESH26", "ES"), ("CLF6", "CL"), ("???", None)]
)
def test_a_contract_name_gives_its_symbol(name: str, symbol: str | None) -> None:
    assert normalize.symbol_of_name(name) == symbol


@pytest.mark.parametrize(
    ("status", "state"),
    [(1, "open"), (2, "filled"), (3, "cancelled"), (4, "expired"), (5, "rejected"),
     (6, "pending"), (7, "pending_cancel"), (8, "suspended"), (99, "unknown")],
)  # fmt: skip
def test_order_statuses_map_to_the_lifecycle_states(status: int, state: str) -> None:
    event = normalize.order_update(gateway_order(5, status=status), symbols, request_id=None)
    assert event.state == state
    assert event.final == (state in ("filled", "cancelled", "expired", "rejected"))


def test_an_order_becomes_an_order_update_with_its_fill_and_request() -> None:
    order = gateway_order(
        5, status=2, side=1, size=3, fill_volume=3, filled_price=21001.25, custom_tag="s.r1"
    )
    event = normalize.order_update(order, symbols, request_id="r1", reconciled=True)
    assert event == OrderUpdate(
        account_id=ACCOUNT, at=1_796_137_200_123, reconciled=True, order_id=5, contract_id=MNQ,
        symbol="MNQ", state="filled", side="SELL", order_type=1, quantity=3, filled_quantity=3,
        fill_price=21001.25, limit_price=21000.0, custom_tag="s.r1", request_id="r1",
    )  # fmt: skip


def test_a_short_position_is_signed_and_a_closed_one_has_no_average() -> None:
    short = normalize.position_update(gateway_position(2, long=False), symbols, at=1)
    assert (short.size, short.average_price, short.symbol) == (-2, 21000.0, "MNQ")
    gone = normalize.position_update(gateway_position(0), symbols, at=1)
    assert (gone.size, gone.average_price) == (0, 0.0)


def test_a_trade_keeps_its_pnl_fees_and_void() -> None:
    trade = gateway_trade(9, 5, profit_and_loss=-12.5, voided=True, side=1)
    event = normalize.trade_update(trade, symbols)
    assert (event.pnl, event.fees, event.voided, event.side) == (-12.5, 0.37, True, "SELL")


def test_identity_tells_a_new_state_from_the_same_one_seen_again() -> None:
    working = normalize.order_update(gateway_order(5), symbols, request_id=None)
    again = normalize.order_update(gateway_order(5), symbols, request_id=None, reconciled=True)
    moved = normalize.order_update(gateway_order(5, limit_price=20999.0), symbols, request_id=None)
    partly = normalize.order_update(
        gateway_order(5, fill_volume=1, size=2), symbols, request_id=None
    )
    assert normalize.identity(working) == normalize.identity(again)
    assert len({normalize.identity(e) for e in (working, moved, partly)}) == 3
