"""The way out, decided from the account's state: a close never closes twice and never
reverses a position, whatever the broker answers; cancel-all and flatten leave nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from producer.contract import CancelAll, ClosePosition, Flatten, OrderResult, PositionIntent
from tests.unit.worker.ledger_fakes import START, FakeClock, order
from worker.attempt import Attempt, Env
from worker.broker.client import GatewayClient
from worker.broker.errors import BrokerRejected, BrokerUnavailable
from worker.broker.models import ContractInfo, Order, OrderStatus, Position
from worker.positions import ClosePlan, Positions, closed_of, plan_for, reached

ACCOUNT = 7
MNQ, ES = "CON.F.US.MNQ.Z25", "CON.F.US.EP.Z25"
CONTRACTS = {"MNQ": MNQ, "ES": ES}


# --- the plan, pure --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("position", "quantity", "target"),
    [(3, 1, 2), (3, None, 0), (-3, 1, -2), (3, 3, 0), (3, 5, 0), (0, 1, 0)],
)
def test_a_plan_closes_towards_flat_and_never_past_it(
    position: int, quantity: int | None, target: int
) -> None:
    assert plan_for(position, quantity) == ClosePlan(position, target)


@pytest.mark.parametrize(
    ("current", "done"),
    [(3, False), (2, True), (1, True), (0, True), (-1, True)],  # -1: turned by something else
)
def test_a_close_is_done_at_its_target_flat_or_turned(current: int, done: bool) -> None:
    assert reached(ClosePlan(3, 2), current) is done


def test_what_was_closed_counts_from_the_start() -> None:
    assert closed_of(ClosePlan(3, 1), 1) == 2
    assert closed_of(ClosePlan(-3, 0), 0) == 3
    assert closed_of(ClosePlan(3, 0), -2) == 3  # turned: all of the start is gone


# --- against a venue in memory ----------------------------------------------------------


@dataclass
class Venue:
    """Positions and working orders of one account, and how the broker answers."""

    positions: dict[str, int] = field(default_factory=dict)
    working: list[Order] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)
    """Answers to the next close requests: 'lost' (applied, no answer), 'dropped' (not
    applied, no answer), 'late' (no answer; applied on the second position read after),
    'pending' (refused: a close of the gateway's is pending; applied on the next read)."""
    closes: list[int | None] = field(default_factory=list)
    cancels: list[int] = field(default_factory=list)
    _late: list[tuple[int, str, int | None]] = field(default_factory=list)
    contracts: Any = None

    def __post_init__(self) -> None:
        self.contracts = self

    async def resolve(self, symbol: str, **_: Any) -> ContractInfo:
        return ContractInfo(symbol, CONTRACTS[symbol], 0.25, 0.5)

    def _apply(self, contract_id: str, quantity: int | None) -> None:
        size = self.positions.get(contract_id, 0)
        left = 0 if quantity is None else (abs(size) - quantity) * (1 if size > 0 else -1)
        self.positions[contract_id] = left
        if not left:
            del self.positions[contract_id]

    async def close_position(
        self, *, account_id: int, contract_id: str, quantity: int | None = None, **_: Any
    ) -> None:
        self.closes.append(quantity)
        if contract_id not in self.positions:
            raise BrokerRejected("/api/Position/closeContract", 2, "Position not found")
        fault = self.faults.pop(0) if self.faults else ""
        if fault == "pending":
            self._late.append((1, contract_id, quantity))
            raise BrokerRejected("/api/Position/closeContract", 6, "Order pending")
        if fault in ("lost", "dropped", "late"):
            if fault == "lost":
                self._apply(contract_id, quantity)
            if fault == "late":
                self._late.append((2, contract_id, quantity))
            raise BrokerUnavailable("no answer", endpoint="/api/Position/closeContract", sent=True)
        self._apply(contract_id, quantity)

    async def search_open_positions(self, account_id: int, **_: Any) -> list[Position]:
        late, self._late = self._late, []
        for reads, contract_id, quantity in late:
            if reads > 1:
                self._late.append((reads - 1, contract_id, quantity))
            else:
                self._apply(contract_id, quantity)
        return [
            Position(id=1, account_id=ACCOUNT, contract_id=c, type=1 if s > 0 else 2, size=abs(s))
            for c, s in self.positions.items()
        ]

    async def search_open_orders(self, account_id: int, **_: Any) -> list[Order]:
        return list(self.working)

    async def cancel_order(self, *, account_id: int, order_id: int, **_: Any) -> None:
        self.cancels.append(order_id)
        before = len(self.working)
        self.working = [o for o in self.working if o.id != order_id]
        if len(self.working) == before:
            raise BrokerRejected("/api/Order/cancel", 2, "Order not found")


class Plans:
    """``Ledger.first_plan`` in memory."""

    def __init__(self) -> None:
        self.stored: dict[str, bytes] = {}

    async def __call__(self, request_id: str, plan: bytes) -> bytes:
        return self.stored.setdefault(request_id, plan)


def common(clock: FakeClock, **fields: Any) -> dict[str, Any]:
    return {
        "request_id": "close-1", "reply_to": "ow:reply:c", "account_id": ACCOUNT,
        "created_at": clock.ms(), "deadline": clock.ms() + 10_000, **fields,
    }  # fmt: skip


async def run(
    venue: Venue, intent: PositionIntent, clock: FakeClock, plans: Plans, *, again: bool = False
) -> OrderResult:
    positions = Positions(cast(GatewayClient, venue), plans, settle_s=0.05, poll_s=0.01)
    env = Env("w1", 60.0, clock.sleep, clock)
    attempt = Attempt(intent, clock.ms(), env, started_before=again)
    return await positions.run(attempt, intent)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


async def test_a_partial_close_then_a_whole_one(clock: FakeClock) -> None:
    venue, plans = Venue(positions={MNQ: 3}), Plans()
    part = await run(venue, ClosePosition(**common(clock, symbol="MNQ", quantity=1)), clock, plans)
    assert (part.status, part.order_state, venue.positions) == ("accepted", "filled", {MNQ: 2})
    assert part.closed is not None
    assert (part.closed[0].quantity, part.closed[0].remaining) == (1, 2)
    whole = ClosePosition(**common(clock, symbol="MNQ", request_id="close-2"))
    done = await run(venue, whole, clock, plans)
    assert (done.order_state, venue.positions, venue.closes) == ("flat", {}, [1, None])


async def test_closing_a_flat_position_is_accepted_as_flat(clock: FakeClock) -> None:
    venue = Venue()
    done = await run(venue, ClosePosition(**common(clock, symbol="MNQ")), clock, Plans())
    assert (done.status, done.order_state, done.closed, venue.closes) == (
        "accepted", "flat", [], []
    )  # fmt: skip


@pytest.mark.parametrize("fault", ["lost", "late"])
async def test_a_close_that_took_effect_without_an_answer_is_not_sent_again(
    clock: FakeClock, fault: str
) -> None:
    venue = Venue(positions={MNQ: 3}, faults=[fault])
    done = await run(
        venue, ClosePosition(**common(clock, symbol="MNQ", quantity=1)), clock, Plans()
    )
    assert (done.status, venue.positions, venue.closes) == ("accepted", {MNQ: 2}, [1])


async def test_a_close_that_did_not_arrive_is_sent_again_once(clock: FakeClock) -> None:
    venue = Venue(positions={MNQ: 3}, faults=["dropped"])
    done = await run(
        venue, ClosePosition(**common(clock, symbol="MNQ", quantity=1)), clock, Plans()
    )
    assert (done.status, venue.positions, venue.closes) == ("accepted", {MNQ: 2}, [1, 1])


async def test_a_pending_close_of_the_gateway_is_waited_for(clock: FakeClock) -> None:
    venue = Venue(positions={MNQ: 2}, faults=["pending"])
    done = await run(venue, ClosePosition(**common(clock, symbol="MNQ")), clock, Plans())
    assert (done.order_state, venue.positions, venue.closes) == ("flat", {}, [None])


async def test_a_redelivered_close_keeps_its_first_plan(clock: FakeClock) -> None:
    # The first worker closed 1 of 3 and died before answering; the position then also
    # lost 1 to a stop. The second run must not close again: 3 -> 2 was the plan.
    venue, plans = Venue(positions={MNQ: 3}), Plans()
    intent = ClosePosition(**common(clock, symbol="MNQ", quantity=1))
    await run(venue, intent, clock, plans)
    venue.positions[MNQ] = 1
    again = await run(venue, intent, clock, plans, again=True)
    assert (again.status, venue.positions, venue.closes) == ("accepted", {MNQ: 1}, [1])
    assert again.closed is not None
    assert again.closed[0].quantity == 2  # since the plan's start, by whatever means


async def test_a_position_turned_by_something_else_is_left_alone(clock: FakeClock) -> None:
    venue, plans = Venue(positions={MNQ: 3}), Plans()
    intent = ClosePosition(**common(clock, symbol="MNQ", quantity=1))
    await plans("close-1", b'{"start":3,"target":2}')
    venue.positions[MNQ] = -2  # a reversal made elsewhere since the plan
    done = await run(venue, intent, clock, plans, again=True)
    assert (done.status, venue.positions, venue.closes) == ("accepted", {MNQ: -2}, [])


async def test_flatten_cancels_first_then_closes_then_finds_nothing(clock: FakeClock) -> None:
    working = [
        order(11, account_id=ACCOUNT),
        order(12, status=OrderStatus.OPEN, account_id=ACCOUNT),
    ]
    venue = Venue(positions={MNQ: 2, ES: -1}, working=working)
    done = await run(venue, Flatten(**common(clock)), clock, Plans())
    assert (done.status, done.order_state, done.cancelled) == ("accepted", "flat", [11, 12])
    assert done.closed is not None
    assert {(c.contract_id, c.quantity, c.remaining) for c in done.closed} == {
        (MNQ, 2, 0), (ES, 1, 0)
    }  # fmt: skip
    assert (venue.positions, venue.working) == ({}, [])
    twice = await run(venue, Flatten(**common(clock, request_id="flat-2")), clock, Plans())
    assert (twice.order_state, twice.cancelled, twice.closed) == ("flat", [], [])


async def test_flatten_of_one_symbol_leaves_the_others(clock: FakeClock) -> None:
    es_order = order(13, account_id=ACCOUNT)
    es_order = type(es_order)(**{**{f: getattr(es_order, f) for f in es_order.__struct_fields__},
                                 "contract_id": ES})  # fmt: skip
    venue = Venue(positions={MNQ: 2, ES: -1}, working=[order(11, account_id=ACCOUNT), es_order])
    done = await run(venue, Flatten(**common(clock, symbol="MNQ")), clock, Plans())
    assert done.cancelled == [11]
    assert (venue.positions, [o.id for o in venue.working]) == ({ES: -1}, [13])


async def test_cancel_all_counts_what_it_cancelled(clock: FakeClock) -> None:
    venue = Venue(working=[order(11, account_id=ACCOUNT), order(12, account_id=ACCOUNT)])
    done = await run(venue, CancelAll(**common(clock)), clock, Plans())
    assert (done.status, done.cancelled, venue.working) == ("accepted", [11, 12], [])
