"""Fault injection: the settings, and the pure per-request decision made from them.

Settings come from the command line at start-up and can be changed at run time through
`POST /_sim/faults`; both paths validate through `FaultConfig`.
"""

import random
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any, Literal

import msgspec

from simulator.ratelimit import GATEWAY_LIMIT, RateLimit

Rate = Annotated[float, msgspec.Meta(ge=0, le=1)]
Millis = Annotated[float, msgspec.Meta(ge=0)]
ApiPath = Annotated[str, msgspec.Meta(pattern="^/api/")]
# How user-hub events carry their payload: bare (the gateway's docs), or wrapped as
# {"action": N, "data": payload} for orders only or for every target (seen live).
UserEventWrap = Literal["none", "orders", "all"]


class FaultConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What the simulator does to requests besides answering them.

    `endpoints` is a simulator extension: the paths that error_rate, commit_then_fail_rate
    and stall_rate apply to (None: every /api path). Latency and rate limiting always apply.
    `max_fill_size` caps the contracts one order fills at one price event (None: all), so
    fills come in steps.
    """

    latency_ms: Millis = 0.0  # added to every /api request
    jitter_ms: Millis = 0.0  # plus uniform(0, jitter_ms)
    error_rate: Rate = 0.0  # share answered HTTP 500 without taking effect
    commit_then_fail_rate: Rate = 0.0  # share of order mutations that take effect, then fail
    stall_rate: Rate = 0.0  # share held for stall_ms before being processed
    stall_ms: Millis = 0.0
    rate_limit: RateLimit | None = msgspec.field(default_factory=lambda: GATEWAY_LIMIT)
    endpoints: tuple[ApiPath, ...] | None = None
    max_fill_size: Annotated[int, msgspec.Meta(ge=1)] | None = None
    # The real-time hubs (simulator/hubs.py); dropping connections is POST /_sim/hubs/drop.
    hub_delay_ms: Millis = 0.0  # every hub event is sent this much later, order kept
    hub_refuse: bool = False  # new hub connections and negotiations get HTTP 503
    hub_user_wrap: UserEventWrap = "none"


def merge_faults(current: FaultConfig, changes: bytes) -> FaultConfig:
    """`current` with the keys of a JSON object applied; raises msgspec.MsgspecError if invalid.

    Keys not in the body keep their current value; a key set to null takes null.
    """
    merged: dict[str, Any] = msgspec.to_builtins(current)
    merged.update(msgspec.json.decode(changes, type=dict[str, Any]))
    return msgspec.convert(merged, FaultConfig)


class AfterCommit(Enum):
    """How a request that took effect is made to look failed to the client."""

    ERROR = "error"  # HTTP 500
    DROP = "drop"  # connection closed without an answer


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """What to do to one request."""

    delay_s: float = 0.0
    fail: bool = False
    stall_s: float = 0.0
    after_commit: AfterCommit | None = None


NO_FAULTS = FaultPlan()


def _happens(rate: float, rng: random.Random) -> bool:
    # Draw only when the rate is non-zero, so a fault-free run spends no randomness.
    return rate > 0 and rng.random() < rate


def plan_request(
    config: FaultConfig, path: str, mutates_orders: bool, rng: random.Random
) -> FaultPlan:
    """Decide the faults of one request to `path`.

    An injected error replaces the request, so it is never also stalled or committed.
    """
    delay_ms = config.latency_ms
    if config.jitter_ms:
        delay_ms += rng.uniform(0, config.jitter_ms)
    in_scope = config.endpoints is None or path in config.endpoints
    fail = in_scope and _happens(config.error_rate, rng)
    stall = in_scope and not fail and _happens(config.stall_rate, rng)
    after_commit = None
    if in_scope and mutates_orders and not fail and _happens(config.commit_then_fail_rate, rng):
        after_commit = AfterCommit.DROP if rng.random() < 0.5 else AfterCommit.ERROR
    if not (delay_ms or fail or stall or after_commit):
        return NO_FAULTS
    return FaultPlan(
        delay_s=delay_ms / 1000,
        fail=fail,
        stall_s=config.stall_ms / 1000 if stall else 0.0,
        after_commit=after_commit,
    )
