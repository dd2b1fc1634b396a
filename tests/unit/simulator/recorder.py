"""A Publisher that records what the venue publishes, as the JSON the hubs would send."""

import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from simulator.wire import ENCODER


@dataclass(frozen=True)
class Event:
    """One published change: hub ("user" or "market"), the account or contract, the target
    and the payload decoded from its JSON."""

    hub: str
    key: int | str
    target: str
    payload: Any


@dataclass
class Recorder:
    """Collects every event; `take()` hands over those since the last call."""

    events: list[Event] = field(default_factory=list)
    _taken: int = 0

    def user(self, account_id: int, target: str, payload: object) -> None:
        self.events.append(Event("user", account_id, target, _json(payload)))

    def market(self, contract_id: str, target: str, payload: object) -> None:
        self.events.append(Event("market", contract_id, target, _json(payload)))

    def take(self) -> list[Event]:
        fresh = self.events[self._taken :]
        self._taken = len(self.events)
        return fresh

    def targets(self) -> list[str]:
        """The targets of the events since the last `take()`, which it takes."""
        return [e.target for e in self.take()]


def _json(payload: object) -> Any:
    # Through the app's JSON, as a hub client sees it: camelCase names, exact decimals.
    return json.loads(ENCODER.encode(payload), parse_float=Decimal)
