"""The broker client's pure helpers: bracket signs, JWT expiry, timestamps."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from simulator.tokens import TokenStore
from worker.broker.auth import token_expiry
from worker.broker.client import iso, signed_brackets
from worker.broker.models import Bracket, OrderType


def test_long_brackets_stop_below_and_target_above() -> None:
    stop_loss, take_profit = signed_brackets("BUY", 10, 20)
    assert stop_loss == Bracket(ticks=-10, type=OrderType.STOP)
    assert take_profit == Bracket(ticks=20, type=OrderType.LIMIT)


def test_short_brackets_stop_above_and_target_below() -> None:
    stop_loss, take_profit = signed_brackets("SELL", 10, 20)
    assert stop_loss == Bracket(ticks=10, type=OrderType.STOP)
    assert take_profit == Bracket(ticks=-20, type=OrderType.LIMIT)


@pytest.mark.parametrize("side", ["BUY", "SELL"])
def test_absent_brackets_stay_absent(side: str) -> None:
    assert signed_brackets(side, None, None) == (None, None)
    stop_only = signed_brackets(side, 4, None)
    assert stop_only[1] is None
    assert stop_only[0] is not None
    assert abs(stop_only[0].ticks) == 4
    target_only = signed_brackets(side, None, 6)
    assert target_only[0] is None
    assert target_only[1] is not None
    assert abs(target_only[1].ticks) == 6


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(claims: object) -> str:
    return ".".join((_b64(b'{"alg":"HS256"}'), _b64(json.dumps(claims).encode()), _b64(b"sig")))


def test_token_expiry_reads_the_exp_claim() -> None:
    assert token_expiry(jwt({"sub": "u", "exp": 1_900_000_000})) == 1_900_000_000.0
    assert token_expiry(jwt({"exp": 1_900_000_000.5})) == 1_900_000_000.5


def test_token_expiry_of_a_simulator_token() -> None:
    token = TokenStore(ttl_s=3600).issue("demo", now=1_800_000_000.0)
    assert token_expiry(token) == 1_800_003_600.0


@pytest.mark.parametrize(
    "token",
    [
        "",
        "opaque-token",
        "a.b",
        "a.b.c.d",
        jwt({"sub": "no exp"}),
        jwt({"exp": "1900000000"}),
        jwt({"exp": True}),
        jwt({"exp": None}),
        jwt([1, 2, 3]),
        jwt(1_900_000_000),
        "header.!!!not-base64!!!.sig",
        f"header.{_b64(b'not json')}.sig",
        f"header.{_b64(bytes([0xFF, 0xFE, 0x00]))}.sig",
    ],
)
def test_token_expiry_is_none_when_unreadable(token: str) -> None:
    assert token_expiry(token) is None


def test_iso_is_utc_with_an_explicit_offset() -> None:
    moment = datetime(2025, 7, 18, 23, 0, 1, 268009, tzinfo=timezone(timedelta(hours=2)))
    assert iso(moment) == "2025-07-18T21:00:01.268009+00:00"
    assert iso(datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2025-01-02T03:04:05+00:00"
