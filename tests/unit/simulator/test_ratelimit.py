"""Sliding-window rate limiting with a fake clock."""

from simulator.ratelimit import (
    BARS_LIMIT,
    BARS_PATH,
    GATEWAY_LIMIT,
    RateLimit,
    SlidingWindowLimiter,
)

PLACE = "/api/Order/place"
SEARCH = "/api/Order/search"
THREE_PER_10S = RateLimit(requests=3, seconds=10)


def allowed_at(limiter: SlidingWindowLimiter, times: list[float], user: str = "u") -> list[bool]:
    return [limiter.allow(user, PLACE, THREE_PER_10S, t) for t in times]


def test_gateway_defaults() -> None:
    assert (GATEWAY_LIMIT.requests, GATEWAY_LIMIT.seconds) == (200, 60)
    assert (BARS_LIMIT.requests, BARS_LIMIT.seconds) == (50, 30)


def test_window_slides() -> None:
    limiter = SlidingWindowLimiter()
    assert allowed_at(limiter, [0, 1, 2, 5]) == [True, True, True, False]
    # At t=10 the t=0 request leaves the window; at 10.5 the window holds 1, 2 and 10.
    assert allowed_at(limiter, [10.0, 10.5, 11.0, 11.5, 12.0]) == [True, False, True, False, True]


def test_refused_requests_use_no_budget() -> None:
    limiter = SlidingWindowLimiter()
    assert allowed_at(limiter, [0, 0, 0] + [1 + i / 10 for i in range(50)]).count(True) == 3
    assert allowed_at(limiter, [10]) == [True]


def test_budget_is_per_user_and_shared_by_endpoints() -> None:
    limiter = SlidingWindowLimiter()
    assert allowed_at(limiter, [0, 0, 0], user="a") == [True] * 3
    assert not limiter.allow("a", SEARCH, THREE_PER_10S, 0)
    assert allowed_at(limiter, [0, 0, 0], user="b") == [True] * 3


def test_retrieve_bars_has_its_own_budget() -> None:
    limiter = SlidingWindowLimiter()
    assert allowed_at(limiter, [0, 0, 0]) == [True] * 3
    bars = [limiter.allow("u", BARS_PATH, THREE_PER_10S, 0) for _ in range(51)]
    assert bars == [True] * 50 + [False]
    assert limiter.allow("u", BARS_PATH, THREE_PER_10S, 30)


def test_no_limit_allows_everything() -> None:
    limiter = SlidingWindowLimiter()
    assert all(limiter.allow("u", PLACE, None, 0) for _ in range(1000))
    assert all(limiter.allow("u", BARS_PATH, None, 0) for _ in range(1000))


def test_reset_forgets_windows() -> None:
    limiter = SlidingWindowLimiter()
    allowed_at(limiter, [0, 0, 0])
    assert not limiter.allow("u", PLACE, THREE_PER_10S, 0)
    limiter.reset()
    assert limiter.allow("u", PLACE, THREE_PER_10S, 0)
