"""Every error path over real HTTP: what is retried, how often, after which waits, and what
the caller is told about whether the request may have reached the broker."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.integration.broker.conftest import MakeClient
from tests.integration.broker.helpers import (
    ACCOUNT,
    ACCOUNTS,
    CANCEL,
    CANCELLED,
    CONTRACT_BY_ID,
    CONTRACT_SEARCH,
    DEFAULT_WAITS,
    FILLED,
    LOGIN,
    MODIFY,
    OTHER_ACCOUNT,
    PLACE,
    SEARCH,
    SEARCH_OPEN,
    UNKNOWN_ACCOUNT,
    RecordingSleep,
    an_hour_ago,
    counts,
    in_thread,
    renew,
    sent_since,
    sim_order,
)
from worker.broker.client import GatewayClient
from worker.broker.errors import (
    BrokerBadRequest,
    BrokerRateLimited,
    BrokerRejected,
    BrokerUnavailable,
)
from worker.broker.retry import RetryPolicy
from worker.broker.transport import CallStats
from worker.local.pytest_plugin import BrokerSim
from worker.local.stack import free_port

PRICE = 20000.0
Call = Callable[[GatewayClient, CallStats], Awaitable[Any]]


async def resting_limit(client: GatewayClient, tag: str | None = None) -> int:
    """A working BUY limit order on MNQ, far below the market."""
    return await client.place_order(
        account_id=ACCOUNT,
        symbol="MNQ",
        side="BUY",
        quantity=1,
        order_type="limit",
        limit_price=PRICE,
        custom_tag=tag,
    )


async def market(client: GatewayClient, stats: CallStats, **fields: Any) -> int:
    """A 1-lot MNQ market BUY on ACCOUNT unless overridden."""
    order: dict[str, Any] = {"account_id": ACCOUNT, "symbol": "MNQ", "side": "BUY", "quantity": 1}
    order.update(fields)
    return await client.place_order(stats=stats, **order)


# --- business rejections: HTTP 200, success false ------------------------------------------


async def test_place_on_an_unknown_account_is_rejected_once(
    client: GatewayClient, broker_sim: BrokerSim, sleep: RecordingSleep
) -> None:
    await client.contracts.resolve("MNQ")
    before = counts(broker_sim)
    stats = CallStats()

    with pytest.raises(BrokerRejected) as raised:
        await market(client, stats, account_id=UNKNOWN_ACCOUNT)

    assert raised.value.broker_code == 1  # AccountNotFound
    assert raised.value.endpoint == PLACE
    assert raised.value.code == "broker_rejected"
    assert "Account not found" in raised.value.message
    assert stats.attempts == 1
    assert sent_since(broker_sim, before) == 1
    assert sleep.waits == []


async def test_duplicate_tag_is_rejected_once_with_the_gateway_code(
    client: GatewayClient, broker_sim: BrokerSim, sleep: RecordingSleep
) -> None:
    await market(client, CallStats(), custom_tag="only-once")
    before = counts(broker_sim)
    stats = CallStats()

    with pytest.raises(BrokerRejected) as raised:
        await market(client, stats, custom_tag="only-once")

    assert raised.value.broker_code == 2
    assert raised.value.broker_message == "Specified custom tag is already in use"
    assert stats.attempts == 1
    assert sent_since(broker_sim, before, PLACE) == 1
    assert [o["customTag"] for o in broker_sim.orders()] == ["only-once"]
    assert sleep.waits == []


async def _modify_unknown(client: GatewayClient, stats: CallStats) -> None:
    await client.modify_order(account_id=ACCOUNT, order_id=10**9, quantity=2, stats=stats)


async def _cancel_unknown(client: GatewayClient, stats: CallStats) -> None:
    await client.cancel_order(account_id=ACCOUNT, order_id=10**9, stats=stats)


async def _cancel_twice(client: GatewayClient, stats: CallStats) -> None:
    order_id = await resting_limit(client)
    await client.cancel_order(account_id=ACCOUNT, order_id=order_id)
    await client.cancel_order(account_id=ACCOUNT, order_id=order_id, stats=stats)


async def _modify_filled(client: GatewayClient, stats: CallStats) -> None:
    order_id = await market(client, CallStats())
    await client.modify_order(account_id=ACCOUNT, order_id=order_id, quantity=2, stats=stats)


async def _modify_other_accounts_order(client: GatewayClient, stats: CallStats) -> None:
    order_id = await resting_limit(client)
    await client.modify_order(account_id=OTHER_ACCOUNT, order_id=order_id, quantity=2, stats=stats)


async def _search_unknown_account(client: GatewayClient, stats: CallStats) -> None:
    await client.search_orders(UNKNOWN_ACCOUNT, an_hour_ago(), stats=stats)


async def _search_open_unknown_account(client: GatewayClient, stats: CallStats) -> None:
    await client.search_open_orders(UNKNOWN_ACCOUNT, stats=stats)


async def _unknown_contract_id(client: GatewayClient, stats: CallStats) -> None:
    await client.contracts.by_id("CON.F.US.XXX.Z99", stats=stats)


@pytest.mark.parametrize(
    ("call", "endpoint", "broker_code", "text"),
    [
        (_modify_unknown, MODIFY, 2, "Order not found"),
        (_cancel_unknown, CANCEL, 2, "Order not found"),
        (_cancel_twice, CANCEL, 3, "already cancelled"),
        (_modify_filled, MODIFY, 3, "not open"),
        (_modify_other_accounts_order, MODIFY, 1, "does not belong"),
        (_search_unknown_account, SEARCH, 1, "Account not found"),
        (_search_open_unknown_account, SEARCH_OPEN, 1, "Account not found"),
        (_unknown_contract_id, CONTRACT_BY_ID, 1, "Contract not found"),
    ],
    ids=lambda value: getattr(value, "__name__", None),
)
async def test_business_rejections_are_final_after_one_attempt(
    client: GatewayClient,
    broker_sim: BrokerSim,
    sleep: RecordingSleep,
    call: Call,
    endpoint: str,
    broker_code: int,
    text: str,
) -> None:
    await client.contracts.resolve("MNQ")
    stats = CallStats()

    with pytest.raises(BrokerRejected) as raised:
        await call(client, stats)

    assert (raised.value.endpoint, raised.value.broker_code) == (endpoint, broker_code)
    assert text in (raised.value.broker_message or "")
    assert text in str(raised.value)
    assert stats.attempts == 1
    assert sleep.waits == []


# --- HTTP 5xx ------------------------------------------------------------------------------


async def _search_accounts(client: GatewayClient, stats: CallStats) -> None:
    await client.search_accounts(stats=stats)


async def _search_contracts(client: GatewayClient, stats: CallStats) -> None:
    await client.contracts.search("MNQ", stats=stats)


async def _contract_by_id(client: GatewayClient, stats: CallStats) -> None:
    await client.contracts.by_id("CON.F.US.MNQ.Z25", stats=stats)


async def _search_orders(client: GatewayClient, stats: CallStats) -> None:
    await client.search_orders(ACCOUNT, an_hour_ago(), stats=stats)


async def _search_open(client: GatewayClient, stats: CallStats) -> None:
    await client.search_open_orders(ACCOUNT, stats=stats)


async def _modify(client: GatewayClient, stats: CallStats) -> None:
    await client.modify_order(account_id=ACCOUNT, order_id=10**9, quantity=2, stats=stats)


async def _cancel(client: GatewayClient, stats: CallStats) -> None:
    await client.cancel_order(account_id=ACCOUNT, order_id=10**9, stats=stats)


async def _renew(client: GatewayClient, stats: CallStats) -> None:
    await renew(client, stats)


@pytest.mark.parametrize(
    ("call", "endpoint"),
    [
        (_search_accounts, ACCOUNTS),
        (_search_contracts, CONTRACT_SEARCH),
        (_contract_by_id, CONTRACT_BY_ID),
        (_search_orders, SEARCH),
        (_search_open, SEARCH_OPEN),
        (_modify, MODIFY),
        (_cancel, CANCEL),
        (_renew, "/api/Auth/validate"),
    ],
    ids=lambda value: getattr(value, "__name__", None),
)
async def test_5xx_on_a_request_safe_to_repeat_is_retried_on_schedule(
    client: GatewayClient, broker_sim: BrokerSim, sleep: RecordingSleep, call: Call, endpoint: str
) -> None:
    broker_sim.faults(error_rate=1.0, endpoints=[endpoint])
    before = counts(broker_sim)
    stats = CallStats()

    with pytest.raises(BrokerUnavailable) as raised:
        await call(client, stats)

    assert raised.value.sent is True
    assert raised.value.endpoint == endpoint
    assert "HTTP 500" in raised.value.message
    assert stats.attempts == 4
    assert sleep.waits == DEFAULT_WAITS
    assert sent_since(broker_sim, before, endpoint) == 4
    assert broker_sim.stats()["errors_injected"] == 4


async def test_5xx_then_recovery_succeeds_on_the_next_attempt(
    client: GatewayClient, make_client: MakeClient, broker_sim: BrokerSim
) -> None:
    async def heal(_: float) -> None:
        await in_thread(broker_sim.faults, error_rate=0.0)

    healing = RecordingSleep(heal)
    gateway = make_client(sleep=healing)
    token = client.get_token()
    assert token is not None
    gateway.set_token(token)
    broker_sim.faults(error_rate=1.0, endpoints=[ACCOUNTS])
    stats = CallStats()

    assert await gateway.search_accounts(stats=stats)

    assert stats.attempts == 2
    assert healing.waits == [0.75]


async def test_5xx_on_place_is_not_sent_again(
    client: GatewayClient, broker_sim: BrokerSim, sleep: RecordingSleep
) -> None:
    await client.contracts.resolve("MNQ")
    broker_sim.faults(error_rate=1.0, endpoints=[PLACE])
    before = counts(broker_sim)
    stats = CallStats()

    with pytest.raises(BrokerUnavailable) as raised:
        await market(client, stats, custom_tag="five-hundred")

    assert raised.value.sent is True  # the caller must look it up by tag before resending
    assert stats.attempts == 1
    assert sleep.waits == []
    assert sent_since(broker_sim, before, PLACE) == 1
    assert broker_sim.orders() == []  # this simulator's 500 had no effect


async def test_commit_then_fail_on_place_leaves_the_order_and_says_sent(
    client: GatewayClient, broker_sim: BrokerSim, sleep: RecordingSleep
) -> None:
    await client.contracts.resolve("MNQ")
    broker_sim.faults(commit_then_fail_rate=1.0, endpoints=[PLACE])
    failures: set[str] = set()
    tags: list[str] = []

    # Half answer 500 after the order is made, half drop the connection: see both.
    for i in range(24):
        tag = f"committed-{i}"
        stats = CallStats()
        with pytest.raises(BrokerUnavailable) as raised:
            await market(client, stats, custom_tag=tag)
        assert raised.value.sent is True
        assert stats.attempts == 1
        tags.append(tag)
        failures.add("500" if "HTTP 500" in raised.value.message else "dropped")
        if failures == {"500", "dropped"}:
            break

    assert failures == {"500", "dropped"}
    assert sleep.waits == []
    broker_sim.faults(commit_then_fail_rate=0.0)
    orders = broker_sim.orders()
    assert [o["customTag"] for o in orders] == tags
    assert {o["status"] for o in orders} == {FILLED}
    # What the executor does next: find each one by its tag.
    for tag in tags:
        found = await client.find_order(ACCOUNT, custom_tag=tag, since=an_hour_ago())
        assert found is not None
        assert found.status == FILLED


async def test_commit_then_fail_on_cancel_is_retried_and_the_repeat_is_refused(
    client: GatewayClient, make_client: MakeClient, broker_sim: BrokerSim
) -> None:
    order_id = await resting_limit(client)

    async def heal(_: float) -> None:
        await in_thread(broker_sim.faults, commit_then_fail_rate=0.0)

    healing = RecordingSleep(heal)
    gateway = make_client(sleep=healing)
    token = client.get_token()
    assert token is not None
    gateway.set_token(token)
    broker_sim.faults(commit_then_fail_rate=1.0, endpoints=[CANCEL])
    stats = CallStats()

    # The first cancel took effect; the repeat is refused as already cancelled (the
    # executor turns that into a success), never a second effect.
    with pytest.raises(BrokerRejected) as raised:
        await gateway.cancel_order(account_id=ACCOUNT, order_id=order_id, stats=stats)

    assert raised.value.broker_code == 3
    assert stats.attempts == 2
    assert healing.waits == [0.75]
    assert sim_order(broker_sim, order_id)["status"] == CANCELLED


async def test_commit_then_fail_on_modify_is_retried_to_the_same_values(
    client: GatewayClient, make_client: MakeClient, broker_sim: BrokerSim
) -> None:
    order_id = await resting_limit(client)

    async def heal(_: float) -> None:
        await in_thread(broker_sim.faults, commit_then_fail_rate=0.0)

    healing = RecordingSleep(heal)
    gateway = make_client(sleep=healing)
    token = client.get_token()
    assert token is not None
    gateway.set_token(token)
    broker_sim.faults(commit_then_fail_rate=1.0, endpoints=[MODIFY])
    stats = CallStats()

    await gateway.modify_order(
        account_id=ACCOUNT, order_id=order_id, quantity=4, limit_price=PRICE - 1, stats=stats
    )

    assert stats.attempts == 2
    order = sim_order(broker_sim, order_id)
    assert (order["size"], order["limitPrice"]) == (4, PRICE - 1)


# --- connection refused ----------------------------------------------------------------------


async def test_connection_refused_is_retried_even_for_place(
    make_client: MakeClient, sleep: RecordingSleep
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    gateway = make_client(nowhere)
    gateway.set_token("a-token-nobody-will-see")
    gateway.set_contract_id("MNQ", "CON.F.US.MNQ.Z25", tick_size=0.25, tick_value=0.5)
    stats = CallStats()

    with pytest.raises(BrokerUnavailable) as raised:
        await market(gateway, stats)

    # The connection never opened: provably not sent, so sending again was safe.
    assert raised.value.sent is False
    assert raised.value.endpoint == PLACE
    assert "cannot connect" in raised.value.message
    assert stats.attempts == 4
    assert sleep.waits == DEFAULT_WAITS


async def test_connection_refused_on_login(make_client: MakeClient, sleep: RecordingSleep) -> None:
    gateway = make_client(f"http://127.0.0.1:{free_port()}")
    stats = CallStats()

    with pytest.raises(BrokerUnavailable) as raised:
        await gateway.auth.login(stats)

    assert (raised.value.sent, raised.value.endpoint) == (False, LOGIN)
    assert stats.attempts == 4
    assert sleep.waits == DEFAULT_WAITS
    assert gateway.auth.logins == 0


# --- timeouts ----------------------------------------------------------------------------------

STALL_S = 0.4


async def test_timeout_on_place_is_not_resent_but_it_may_have_taken_effect(
    client: GatewayClient, make_client: MakeClient, broker_sim: BrokerSim, sleep: RecordingSleep
) -> None:
    impatient = make_client(request_timeout=0.15)
    impatient.set_token(client.get_token() or "")
    await impatient.contracts.resolve("MNQ")
    broker_sim.faults(stall_rate=1.0, stall_ms=STALL_S * 1000, endpoints=[PLACE])
    stats = CallStats()

    with pytest.raises(BrokerUnavailable) as raised:
        await market(impatient, stats, custom_tag="too-slow")

    assert raised.value.sent is True
    assert "may have taken effect" in raised.value.message
    assert stats.attempts == 1
    assert sleep.waits == []
    # It did: the broker processed it after the client gave up.
    await asyncio.sleep(STALL_S + 0.2)
    assert [o["customTag"] for o in broker_sim.orders()] == ["too-slow"]


async def test_timeout_on_a_search_is_retried(
    client: GatewayClient, make_client: MakeClient, broker_sim: BrokerSim, sleep: RecordingSleep
) -> None:
    impatient = make_client(request_timeout=0.1)
    impatient.set_token(client.get_token() or "")
    broker_sim.faults(stall_rate=1.0, stall_ms=STALL_S * 1000, endpoints=[SEARCH_OPEN])
    before = counts(broker_sim)
    stats = CallStats()

    with pytest.raises(BrokerUnavailable) as raised:
        await impatient.search_open_orders(ACCOUNT, stats=stats)

    assert raised.value.sent is True
    assert stats.attempts == 4
    assert sleep.waits == DEFAULT_WAITS
    assert sent_since(broker_sim, before, SEARCH_OPEN) == 4
    assert stats.broker_ms >= 4 * 100 * 0.9  # each attempt waited its whole timeout
    await asyncio.sleep(STALL_S)  # let the stalled requests finish before the reset


# --- HTTP 429 ----------------------------------------------------------------------------------


@pytest.fixture
def rate_limited(make_client: MakeClient, rate_sim: BrokerSim) -> Callable[..., GatewayClient]:
    """A client of ``rate_sim`` under a user name of its own, so it has a fresh budget."""

    def make(sim: BrokerSim = rate_sim, **options: Any) -> GatewayClient:
        return make_client(sim.url, username=f"user-{uuid.uuid4().hex[:12]}", **options)

    return make


async def spend_budget(gateway: GatewayClient) -> None:
    """Use up the 3-request budget: the login and two searches."""
    await gateway.auth.login()
    await gateway.contracts.resolve("MNQ")
    await gateway.search_accounts()


async def test_429_backs_off_on_schedule_then_gives_up(
    rate_limited: Callable[..., GatewayClient], rate_sim: BrokerSim, sleep: RecordingSleep
) -> None:
    gateway = rate_limited()
    await spend_budget(gateway)
    before = counts(rate_sim)
    limited_before = rate_sim.stats()["rate_limited"]
    orders_before = len(rate_sim.orders())
    stats = CallStats()

    # A 429 was refused before it ran, so even a place is sent again.
    with pytest.raises(BrokerRateLimited) as raised:
        await market(gateway, stats)

    assert raised.value.retry_after is None  # like the gateway, no Retry-After
    assert raised.value.endpoint == PLACE
    assert stats.attempts == 4
    assert sleep.waits == DEFAULT_WAITS
    assert sent_since(rate_sim, before, PLACE) == 4
    assert rate_sim.stats()["rate_limited"] - limited_before == 4
    assert len(rate_sim.orders()) == orders_before


async def test_429_honours_retry_after(
    rate_limited: Callable[..., GatewayClient], retry_after_sim: BrokerSim, sleep: RecordingSleep
) -> None:
    gateway = rate_limited(retry_after_sim)
    await spend_budget(gateway)
    stats = CallStats()

    with pytest.raises(BrokerRateLimited) as raised:
        await gateway.search_open_orders(ACCOUNT, stats=stats)

    assert raised.value.retry_after == 2.0
    assert "retry after 2 s" in raised.value.message
    assert stats.attempts == 4
    assert sleep.waits == [2.0, 2.0, 3.0]  # the schedule, but never less than Retry-After
    assert all(wait >= 2.0 for wait in sleep.waits)


async def test_429_then_room_again_places_exactly_one_order(
    rate_limited: Callable[..., GatewayClient], rate_sim: BrokerSim
) -> None:
    async def lift(_: float) -> None:
        await in_thread(rate_sim.faults, rate_limit=None)

    lifting = RecordingSleep(lift)
    gateway = rate_limited(sleep=lifting)
    await spend_budget(gateway)
    stats = CallStats()
    try:
        order_id = await market(gateway, stats, custom_tag=f"after-429-{uuid.uuid4().hex[:8]}")
    finally:
        await in_thread(rate_sim.reset)  # back to the 3/60 budget

    assert stats.attempts == 2
    assert lifting.waits == [0.75]
    assert order_id > 0


# --- other 4xx -----------------------------------------------------------------------------------


async def test_4xx_is_final_after_one_attempt(
    make_client: MakeClient, broker_sim: BrokerSim, sleep: RecordingSleep
) -> None:
    gateway = make_client(broker_sim.url + "/no-such-prefix")  # every path answers 404
    stats = CallStats()

    with pytest.raises(BrokerBadRequest) as raised:
        await gateway.auth.login(stats)

    assert raised.value.status == 404
    assert raised.value.endpoint == LOGIN
    assert stats.attempts == 1

    gateway.set_token("a-token")
    gateway.set_contract_id("MNQ", "CON.F.US.MNQ.Z25", tick_size=0.25)
    stats = CallStats()
    with pytest.raises(BrokerBadRequest):
        await market(gateway, stats)
    assert stats.attempts == 1
    assert sleep.waits == []


# --- deadlines ---------------------------------------------------------------------------------


@pytest.mark.parametrize("failing", [LOGIN, CONTRACT_SEARCH])
async def test_no_order_reaches_the_broker_after_its_deadline(
    make_client: MakeClient, broker_sim: BrokerSim, failing: str
) -> None:
    """The look-ups a place needs first (login, contract) stop retrying at its deadline too.

    The broker recovers only after the deadline; a place sent then would be an order the
    strategy had already given up on.
    """
    deadline = time.monotonic() + 0.25

    async def wait_for_real(seconds: float) -> None:
        await asyncio.sleep(seconds)
        if time.monotonic() > deadline:
            await in_thread(broker_sim.faults, error_rate=0.0)

    waits = RecordingSleep(wait_for_real)
    # The first retry fits before the deadline, the second (0.4 s) would end after it.
    gateway = make_client(sleep=waits, retry=RetryPolicy((0.05, 0.4, 0.8)))
    broker_sim.faults(error_rate=1.0, endpoints=[failing])
    before = counts(broker_sim)

    with pytest.raises(BrokerUnavailable) as raised:
        await market(gateway, CallStats(), deadline=deadline, custom_tag="too-late")

    # Reported as the place, provably not sent, with the step that failed in the message.
    assert raised.value.endpoint == PLACE
    assert raised.value.sent is False
    assert failing in raised.value.message
    assert time.monotonic() < deadline + 0.5
    assert sent_since(broker_sim, before, PLACE) == 0
    assert broker_sim.orders() == []
    assert 0.4 not in waits.waits
