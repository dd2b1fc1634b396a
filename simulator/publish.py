"""Where the venue's changes go: the real-time hubs, or nowhere.

The book and the market are pure and synchronous; after each change they hand a payload
to a ``Publisher``. The hub server (``simulator/hubs.py``) is one: it pushes the payload
to every connection subscribed to that account or contract. Tests of the book use
``NoPublisher`` or a recording one.

``target`` is the SignalR method name the gateway's hubs invoke on their clients
(``GatewayUserOrder``, ``GatewayUserPosition``, ``GatewayUserTrade``,
``GatewayUserAccount`` on the user hub; ``GatewayQuote``, ``GatewayTrade``,
``GatewayDepth`` on the market hub); ``payload`` is any msgspec-encodable value, the
gateway's JSON for that event.
"""

from collections.abc import Sequence
from typing import Protocol


class Publisher(Protocol):
    """Receives every change the venue makes, as the hubs would push it."""

    def user(self, account_id: int, target: str, payload: object) -> None:
        """An account's order, position, trade or balance changed."""

    def market(self, contract_id: str, target: str, payload: object) -> None:
        """A contract's quote, last trade or depth changed."""


class NoPublisher:
    """Drops every change (no hub is listening)."""

    def user(self, account_id: int, target: str, payload: object) -> None:
        """Nothing to do."""

    def market(self, contract_id: str, target: str, payload: object) -> None:
        """Nothing to do."""


class Fanout:
    """Hands every change to each of several publishers, in order."""

    def __init__(self, publishers: Sequence[Publisher]) -> None:
        self._publishers = tuple(publishers)

    def user(self, account_id: int, target: str, payload: object) -> None:
        """Pass an account's change to every publisher."""
        for publisher in self._publishers:
            publisher.user(account_id, target, payload)

    def market(self, contract_id: str, target: str, payload: object) -> None:
        """Pass a contract's change to every publisher."""
        for publisher in self._publishers:
            publisher.market(contract_id, target, payload)
