"""Scenarios 8-10, the gateway's rate limit: a burst, a sustained rate, requests per order.

8 and 9 run with the simulator enforcing the limit (the gateway's 200 / 60 s in a full
run; a quick run scales it down to ``Sizes.rate_limit`` and sets the worker's
``PROJECTX_RATE_LIMIT`` to match) and the worker's default budget, never
``PROJECTX_RATE_LIMIT=off``; they measure whatever the worker does today:

8. burst: ``Sizes.burst`` new market orders submitted at once; the time to the last
   answer, and the 429s the simulator sent (``GET /_sim/stats``, ``rate_limited``).
9. sustained: new orders offered at the limit's own rate for three windows (open loop);
   the requests the simulator saw per window (fixed windows from the start, and the most
   in any sliding window, read from its counters every ``Sizes.stats_poll_s``), the 429s,
   and how far the answers lagged.
10. requests per new order: the simulator's request count before and after
    ``Sizes.per_order`` orders, one at a time, without risk limits and with
    ``RISK_MAX_POSITION=10``: read from the account's mirror (the default), and with the
    user hub off, which makes the worker look up positions and open orders by REST.
"""

from __future__ import annotations

import time
from typing import Any, Final

import redis

from benchmarks.harness import LISTENING, Bench, Sizes
from benchmarks.procs import LoadGen
from benchmarks.report import Results
from benchmarks.stats import window_counts
from benchmarks.workload import ACCOUNT
from ow_core.keys import DEFAULT_PREFIX, Keys
from simulator.ratelimit import GATEWAY_LIMIT
from worker.local.stack import wait_until

WINDOWS: Final = 3
RISK_MAX_POSITION: Final = "10"
_START_TIMEOUT_S: Final = 60.0


def limit(sizes: Sizes) -> tuple[int, float]:
    """(requests, seconds) of this run's rate-limit scenarios."""
    return sizes.rate_limit or (GATEWAY_LIMIT.requests, float(GATEWAY_LIMIT.seconds))


def _label(sizes: Sizes) -> str:
    requests, seconds = limit(sizes)
    budget = "its default budget" if sizes.rate_limit is None else "a budget to match"
    return f"simulator at {requests} / {seconds:g} s, worker with {budget}"


def _intent_timeout(sizes: Sizes) -> float:
    """Deadlines long enough that pacing shows as lag, not as orders expired unsent."""
    return max(10.0, 2 * limit(sizes)[1])


def _limited_worker(bench: Bench, sizes: Sizes, name: str) -> None:
    """A fresh stack with the limit on at the simulator and the worker's budget on."""
    bench.fresh()
    requests, seconds = limit(sizes)
    bench.sim.faults(rate_limit={"requests": requests, "seconds": seconds})
    # None leaves the variable unset: the worker's default budget, as deployed.
    budget = None if sizes.rate_limit is None else f"{requests}/{seconds:g}"
    bench.worker(name, PROJECTX_RATE_LIMIT=budget)


def _orders(bench: Bench, name: str, args: list[str]) -> LoadGen:
    return bench.loadgen(
        name, "benchmarks.orders", [args[0], "--redis-url", bench.redis_url, *args[1:]]
    )


def _seconds(results: Results, key: str, scenario: str, what: str, samples: list[float]) -> None:
    results.latency(key, scenario, what, samples, keep_samples=False, unit="s")


