"""Fault decisions with a seeded random source, and validation of fault settings."""

import random

import msgspec
import pytest

from simulator.faults import (
    NO_FAULTS,
    AfterCommit,
    FaultConfig,
    FaultPlan,
    merge_faults,
    plan_request,
)
from simulator.ratelimit import RateLimit

PLACE = "/api/Order/place"
SEARCH = "/api/Order/search"


def plans(config: FaultConfig, n: int, path: str = PLACE, mutates: bool = True) -> list[FaultPlan]:
    rng = random.Random(42)
    return [plan_request(config, path, mutates, rng) for _ in range(n)]


def test_no_faults_spend_no_randomness() -> None:
    rng = random.Random(1)
    state = rng.getstate()
    assert plan_request(FaultConfig(), PLACE, True, rng) is NO_FAULTS
    assert rng.getstate() == state


def test_latency_and_jitter() -> None:
    assert plans(FaultConfig(latency_ms=25), 1) == [FaultPlan(delay_s=0.025)]
    delays = [p.delay_s for p in plans(FaultConfig(latency_ms=10, jitter_ms=20), 500)]
    assert all(0.010 <= d <= 0.030 for d in delays)
    assert max(delays) - min(delays) > 0.015
    assert delays == [p.delay_s for p in plans(FaultConfig(latency_ms=10, jitter_ms=20), 500)]


def test_error_rate() -> None:
    assert all(p.fail for p in plans(FaultConfig(error_rate=1.0), 100))
    fails = sum(p.fail for p in plans(FaultConfig(error_rate=0.3), 10_000))
    assert 2_700 < fails < 3_300


def test_an_injected_error_is_never_also_stalled_or_committed() -> None:
    config = FaultConfig(error_rate=0.5, stall_rate=1.0, stall_ms=5, commit_then_fail_rate=1.0)
    for plan in plans(config, 1_000):
        if plan.fail:
            assert (plan.stall_s, plan.after_commit) == (0.0, None)
        else:
            assert (plan.stall_s, plan.after_commit is not None) == (0.005, True)


def test_commit_then_fail_splits_between_500_and_drop() -> None:
    outcomes = [p.after_commit for p in plans(FaultConfig(commit_then_fail_rate=1.0), 2_000)]
    assert outcomes.count(AfterCommit.ERROR) + outcomes.count(AfterCommit.DROP) == 2_000
    assert 900 < outcomes.count(AfterCommit.DROP) < 1_100


def test_commit_then_fail_only_hits_order_mutations() -> None:
    config = FaultConfig(commit_then_fail_rate=1.0)
    assert plans(config, 50, path=SEARCH, mutates=False) == [NO_FAULTS] * 50


def test_stall() -> None:
    assert plans(FaultConfig(stall_rate=1.0, stall_ms=250), 3) == [FaultPlan(stall_s=0.25)] * 3


def test_endpoints_scope_errors_stalls_and_commits_but_not_latency() -> None:
    config = FaultConfig(
        latency_ms=1, error_rate=1.0, stall_rate=1.0, commit_then_fail_rate=1.0, endpoints=(SEARCH,)
    )
    assert plans(config, 10, path=PLACE) == [FaultPlan(delay_s=0.001)] * 10
    assert all(p.fail for p in plans(config, 10, path=SEARCH, mutates=False))


def test_merge_applies_only_the_given_keys() -> None:
    current = FaultConfig(latency_ms=5, error_rate=0.1)
    merged = merge_faults(
        current, b'{"error_rate": 0.5, "rate_limit": {"requests": 3, "seconds": 1}}'
    )
    assert merged == FaultConfig(
        latency_ms=5, error_rate=0.5, rate_limit=RateLimit(requests=3, seconds=1)
    )
    assert merge_faults(merged, b'{"rate_limit": null}').rate_limit is None
    assert merge_faults(current, b'{"endpoints": ["/api/Order/place"]}').endpoints == (PLACE,)
    assert merge_faults(current, b"{}") == current


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"bogus": 1}', "Object contains unknown field `bogus`"),
        (b'{"error_rate": 1.5}', "Expected `float` <= 1.0 - at `$.error_rate`"),
        (b'{"stall_rate": -0.1}', "Expected `float` >= 0.0 - at `$.stall_rate`"),
        (b'{"latency_ms": -1}', "Expected `float` >= 0.0 - at `$.latency_ms`"),
        (b'{"rate_limit": {"requests": 0, "seconds": 1}}', "Expected `int` >= 1"),
        (b'{"rate_limit": {"requests": 5}}', "Object missing required field `seconds`"),
        (b'{"endpoints": ["Order/place"]}', "Expected `str` matching regex"),
        (b"[1]", "Expected `object`, got `array`"),
        (b"{,}", "JSON is malformed"),
    ],
)
def test_merge_rejects_bad_settings(body: bytes, message: str) -> None:
    with pytest.raises(msgspec.MsgspecError) as caught:
        merge_faults(FaultConfig(), body)
    assert message in str(caught.value)
