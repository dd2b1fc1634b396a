"""Answers the simulator never gives but a gateway might: a 400 problem body, a garbled
200, a success without its payload. Served over real HTTP by a scripted stub server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.integration.broker.conftest import MakeClient
from tests.integration.broker.helpers import (
    ACCOUNT,
    API_KEY,
    DEFAULT_WAITS,
    LOGIN,
    PLACE,
    RecordingSleep,
)
from worker.broker.client import GatewayClient
from worker.broker.errors import (
    BrokerAuthError,
    BrokerBadRequest,
    BrokerProtocolError,
    BrokerUnavailable,
)
from worker.broker.transport import CallStats


class Script:
    """What the stub answers, per path (a fresh response each time); requests are recorded."""

    def __init__(self) -> None:
        self.answers: dict[str, Callable[[], web.Response]] = {}
        self.hits: list[str] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.hits.append(request.path)
        answer = self.answers.get(request.path)
        if answer is None:
            return web.json_response({"success": True, "errorCode": 0, "errorMessage": None})
        return answer()


@pytest.fixture
async def stub() -> AsyncIterator[tuple[Script, str]]:
    script = Script()
    app = web.Application()
    app.router.add_post("/{tail:.*}", script.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield script, str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


def problem() -> web.Response:
    """ASP.NET's validation problem, echoing a request value (as ASP.NET can)."""
    body = {
        "type": "https://tools.ietf.org/html/rfc7231#section-6.5.1",
        "title": "One or more validation errors occurred.",
        "status": 400,
        "errors": {"$.apiKey": [f"The value '{API_KEY}' is not valid."]},
    }
    return web.Response(body=json.dumps(body), status=400, content_type="application/problem+json")


def ready_client(make_client: MakeClient, url: str) -> GatewayClient:
    gateway = make_client(url)
    gateway.set_token("stub-token")
    gateway.set_contract_id("MNQ", "CON.F.US.MNQ.Z25", tick_size=0.25, tick_value=0.5)
    return gateway


async def test_400_is_final_and_shows_only_the_problem_title(
    stub: tuple[Script, str], make_client: MakeClient, sleep: RecordingSleep
) -> None:
    script, url = stub
    script.answers[LOGIN] = problem
    gateway = make_client(url)
    stats = CallStats()

    with pytest.raises(BrokerBadRequest) as raised:
        await gateway.auth.login(stats)

    assert raised.value.status == 400
    assert "One or more validation errors occurred." in raised.value.message
    assert API_KEY not in str(raised.value)  # the echoed value is not repeated
    assert stats.attempts == 1
    assert sleep.waits == []


async def test_garbled_200_on_place_is_not_sent_again(
    stub: tuple[Script, str], make_client: MakeClient, sleep: RecordingSleep
) -> None:
    script, url = stub
    script.answers[PLACE] = lambda: web.Response(text="<html>proxy error</html>")
    gateway = ready_client(make_client, url)
    stats = CallStats()

    with pytest.raises(BrokerProtocolError) as raised:
        await gateway.place_order(
            account_id=ACCOUNT, symbol="MNQ", side="BUY", quantity=1, stats=stats
        )

    assert raised.value.sent is True
    assert isinstance(raised.value, BrokerUnavailable)
    assert stats.attempts == 1
    assert script.hits.count(PLACE) == 1
    assert sleep.waits == []


async def test_garbled_200_on_a_search_is_retried(
    stub: tuple[Script, str], make_client: MakeClient, sleep: RecordingSleep
) -> None:
    script, url = stub
    script.answers["/api/Order/searchOpen"] = lambda: web.Response(text="not json")
    gateway = ready_client(make_client, url)
    stats = CallStats()

    with pytest.raises(BrokerProtocolError):
        await gateway.search_open_orders(ACCOUNT, stats=stats)

    assert stats.attempts == 4
    assert sleep.waits == DEFAULT_WAITS


async def test_success_without_its_payload_is_a_protocol_error(
    stub: tuple[Script, str], make_client: MakeClient
) -> None:
    _, url = stub  # every path answers a bare success envelope
    gateway = make_client(url)
    with pytest.raises(BrokerProtocolError, match="without a token"):
        await gateway.auth.login()
    assert gateway.get_token() is None

    gateway = ready_client(make_client, url)
    stats = CallStats()
    with pytest.raises(BrokerProtocolError, match="without an orderId") as raised:
        await gateway.place_order(
            account_id=ACCOUNT, symbol="MNQ", side="BUY", quantity=1, stats=stats
        )
    assert raised.value.sent is True  # it may well exist: look it up by tag
    assert stats.attempts == 1


async def test_401_on_login_is_an_auth_error(
    stub: tuple[Script, str], make_client: MakeClient, sleep: RecordingSleep
) -> None:
    script, url = stub
    script.answers[LOGIN] = lambda: web.Response(status=401, headers={"WWW-Authenticate": "Bearer"})
    gateway = make_client(url)
    stats = CallStats()

    with pytest.raises(BrokerAuthError):
        await gateway.auth.login(stats)

    assert stats.attempts == 1
    assert sleep.waits == []