def burst(bench: Bench, sizes: Sizes, results: Results) -> str:
    """``Sizes.burst`` new orders at once into the limit."""
    _limited_worker(bench, sizes, "bench-burst")
    timeout = _intent_timeout(sizes)
    gen = _orders(bench, "burst", ["burst", "--count", str(sizes.burst), "--timeout", str(timeout)])
    gen.line(_START_TIMEOUT_S)
    before = bench.sim.stats()
    gen.send(f"go {time.time():.6f}")
    answer = gen.result(_START_TIMEOUT_S + timeout)
    after = bench.sim.stats()
    scenario = "8 burst at the rate limit"
    setup = f"{sizes.burst} market orders with brackets submitted at once; {_label(sizes)}"
    results.count(scenario).add(answer)
    _, seconds = limit(sizes)
    last = answer["last_answer_s"]
    results.scalar("burst.last_answer_s", scenario, f"time to the last answer, {setup}", last, "s")
    results.scalar(
        "burst.last_answer_windows",
        scenario,
        f"that time as a share of the {seconds:g} s window",
        last / seconds,
        "ratio",
    )
    _delta_figures(results, "burst", scenario, setup, before, after)
    _seconds(results, "burst.latency", scenario, f"each order's time to its answer, {setup}",
             answer["latency_s"])  # fmt: skip
    results.curves["burst_answers"] = [[t, i + 1] for i, t in enumerate(answer["answered_at"])]
    bench.stop_all()
    refused = _count(after, before, "rate_limited")
    return f"{sizes.burst} orders answered in {last:.1f} s, {refused} × 429"


def sustained(bench: Bench, sizes: Sizes, results: Results) -> str:
    """New orders offered at the limit's rate for three windows."""
    requests, seconds = limit(sizes)
    rate = requests / seconds
    count = WINDOWS * requests
    reset_at = time.time()
    _limited_worker(bench, sizes, "bench-sustained")
    timeout = _intent_timeout(sizes)
    gen = _orders(bench, "sustained", [
        "paced", "--count", str(count), "--rate", f"{rate:g}", "--timeout", str(timeout),
    ])  # fmt: skip
    gen.line(_START_TIMEOUT_S)
    origin = time.time() + 0.1
    # From the reset on (every counter 0), so the worker's log-in counts too.
    readings = [(reset_at - origin, 0.0, 0.0)]
    gen.send(f"go {origin:.6f}")
    while not gen.done:
        stats = bench.sim.stats()
        readings.append((time.time() - origin, stats["requests"], stats["rate_limited"]))
        time.sleep(sizes.stats_poll_s)
    answer = gen.result(_START_TIMEOUT_S)
    stats = bench.sim.stats()
    readings.append((time.time() - origin, stats["requests"], stats["rate_limited"]))
    scenario = "9 sustained at the rate limit"
    setup = (
        f"{count} market orders with brackets offered at {rate:g}/s (the limit's rate) for "
        f"{WINDOWS} windows of {seconds:g} s; {_label(sizes)}"
    )
    results.count(scenario).add(answer)
    fixed, most = window_counts([(t, c) for t, c, _ in readings], seconds, WINDOWS)
    for index, value in enumerate(fixed, start=1):
        results.scalar(
            f"sustained.window{index}.requests",
            scenario,
            f"requests the simulator received in window {index} ({(index - 1) * seconds:g} "
            f"to {index * seconds:g} s after the start), 429s included; {setup}",
            value,
            "count",
        )
    results.scalar(
        "sustained.max_window_requests",
        scenario,
        f"the most requests in any {seconds:g} s sliding window (a bound from above, read "
        f"every {sizes.stats_poll_s:g} s), 429s included; limit {requests}",
        most,
        "count",
    )
    results.scalar(
        "sustained.max_window_share",
        scenario,
        f"that most as a share of the limit ({requests})",
        most / requests,
        "ratio",
    )
    results.scalar(
        "sustained.rate_limited", scenario, f"429s the simulator sent, {setup}",
        stats["rate_limited"], "count",
    )  # fmt: skip
    accepted = answer["statuses"].get("accepted", 0)
    end = answer["last_answer_s"]
    results.scalar(
        "sustained.accepted_rate",
        scenario,
        "orders accepted per second, from the start to the last answer",
        accepted / end if end > 0 else 0.0,
        "/s",
    )
    _seconds(results, "sustained.latency", scenario, f"each order's time to its answer, {setup}",
             answer["latency_s"])  # fmt: skip
    results.curves["sustained_requests"] = [[t, c] for t, c, _ in readings if t >= 0]
    results.curves["sustained_limit"] = [[float(seconds), float(requests)]]
    bench.stop_all()
    return (
        f"windows {', '.join(f'{x:.0f}' for x in fixed)} requests (limit {requests}), "
        f"most in any window {most:.0f}, {stats['rate_limited']} × 429"
    )


