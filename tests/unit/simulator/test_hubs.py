"""The hubs' pure parts: method binding, the user-event envelope, the Publisher's checks."""

import msgspec
import pytest

from simulator.hubs import Envelopes, Hub, HubServer, Topic, bind, describe


class Order(msgspec.Struct, rename="camel"):
    id: int
    account_id: int


def test_user_hub_methods_bind_to_their_subscription() -> None:
    accounts = bind(Hub.USER, "SubscribeAccounts", [])
    assert isinstance(accounts, tuple)
    assert accounts[0].name == "SubscribeAccounts"
    assert accounts[1] == (Topic.ACCOUNTS, None)
    for name, topic in [
        ("SubscribeOrders", Topic.ORDERS),
        ("SubscribePositions", Topic.POSITIONS),
        ("SubscribeTrades", Topic.USER_TRADES),
    ]:
        bound = bind(Hub.USER, name, [12345678])
        assert isinstance(bound, tuple)
        method, key = bound
        assert method.subscribe
        assert key == (topic, 12345678)
        unbound = bind(Hub.USER, "Un" + name.lower(), [12345678])  # case-insensitive
        assert isinstance(unbound, tuple)
        assert not unbound[0].subscribe
        assert unbound[1] == key


def test_market_hub_methods_take_a_contract_id() -> None:
    for name, topic in [
        ("SubscribeContractQuotes", Topic.QUOTES),
        ("SubscribeContractTrades", Topic.MARKET_TRADES),
        ("SubscribeContractMarketDepth", Topic.DEPTH),
        ("UnsubscribeContractQuotes", Topic.QUOTES),
    ]:
        bound = bind(Hub.MARKET, name, ["CON.F.US.MNQ.Z25"])
        assert isinstance(bound, tuple)
        assert bound[1] == (topic, "CON.F.US.MNQ.Z25")


def test_each_hub_knows_only_its_own_methods() -> None:
    assert bind(Hub.MARKET, "SubscribeOrders", [1]) == (
        "Failed to invoke 'SubscribeOrders' due to an error on the server. "
        "HubException: Method does not exist."
    )
    assert isinstance(bind(Hub.USER, "SubscribeContractQuotes", ["C"]), str)


@pytest.mark.parametrize(
    ("hub", "target", "arguments"),
    [
        (Hub.USER, "SubscribeOrders", []),
        (Hub.USER, "SubscribeOrders", [1, 2]),
        (Hub.USER, "SubscribeOrders", ["12345678"]),
        (Hub.USER, "SubscribeOrders", [1.0]),
        (Hub.USER, "SubscribeOrders", [True]),
        (Hub.USER, "SubscribeAccounts", [1]),
        (Hub.MARKET, "SubscribeContractQuotes", [5]),
    ],
)
def test_wrong_arguments_fail_binding(hub: Hub, target: str, arguments: list[object]) -> None:
    assert bind(hub, target, arguments) == (
        f"Failed to invoke '{target}' due to an error on the server."
    )


def test_subscriptions_are_described_for_introspection() -> None:
    assert describe((Topic.ACCOUNTS, None)) == "accounts"
    assert describe((Topic.ORDERS, 7)) == "orders:7"
    assert describe((Topic.DEPTH, "C")) == "depth:C"


def test_bare_user_events_are_the_payload_itself() -> None:
    envelopes = Envelopes()
    payload = Order(5, 7)
    assert envelopes.arguments("none", "GatewayUserOrder", payload) == [payload]
    assert envelopes.arguments("orders", "GatewayUserPosition", payload) == [payload]


def test_wrapped_events_number_a_new_entity_0_then_1() -> None:
    envelopes = Envelopes()
    first = Order(5, 7)
    assert envelopes.arguments("orders", "GatewayUserOrder", first) == [
        {"action": 0, "data": first}
    ]
    assert envelopes.arguments("all", "GatewayUserOrder", first) == [{"action": 1, "data": first}]
    # Another target's entity with the same ID is new to that target.
    assert envelopes.arguments("all", "GatewayUserTrade", {"id": 5}) == [
        {"action": 0, "data": {"id": 5}}
    ]
    assert envelopes.arguments("all", "GatewayUserAccount", {"name": "x"}) == [
        {"action": 1, "data": {"name": "x"}}
    ]


def test_publishing_an_unknown_target_is_a_programming_error() -> None:
    server = HubServer()
    with pytest.raises(ValueError, match="GatewayUserOrders"):
        server.user(1, "GatewayUserOrders", {})
    with pytest.raises(ValueError, match="GatewayUserOrder"):
        server.market("C", "GatewayUserOrder", {})
    # With nobody connected a publish is counted and goes nowhere.
    server.user(1, "GatewayUserOrder", {"id": 1})
    server.market("C", "GatewayQuote", {})
    assert server.stats.published == 2
    assert server.stats.delivered == 0
