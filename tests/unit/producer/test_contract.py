"""The wire contract: what producers put on the stream is exactly what workers read back."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from producer.contract import (
    CONTRACT_VERSION,
    DATA_FIELD,
    INTENT_DECODER,
    VERSION_FIELD,
    CancelOrder,
    Intent,
    ModifyOrder,
    OrderResult,
    PlaceOrder,
    Status,
    decode_result,
    encode_intent,
    encode_result,
)

COMMON: dict[str, Any] = {
    "request_id": "req-1",
    "reply_to": "ow:reply:client-1",
    "account_id": 7,
    "created_at": 1_700_000_000_000,
    "deadline": 1_700_000_010_000,
}

PLACE_FULL = PlaceOrder(
    **COMMON,
    symbol="MNQ",
    side="SELL",
    quantity=3,
    order_type="limit",
    limit_price=21000.25,
    stop_loss_ticks=8,
    take_profit_ticks=16,
    custom_tag="alpha",
    cancel_after=30.0,
)
PLACE_MINIMAL = PlaceOrder(**COMMON, symbol="MNQ", side="BUY", quantity=1)
MODIFY = ModifyOrder(**COMMON, order_id=123456789012, quantity=2, stop_price=20990.5)
CANCEL = CancelOrder(**COMMON, order_id=42)


def _json(intent: Intent) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(encode_intent(intent)[DATA_FIELD])
    return data


@pytest.mark.parametrize(
    ("intent", "kind"),
    [(PLACE_FULL, "place"), (PLACE_MINIMAL, "place"), (MODIFY, "modify"), (CANCEL, "cancel")],
)
def test_each_intent_kind_round_trips_through_a_stream_entry(intent: Intent, kind: str) -> None:
    fields = encode_intent(intent)
    assert set(fields) == {VERSION_FIELD, DATA_FIELD}
    assert fields[VERSION_FIELD] == str(CONTRACT_VERSION).encode()
    assert json.loads(fields[DATA_FIELD])["kind"] == kind
    decoded = INTENT_DECODER.decode(fields[DATA_FIELD])
    assert type(decoded) is type(intent)
    assert decoded == intent


def test_defaults_are_left_off_the_wire() -> None:
    data = _json(PLACE_MINIMAL)
    assert data == {**COMMON, "kind": "place", "symbol": "MNQ", "side": "BUY", "quantity": 1}
    decoded = INTENT_DECODER.decode(encode_intent(PLACE_MINIMAL)[DATA_FIELD])
    assert isinstance(decoded, PlaceOrder)
    assert decoded.order_type == "market"


def test_order_result_round_trips() -> None:
    result = OrderResult(
        request_id="req-1",
        status="rejected",
        kind="cancel",
        order_id=42,
        order_state="filled",
        error_code="order_filled",
        message="cancel refused",
        broker_error_code=5,
        attempts=2,
        queued_ms=1.5,
        broker_ms=3.25,
        worker_ms=4.0,
        finished_at=1_700_000_000_123,
        worker="w1",
    )
    assert decode_result(encode_result(result)) == result
    assert not result.ok


def test_a_minimal_result_round_trips_and_only_accepted_is_ok() -> None:
    accepted = OrderResult(request_id="r", status="accepted", kind="place", order_id=9)
    assert json.loads(encode_result(accepted)) == {
        "request_id": "r",
        "status": "accepted",
        "kind": "place",
        "order_id": 9,
    }
    assert decode_result(encode_result(accepted)) == accepted
    assert accepted.ok
    statuses: tuple[Status, ...] = ("rejected", "expired", "failed")
    for status in statuses:
        assert not OrderResult(request_id="r", status=status, kind="place").ok


@pytest.mark.parametrize("intent", [PLACE_FULL, MODIFY, CANCEL])
def test_an_intent_with_an_unknown_field_decodes_and_the_field_is_ignored(intent: Intent) -> None:
    """Forward compatibility: a newer producer's optional field does not break an old worker."""
    data = _json(intent)
    data["time_in_force"] = {"kind": "gtd", "until": 1_700_000_020_000}
    data["iceberg"] = True
    decoded = INTENT_DECODER.decode(json.dumps(data).encode())
    assert decoded == intent
    assert "time_in_force" not in _json(decoded)


def test_an_unknown_field_in_a_result_is_ignored() -> None:
    data = json.loads(encode_result(OrderResult(request_id="r", status="accepted", kind="place")))
    data["fill_price"] = 1.0
    assert decode_result(json.dumps(data).encode()).status == "accepted"


@pytest.mark.parametrize(
    ("intent", "field", "value", "path"),
    [
        (PLACE_MINIMAL, "quantity", "1", "$.quantity"),
        (PLACE_MINIMAL, "quantity", 1.5, "$.quantity"),
        (PLACE_MINIMAL, "account_id", "7", "$.account_id"),
        (PLACE_MINIMAL, "limit_price", "21000", "$.limit_price"),
        (PLACE_MINIMAL, "side", "HOLD", "$.side"),
        (PLACE_MINIMAL, "order_type", "iceberg", "$.order_type"),
        (PLACE_MINIMAL, "stop_loss_ticks", [8], "$.stop_loss_ticks"),
        (PLACE_MINIMAL, "created_at", -1, "$.created_at"),
        (PLACE_MINIMAL, "request_id", "", "$.request_id"),
        (PLACE_MINIMAL, "request_id", "x" * 129, "$.request_id"),
        (PLACE_MINIMAL, "reply_to", 5, "$.reply_to"),
        (MODIFY, "order_id", "123", "$.order_id"),
        (MODIFY, "stop_price", True, "$.stop_price"),
        (CANCEL, "deadline", "soon", "$.deadline"),
    ],
)
def test_wrong_types_are_rejected_naming_the_field(
    intent: Intent, field: str, value: object, path: str
) -> None:
    data = _json(intent)
    data[field] = value
    with pytest.raises(msgspec.ValidationError, match=f"`{path.replace('$', '[$]')}`"):
        INTENT_DECODER.decode(json.dumps(data).encode())


def test_a_missing_required_field_is_named() -> None:
    data = _json(PLACE_MINIMAL)
    del data["symbol"]
    with pytest.raises(msgspec.ValidationError, match="missing required field `symbol`"):
        INTENT_DECODER.decode(json.dumps(data).encode())


@pytest.mark.parametrize("kind", ["replace", None, 1])
def test_an_unknown_or_missing_kind_is_rejected(kind: object) -> None:
    data = _json(CANCEL)
    if kind is None:
        del data["kind"]
    else:
        data["kind"] = kind
    with pytest.raises(msgspec.ValidationError, match="kind"):
        INTENT_DECODER.decode(json.dumps(data).encode())


def test_text_that_is_not_json_is_a_decode_error() -> None:
    with pytest.raises(msgspec.DecodeError):
        INTENT_DECODER.decode(b"place 1 MNQ")
