"""A hub connection follows the broker's token: renewed when the token changed, not when
it did not, and a failed renewal leaves the connection as it is."""

from __future__ import annotations

from typing import Any, cast

from worker.broker.errors import BrokerUnavailable
from worker.hubs.connection import HubConnection, TokenKeeper


class Connection:
    def __init__(self) -> None:
        self.renewed = 0

    def renew(self) -> None:
        self.renewed += 1


async def test_the_connection_is_renewed_only_when_the_token_changed() -> None:
    answers: list[Any] = ["t1", "t1", BrokerUnavailable("login", endpoint="x", sent=False), "t2"]

    async def ensure() -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return str(answer)

    connection = Connection()
    keeper = TokenKeeper(cast(HubConnection, connection), ensure, current="t1", hub="user hub")
    for _ in range(3):
        await keeper.tend()
    assert connection.renewed == 0  # same token twice, then the broker away
    await keeper.tend()
    assert connection.renewed == 1