def per_order(bench: Bench, sizes: Sizes, results: Results) -> str:
    """Broker requests per new order, without and with a max-position risk limit."""
    said = []
    scenario = "10 requests per new order"
    risk = {"RISK_MAX_POSITION": RISK_MAX_POSITION, "PROJECTX_USER_HUB": LISTENING}
    for key, label, env in (
        ("plain", "no risk limits", {"PROJECTX_USER_HUB": LISTENING}),
        ("risk", f"RISK_MAX_POSITION={RISK_MAX_POSITION}, read from the mirror", risk),
        (
            "risk_rest",
            f"RISK_MAX_POSITION={RISK_MAX_POSITION}, user hub off (read from REST)",
            {**risk, "PROJECTX_USER_HUB": "off"},
        ),
    ):
        bench.fresh()
        bench.worker(f"bench-requests-{key}", **env)
        if env.get("PROJECTX_USER_HUB") != "off":
            # The leader's reconciliation at start is its own (five requests per account
            # per session), not the orders': counting starts once it is done.
            _wait_live(bench)
        before = bench.sim.stats()
        answer = _orders(
            bench, f"requests-{key}", ["serial", "--count", str(sizes.per_order)]
        ).result(_START_TIMEOUT_S + sizes.per_order * 0.1)
        after = bench.sim.stats()
        results.count(scenario).add(answer)
        setup = (
            f"{sizes.per_order} market orders one at a time (BUY, SELL alternately), {label}, "
            "no rate limit"
        )
        sent = max(1, answer["sent"])
        delta = _endpoints(before, after)
        per_endpoint = ", ".join(f"{path} {n / sent:.2f}" for path, n in sorted(delta.items()))
        value = _count(after, before, "requests") / sent
        results.scalar(
            f"requests_per_order.{key}",
            scenario,
            f"broker requests per new order at the simulator, {setup} ({per_endpoint})",
            value,
            "requests",
        )
        attempts = answer["attempts"]
        results.scalar(
            f"requests_per_order.{key}.attempts",
            scenario,
            f"the same as the worker counts it (mean result.attempts), {setup}",
            sum(attempts) / max(1, len(attempts)),
            "requests",
        )
        said.append(f"{label}: {value:.2f}")
    bench.stop_all()
    return "; ".join(said)


def _wait_live(bench: Bench) -> None:
    client = redis.Redis.from_url(bench.redis_url)
    try:
        wait_until(
            lambda: bool(client.exists(Keys(DEFAULT_PREFIX).mirror_synced(ACCOUNT))),
            "the account's mirror",
            _START_TIMEOUT_S,
        )
    finally:
        client.close()


def _count(after: dict[str, Any], before: dict[str, Any], name: str) -> int:
    return int(after[name]) - int(before[name])


def _endpoints(before: dict[str, Any], after: dict[str, Any]) -> dict[str, int]:
    """Requests per endpoint between two readings, endpoints with none left out."""
    old: dict[str, int] = before.get("endpoints", {})
    new: dict[str, int] = after.get("endpoints", {})
    return {path: n - old.get(path, 0) for path, n in new.items() if n - old.get(path, 0)}


def _delta_figures(
    results: Results,
    key: str,
    scenario: str,
    setup: str,
    before: dict[str, Any],
    after: dict[str, Any],
) -> None:
    results.scalar(
        f"{key}.rate_limited", scenario, f"429s the simulator sent, {setup}",
        _count(after, before, "rate_limited"), "count",
    )  # fmt: skip
    results.scalar(
        f"{key}.requests", scenario, f"requests the simulator received, {setup}",
        _count(after, before, "requests"), "count",
    )  # fmt: skip
