"""History/retrieveBars over HTTP: bars of the prices the simulator saw, its errors and
its own rate limit. The app's clock is the test's, so bars fall where the test says."""

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from simulator.app import SIMULATOR
from simulator.faults import FaultConfig
from simulator.ratelimit import GATEWAY_LIMIT
from tests.integration.simulator.conftest import MakeClient
from tests.integration.simulator.helpers import CONFIG, MNQ, Client, bearer, call, login, order

BARS = "/api/History/retrieveBars"
T0 = datetime(2025, 11, 25, 14, 0, tzinfo=UTC)


class Clock:
    """The simulator's clock, moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def request(**fields: object) -> dict[str, object]:
    return {
        "contractId": MNQ,
        "live": False,
        "startTime": "2025-11-25T13:00:00Z",
        "endTime": "2025-11-25T15:00:00Z",
        "unit": 2,
        "unitNumber": 1,
        "limit": 100,
        "includePartialBar": False,
        **fields,
    }


def bar(t: str, o: float, h: float, low: float, c: float, v: int) -> dict[str, object]:
    return {"t": t, "o": o, "h": h, "l": low, "c": c, "v": v}


@pytest.fixture
def clock(client: Client) -> Clock:
    moved = Clock(T0)
    assert client.app is not None
    client.app[SIMULATOR].clock = moved
    return moved


async def trade_at(
    client: Client, clock: Clock, offset_s: float, price: float, volume: int
) -> None:
    clock.now = T0 + timedelta(seconds=offset_s)
    body = {"contractId": MNQ, "price": price, "volume": volume}
    assert (await client.post("/_sim/price", json=body)).status == 200


async def test_minute_bars_of_the_prices_seen_newest_first(
    client: Client, token: str, clock: Clock
) -> None:
    await trade_at(client, clock, 0, 21001, 3)
    await trade_at(client, clock, 20, 21004, 1)
    await trade_at(client, clock, 40, 20999, 2)
    await trade_at(client, clock, 75, 21002, 5)
    await trade_at(client, clock, 80, 21002, 0)
    assert (await call(client, "/api/Order/place", token, order(size=4)))["success"]
    await trade_at(client, clock, 130, 21010, 1)  # the 14:02 bar is still forming

    answer = await call(client, BARS, token, request())
    assert answer == {
        "bars": [
            # The fill of 4 at the ask (21002.25) counts like any other print.
            bar("2025-11-25T14:01:00+00:00", 21002, 21002.25, 21002, 21002.25, 9),
            bar("2025-11-25T14:00:00+00:00", 21001, 21004, 20999, 20999, 6),
        ],
        "success": True,
        "errorCode": 0,
        "errorMessage": None,
    }
    partial = await call(client, BARS, token, request(includePartialBar=True, limit=1))
    assert [(b["t"], b["c"]) for b in partial["bars"]] == [("2025-11-25T14:02:00+00:00", 21010)]
    hourly = await call(client, BARS, token, request(unit=3, includePartialBar=True))
    assert hourly["bars"] == [bar("2025-11-25T14:00:00+00:00", 21001, 21010, 20999, 21010, 16)]


async def test_bars_carry_the_gateways_decimals(client: Client, token: str, clock: Clock) -> None:
    await trade_at(client, clock, 0, 21001.5, 1)
    clock.now += timedelta(minutes=5)
    response = await client.post(BARS, json=request(), headers=bearer(token))
    assert '"o":21001.500000000' in await response.text()


async def test_a_window_without_prices_has_no_bars(client: Client, token: str) -> None:
    answer = await call(client, BARS, token, request())
    assert answer["bars"] == []


@pytest.mark.parametrize(
    ("fields", "code", "message"),
    [
        ({"contractId": "CON.F.US.NOPE.Z25"}, 1, "Contract not found"),
        ({"unit": 0}, 2, "Invalid unit (0)"),
        ({"unit": 7}, 2, "Invalid unit (7)"),
        ({"unitNumber": 0}, 3, "Invalid unit number (0)"),
        ({"limit": 0}, 4, "Invalid limit (0)"),
    ],
)
async def test_bad_requests_fail_in_band(
    client: Client, token: str, fields: dict[str, object], code: int, message: str
) -> None:
    answer = await call(client, BARS, token, request(**fields))
    assert answer == {"bars": None, "success": False, "errorCode": code, "errorMessage": message}


async def test_a_request_without_end_time_is_a_400(client: Client, token: str) -> None:
    # docs/gateway.md §1: a missing endTime "was absent, causing 400 validation errors".
    body: dict[str, Any] = request()
    del body["endTime"]
    response = await client.post(BARS, json=body, headers=bearer(token))
    assert response.status == 400


async def test_bars_have_their_own_rate_limit(make_client: MakeClient) -> None:
    client = await make_client(
        dataclasses.replace(CONFIG, faults=FaultConfig(rate_limit=GATEWAY_LIMIT))
    )
    token = await login(client)
    statuses = [
        (await client.post(BARS, json=request(), headers=bearer(token))).status for _ in range(51)
    ]
    assert statuses == [200] * 50 + [429]
    # The other endpoints' budget is untouched.
    search = await client.post(
        "/api/Account/search", json={"onlyActiveAccounts": True}, headers=bearer(token)
    )
    assert search.status == 200
