"""Auth against the simulator over HTTP: login, renewal, set/get token, 401, bad keys, expiry."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.integration.broker.conftest import MakeClient
from tests.integration.broker.helpers import (
    ACCOUNT,
    ACCOUNTS,
    API_KEY,
    CLOCKS,
    DAY,
    LOGIN,
    PLACE,
    USERNAME,
    VALIDATE,
    FakeClock,
    RecordingSleep,
    counts,
    renew,
    sent_since,
)
from worker.broker.auth import token_expiry
from worker.broker.client import GatewayClient
from worker.broker.errors import BrokerAuthError
from worker.broker.transport import CallStats
from worker.local.pytest_plugin import BrokerSim


async def test_login_gets_a_session_token(make_client: MakeClient, broker_sim: BrokerSim) -> None:
    gateway = make_client()
    assert gateway.get_token() is None
    assert gateway.auth.token_expires_at == 0.0
    before = counts(broker_sim)
    stats = CallStats()

    await gateway.auth.login(stats)

    token = gateway.get_token()
    assert token is not None
    assert token.count(".") == 2
    assert gateway.auth.logins == 1
    assert stats.attempts == 1
    assert sent_since(broker_sim, before, LOGIN) == 1
    assert broker_sim.stats()["logins"] == 1
    # The expiry is read from the token: the simulator's tokens live the gateway's 24 h.
    assert gateway.auth.token_expires_at == pytest.approx(time.time() + DAY, abs=5)


async def test_first_request_logs_in_by_itself(
    make_client: MakeClient, broker_sim: BrokerSim
) -> None:
    gateway = make_client()
    stats = CallStats()

    accounts = await gateway.search_accounts(stats=stats)

    assert accounts
    assert gateway.auth.logins == 1
    assert stats.attempts == 2  # the login, then the search
    assert gateway.get_token() is not None
    # Later requests reuse the token.
    await gateway.search_accounts()
    assert gateway.auth.logins == 1
    assert broker_sim.stats()["logins"] == 1


async def test_renew_token_swaps_in_a_fresh_token(
    client: GatewayClient, broker_sim: BrokerSim
) -> None:
    old = client.get_token()
    before = counts(broker_sim)

    await renew(client)

    assert client.get_token() not in (None, old)
    assert client.auth.logins == 1  # renewed by validate, not by a new login
    assert sent_since(broker_sim, before, VALIDATE) == 1
    assert sent_since(broker_sim, before, LOGIN) == 0
    assert broker_sim.stats()["validations"] == 1
    assert await client.search_accounts()


async def test_renew_token_without_a_token_logs_in(
    make_client: MakeClient, broker_sim: BrokerSim
) -> None:
    gateway = make_client()
    before = counts(broker_sim)

    await renew(gateway)

    assert gateway.get_token() is not None
    assert gateway.auth.logins == 1
    assert sent_since(broker_sim, before, VALIDATE) == 0


async def test_a_token_close_to_expiry_is_renewed_before_the_request(
    make_client: MakeClient, broker_sim: BrokerSim
) -> None:
    clock = FakeClock()
    gateway = make_client(clock=clock, renew_margin=3600.0)
    await gateway.auth.login()
    first = gateway.get_token()
    before = counts(broker_sim)

    await gateway.search_accounts()  # far from expiry: nothing extra
    assert sent_since(broker_sim, before, VALIDATE) == 0

    # 23.5 hours later (by the client's clock) the token is inside the renew margin.
    clock.offset = DAY - 1800
    stats = CallStats()
    await gateway.search_accounts(stats=stats)

    assert sent_since(broker_sim, before, VALIDATE) == 1
    assert stats.attempts == 2  # validate, then the search
    assert gateway.get_token() != first
    assert gateway.auth.logins == 1
    assert gateway.auth.token_expires_at == pytest.approx(time.time() + DAY, abs=5)


async def test_set_token_is_used_without_logging_in(
    client: GatewayClient, make_client: MakeClient, broker_sim: BrokerSim
) -> None:
    token = client.get_token()
    assert token is not None
    other = make_client()
    before = counts(broker_sim)

    other.set_token(token)

    assert other.get_token() == token
    assert other.auth.token_expires_at == token_expiry(token)
    stats = CallStats()
    assert await other.search_accounts(stats=stats)
    assert stats.attempts == 1
    assert other.auth.logins == 0
    assert sent_since(broker_sim, before, LOGIN) == 0


def test_set_token_takes_an_explicit_expiry(make_client: MakeClient) -> None:
    gateway = make_client()
    gateway.set_token("opaque-token-without-claims", expires_at=1_900_000_000.0)
    assert gateway.get_token() == "opaque-token-without-claims"
    assert gateway.auth.token_expires_at == 1_900_000_000.0
    # A token with no readable expiry gets the configured lifetime.
    gateway.set_token("another-opaque-token")
    assert gateway.auth.token_expires_at == pytest.approx(time.time() + DAY, abs=5)


async def test_401_means_one_relogin_and_one_retry(
    client: GatewayClient, broker_sim: BrokerSim, sleep: RecordingSleep
) -> None:
    client.set_token("bogus-token")
    before = counts(broker_sim)
    stats = CallStats()

    accounts = await client.search_accounts(stats=stats)

    assert accounts
    assert client.auth.logins == 2
    assert client.get_token() != "bogus-token"
    assert stats.attempts == 3  # the refused search, the login, the search again
    assert sent_since(broker_sim, before, ACCOUNTS) == 2
    assert sent_since(broker_sim, before, LOGIN) == 1
    assert sleep.waits == []  # no back-off: the refused request never ran


async def test_401_on_place_is_sent_again_once_and_places_one_order(
    client: GatewayClient, broker_sim: BrokerSim
) -> None:
    await client.contracts.resolve("MNQ")
    client.set_token("bogus-token")
    before = counts(broker_sim)

    order_id = await client.place_order(
        account_id=ACCOUNT, symbol="MNQ", side="BUY", quantity=1, custom_tag="after-401"
    )

    assert sent_since(broker_sim, before, PLACE) == 2
    placed = [o for o in broker_sim.orders() if o["customTag"] == "after-401"]
    assert [o["id"] for o in placed] == [order_id]
    assert client.auth.logins == 2


@pytest.mark.parametrize(
    ("username", "api_key"),
    [(USERNAME, "wrong-key"), ("someone-else", API_KEY)],
    ids=["wrong-key", "wrong-user"],
)
async def test_bad_credentials_raise_auth_error_after_one_attempt(
    make_client: MakeClient, auth_sim: BrokerSim, username: str, api_key: str
) -> None:
    gateway = make_client(auth_sim.url, username=username, api_key=api_key)
    before = counts(auth_sim)
    stats = CallStats()

    with pytest.raises(BrokerAuthError) as raised:
        await gateway.auth.login(stats)

    assert raised.value.code == "broker_auth_failed"
    assert raised.value.endpoint == LOGIN
    assert "gateway code 3" in raised.value.message  # InvalidCredentials
    assert stats.attempts == 1
    assert sent_since(auth_sim, before, LOGIN) == 1
    assert gateway.get_token() is None
    assert gateway.auth.logins == 0

    # A request that needs the login fails the same way, without being sent, and without
    # asking the broker again while the refusal is waited out (a wrong key must not cost
    # one login per intent).
    stats = CallStats()
    with pytest.raises(BrokerAuthError) as again:
        await gateway.search_accounts(stats=stats)
    assert stats.attempts == 0
    assert "the next login is tried in 1 s" in again.value.message
    assert sent_since(auth_sim, before, ACCOUNTS) == 0
    assert sent_since(auth_sim, before, LOGIN) == 1


async def test_a_refused_login_is_tried_again_less_and_less_often(
    make_client: MakeClient, auth_sim: BrokerSim
) -> None:
    gateway = make_client(auth_sim.url, api_key="wrong-key")
    clock = CLOCKS[gateway]
    before = counts(auth_sim)
    waits = []
    for _ in range(4):
        with pytest.raises(BrokerAuthError):
            await gateway.auth.login()
        with pytest.raises(BrokerAuthError) as held:
            await gateway.auth.login()  # inside the wait: not sent
        waits.append(held.value.message.split("tried in ")[1].split(" s")[0])
        clock.offset += 60  # past any wait
    assert sent_since(auth_sim, before, LOGIN) == 4
    assert waits == ["1", "2", "4", "8"]


async def test_right_credentials_log_in(make_client: MakeClient, auth_sim: BrokerSim) -> None:
    gateway = make_client(auth_sim.url)
    assert await gateway.search_accounts()
    assert gateway.auth.logins == 1


async def test_token_expired_at_the_broker_means_relogin_and_retry(
    make_client: MakeClient, short_ttl_sim: BrokerSim
) -> None:
    # The client's clock lags, so it believes the token is still good: the broker says 401.
    gateway = make_client(short_ttl_sim.url, clock=FakeClock(-3600), renew_margin=0.0)
    await gateway.auth.login()
    await asyncio.sleep(1.2)  # the token's real one-second lifetime runs out
    before = counts(short_ttl_sim)
    stats = CallStats()

    assert await gateway.search_accounts(stats=stats)

    assert gateway.auth.logins == 2
    assert stats.attempts == 3
    assert sent_since(short_ttl_sim, before, ACCOUNTS) == 2


async def test_token_past_its_expiry_is_replaced_before_the_request(
    make_client: MakeClient, short_ttl_sim: BrokerSim
) -> None:
    gateway = make_client(short_ttl_sim.url, renew_margin=0.0)
    await gateway.auth.login()
    expired = gateway.get_token()
    await asyncio.sleep(1.2)
    before = counts(short_ttl_sim)
    stats = CallStats()

    assert await gateway.search_accounts(stats=stats)

    # A token already past its expiry is not worth a validate: the client logs in afresh;
    # the search itself is sent once, with the new token.
    assert sent_since(short_ttl_sim, before, VALIDATE) == 0
    assert sent_since(short_ttl_sim, before, LOGIN) == 1
    assert sent_since(short_ttl_sim, before, ACCOUNTS) == 1
    assert stats.attempts == 2
    assert gateway.auth.logins == 2
    assert gateway.get_token() != expired


async def test_token_refused_right_after_a_fresh_login_raises_auth_error(
    make_client: MakeClient, dead_token_sim: BrokerSim, sleep: RecordingSleep
) -> None:
    gateway = make_client(dead_token_sim.url, renew_margin=0.0)
    before = counts(dead_token_sim)
    stats = CallStats()

    with pytest.raises(BrokerAuthError, match="refused again right after a fresh login"):
        await gateway.search_accounts(stats=stats)

    assert gateway.auth.logins == 2  # the first login, then exactly one re-login
    assert sent_since(dead_token_sim, before, ACCOUNTS) == 2  # never retried beyond that
    assert stats.attempts == 4
    assert sleep.waits == []


async def test_concurrent_first_requests_share_one_login(
    make_client: MakeClient, broker_sim: BrokerSim
) -> None:
    gateway = make_client()
    before = counts(broker_sim)

    results = await asyncio.gather(*(gateway.search_accounts() for _ in range(8)))

    assert all(results)
    assert gateway.auth.logins == 1
    assert sent_since(broker_sim, before, LOGIN) == 1
    assert sent_since(broker_sim, before, ACCOUNTS) == 8


async def test_concurrent_401s_share_one_relogin(
    client: GatewayClient, broker_sim: BrokerSim
) -> None:
    client.set_token("bogus-token")
    before = counts(broker_sim)

    results = await asyncio.gather(*(client.search_accounts() for _ in range(8)))

    assert all(results)
    assert client.auth.logins == 2  # the fixture's login and one re-login for all eight
    assert sent_since(broker_sim, before, LOGIN) == 1
    assert sent_since(broker_sim, before, ACCOUNTS) == 16  # each refused once, then sent again
