"""The API key and session tokens never show: not in any log line (every logger, DEBUG),
not in an exception's text or traceback, not in the repr of the client or its requests."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Awaitable, Iterator

import pytest

from tests.integration.broker.conftest import MakeClient
from tests.integration.broker.helpers import (
    ACCOUNT,
    API_KEY,
    SEARCH_OPEN,
    UNKNOWN_ACCOUNT,
    USERNAME,
    renew,
)
from worker.broker.client import GatewayClient
from worker.broker.errors import (
    BrokerAuthError,
    BrokerBadRequest,
    BrokerRejected,
    BrokerUnavailable,
)
from worker.broker.models import (
    LoginKeyRequest,
    LoginResponse,
    PlaceOrderRequest,
    ValidateResponse,
)
from worker.local.pytest_plugin import BrokerSim
from worker.local.stack import free_port

WRONG_KEY = "sk-wrong-API-KEY-a9b8c7d6e5"
BOGUS_TOKEN = "bogus.session-token.Zq81xVv0"  # noqa: S105 (a fake, to detect leaks)
log = logging.getLogger("tests.secrets")


def chain(error: BaseException) -> Iterator[BaseException]:
    """An exception and every exception it was raised from or during."""
    seen: set[int] = set()
    todo: list[BaseException] = [error]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo.extend(e for e in (current.__cause__, current.__context__) if e is not None)


class Failures:
    """Runs calls that must fail, keeps their exceptions and logs them as a worker would."""

    def __init__(self) -> None:
        self.errors: list[BaseException] = []

    async def expect(self, kind: type[Exception], call: Awaitable[object]) -> None:
        with pytest.raises(kind) as raised:
            await call
        error = raised.value
        self.errors.append(error)
        log.warning("broker call failed: %s", error)
        log.error("broker call failed: %r", error, exc_info=error)


async def test_no_secret_in_logs_exceptions_or_reprs(
    caplog: pytest.LogCaptureFixture,
    make_client: MakeClient,
    broker_sim: BrokerSim,
    auth_sim: BrokerSim,
) -> None:
    caplog.set_level(logging.DEBUG)  # the root logger: every library's records reach it
    for name in ("aiohttp", "aiohttp.client", "aiohttp.internal", "asyncio", "tenacity"):
        caplog.set_level(logging.DEBUG, logger=name)
    failures = Failures()
    tokens: set[str] = set()

    def keep_token(gateway: GatewayClient) -> None:
        token = gateway.get_token()
        assert token is not None
        tokens.add(token)

    gateway = make_client()
    log.debug("client %r", gateway)
    await gateway.auth.login()
    keep_token(gateway)
    # A 401 and the re-login that follows.
    gateway.set_token(BOGUS_TOKEN)
    await gateway.search_accounts()
    keep_token(gateway)
    await renew(gateway)
    keep_token(gateway)
    # A rejected order, and an order refused before sending.
    await failures.expect(
        BrokerRejected,
        gateway.place_order(account_id=UNKNOWN_ACCOUNT, symbol="MNQ", side="BUY", quantity=1),
    )
    await failures.expect(
        Exception,
        gateway.place_order(account_id=ACCOUNT, symbol="MNQ", side="BUY", quantity=0),
    )
    # 5xx, retried and given up.
    broker_sim.faults(error_rate=1.0, endpoints=[SEARCH_OPEN])
    await failures.expect(BrokerUnavailable, gateway.search_open_orders(ACCOUNT))
    broker_sim.faults(error_rate=0.0, endpoints=None)
    # A dropped connection after the broker acted.
    broker_sim.faults(commit_then_fail_rate=1.0)
    for i in range(4):
        await failures.expect(
            BrokerUnavailable,
            gateway.place_order(
                account_id=ACCOUNT, symbol="MNQ", side="BUY", quantity=1, custom_tag=f"s{i}"
            ),
        )
    broker_sim.faults(commit_then_fail_rate=0.0)
    # A broker nobody answers for: with a token, and logging in.
    nowhere = f"http://127.0.0.1:{free_port()}"
    dead = make_client(nowhere)
    dead.set_token(next(iter(tokens)))
    await failures.expect(BrokerUnavailable, dead.search_accounts())
    await failures.expect(BrokerUnavailable, make_client(nowhere).auth.login())
    # A key the broker refuses, and an HTTP 4xx.
    wrong = make_client(auth_sim.url, api_key=WRONG_KEY)
    await failures.expect(BrokerAuthError, wrong.search_accounts())
    await failures.expect(BrokerBadRequest, make_client(broker_sim.url + "/nope").auth.login())

    assert len(tokens) == 3
    secrets = {API_KEY, WRONG_KEY, BOGUS_TOKEN, *tokens}
    texts = [caplog.text]
    for record in caplog.records:
        texts += [record.getMessage(), repr(record.args), record.exc_text or ""]
    for error in failures.errors:
        texts.append("".join(traceback.format_exception(error)))
        for linked in chain(error):
            texts += [str(linked), repr(linked), repr(linked.args)]
    token = next(iter(tokens))
    texts += [
        repr(gateway),
        str(gateway),
        repr(wrong),
        repr(LoginKeyRequest(user_name=USERNAME, api_key=API_KEY)),
        str(LoginKeyRequest(user_name=USERNAME, api_key=API_KEY)),
        repr(LoginResponse(success=True, token=token)),
        repr(ValidateResponse(success=True, new_token=token)),
        repr(PlaceOrderRequest(account_id=ACCOUNT, contract_id="C", type=2, side=0, size=1)),
    ]

    assert len(failures.errors) == 11
    assert any("broker call failed" in text for text in texts)  # the logs were captured
    for secret in secrets:
        leaks = [text for text in texts if secret in text]
        assert leaks == [], f"a secret leaked into {len(leaks)} text(s)"
