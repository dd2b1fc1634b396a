"""Every scenario, each adding its figures and counts to ``Results``: issue 5's six here, the
peers (``peers.py``) and the rate-limit scenarios (``limits.py``) in their own modules.

Each scenario starts from a flushed Redis and a reset simulator, starts the processes it
needs, lets its load generators warm up (their first rounds are not measured), and stops
its processes at the end. Figures are reported as measured; nothing here judges them
(``targets.py`` does, and only in the report).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Set
from typing import Any, Final

import redis

from benchmarks import arq_baseline, limits, peers
from benchmarks.harness import LISTENING, Bench, Sizes, progress
from benchmarks.procs import LoadGen, cpu_seconds, rss_mb
from benchmarks.report import Results
from benchmarks.stats import difference
from benchmarks.workload import KINDS
from worker.local.stack import Process, spawn, wait_until

_START_TIMEOUT_S: Final = 60.0
_INTENT_WORDS: Final = {
    "place": "place: market BUY 1 MNQ with stop-loss and take-profit brackets",
    "modify": "modify: move a resting limit's price",
    "cancel": "cancel: a resting limit",
}
_FLAT_MB: Final = 2.0
_FLAT_SHARE: Final = 0.03


def _ms(results: Results, key: str, stat: str = "p50") -> str:
    """A figure's statistic for a progress line ("-" when it was not measured)."""
    figure = results.figure(key)
    value = None if figure is None else getattr(figure, stat)
    return "-" if value is None else f"{value:.3f} ms"


def _counts(samples: int, warmup: int) -> list[str]:
    return ["--samples", str(samples), "--warmup", str(warmup)]


def _timeout(count: int, per_item_s: float) -> float:
    """A generous wall-clock limit for a load generator: start-up plus its work."""
    return _START_TIMEOUT_S + count * per_item_s


# --- 1. floor ---------------------------------------------------------------------------


def floor(bench: Bench, sizes: Sizes, results: Results) -> str:
    """A bare XADD → XREADGROUP → XADD+XACK → XREAD loop on the same Redis."""
    bench.fresh()
    url = bench.redis_url
    responder = bench.loadgen(
        "floor-responder", "benchmarks.floor", ["responder", "--redis-url", url]
    )
    responder.line(_START_TIMEOUT_S)
    total = sizes.floor_samples + sizes.floor_warmup
    answer = bench.loadgen(
        "floor-requester",
        "benchmarks.floor",
        ["requester", "--redis-url", url, *_counts(sizes.floor_samples, sizes.floor_warmup)],
    ).result(_timeout(total, 0.05))
    results.count("1 floor").add(answer)
    figure = results.latency(
        "floor.rtt",
        "1 floor",
        "bare stream round trip, two processes: XADD → XREADGROUP BLOCK → XADD reply + XACK "
        "(one pipeline) → XREAD BLOCK; redis.asyncio + hiredis on uvloop",
        answer["samples"],
    )
    rate = _floor_rate(bench, sizes, results)
    return f"p50 {_ms(results, figure.key)}, p99 {_ms(results, figure.key, 'p99')}; {rate:,.0f}/s"


def _floor_rate(bench: Bench, sizes: Sizes, results: Results) -> float:
    """The floor's throughput, loaded as one worker is in scenario 5: the same producer
    processes with the same calls in flight, for the same window, against one responder."""
    args = ["requester", "--redis-url", bench.redis_url, "--concurrency", str(sizes.concurrency)]
    gens = [
        bench.loadgen(f"floor-blaster-{i + 1}", "benchmarks.floor", [*args, "--duration",
                      str(sizes.window_s)])
        for i in range(sizes.producers)
    ]  # fmt: skip
    for gen in gens:
        gen.line(_START_TIMEOUT_S)  # warmed up
    start_at = time.time() + 0.1
    for gen in gens:
        gen.send(f"go {start_at:.6f}")
    answers = [gen.result(_timeout(0, 1.0) + sizes.window_s) for gen in gens]
    for answer in answers:
        results.count("1 floor, throughput").add(answer)
    rate: float = sum(a["in_window"] for a in answers) / sizes.window_s
    results.scalar(
        "floor.rate",
        "1 floor",
        f"bare stream round trips/s, {sizes.producers} requester processes × "
        f"{sizes.concurrency} in flight (as scenario 5 loads one worker), one responder",
        rate,
        "/s",
    )
    bench.stop_all()
    return rate


# --- 2-4. the same intents through ours, direct and arq ---------------------------------


def _sequential(
    results: Results, key: str, scenario: str, how: str, answer: dict[str, Any]
) -> None:
    results.count(scenario).add(answer)
    for kind in KINDS:
        results.latency(
            f"{key}.{kind}",
            scenario,
            f"{how}, end to end at the caller; {_INTENT_WORDS[kind]}",
            answer["latency_ms"][kind],
        )


def ours(bench: Bench, sizes: Sizes, results: Results) -> str:
    """One producer, one intent at a time, one worker, simulator at zero latency."""
    bench.fresh()
    worker = bench.worker("bench-sequential")
    rounds = sizes.sequential_samples + sizes.sequential_warmup
    pids = {"worker": [worker.popen.pid], "redis": [bench.pids()["redis"]]}
    before = _cpu(pids)
    answer = bench.loadgen(
        "ours",
        "benchmarks.ours",
        [
            "--redis-url",
            bench.redis_url,
            *_counts(sizes.sequential_samples, sizes.sequential_warmup),
        ],
    ).result(_timeout(rounds * 4, 0.05))
    after = _cpu(pids)
    scenario = "2 ours, sequential"
    _sequential(results, "ours", scenario, "OrderClient → Redis → 1 worker → simulator", answer)
    for name in pids:
        # How much of the queue's share is this process's own work, one intent at a time.
        results.scalar(
            f"ours.cpu_{name}",
            scenario,
            f"CPU (user+sys) of the {name} process per intent, one intent at a time "
            "(every intent sent, set-up and warm-up included)",
            (after[name] - before[name]) * 1e6 / max(1, answer["sent"]),
            "µs",
        )
    for kind in KINDS:
        total = answer["latency_ms"][kind]
        broker = answer["broker_ms"].get(kind, [])
        if len(broker) != len(total):
            continue  # cannot pair them (should not happen: every result has broker_ms)
        results.latency(
            f"ours.broker.{kind}",
            scenario,
            f"time at the broker as the worker measured it (result.broker_ms); {kind}",
            broker,
        )
        results.latency(
            f"ours.queue.{kind}",
            scenario,
            f"the queue's share: end to end minus result.broker_ms, per intent; {kind}",
            difference(total, broker),
        )
    return (
        f"place p50 {_ms(results, 'ours.place')}, p95 {_ms(results, 'ours.place', 'p95')}; "
        f"queue share p50 {_ms(results, 'ours.queue.place')}"
    )


def direct(bench: Bench, sizes: Sizes, results: Results) -> str:
    """The same calls from one process on one persistent aiohttp session."""
    bench.fresh()
    rounds = sizes.sequential_samples + sizes.sequential_warmup
    answer = bench.loadgen(
        "direct",
        "benchmarks.direct",
        [
            "--broker-url",
            bench.broker_url,
            *_counts(sizes.sequential_samples, sizes.sequential_warmup),
        ],
    ).result(_timeout(rounds * 4, 0.05))
    _sequential(
        results, "direct", "3 direct", "GatewayClient on one aiohttp session, no queue", answer
    )
    return f"place p50 {_ms(results, 'direct.place')}"


def _arq_worker(bench: Bench, poll_delay: float | None) -> Process:
    """arq's own Worker with the benchmark's settings, ready once its health key is set."""
    argv = [sys.executable, "-m", "benchmarks.arq_baseline", "worker"]
    argv += ["--redis-url", bench.redis_url, "--broker-url", bench.broker_url]
    if poll_delay is not None:
        argv += ["--poll-delay", str(poll_delay)]
    name = "arq-worker" if poll_delay is None else f"arq-worker-{poll_delay:g}s"
    process = spawn(name, argv, log_dir=bench.log_dir)
    bench.workers.append(process)
    client = redis.Redis.from_url(bench.redis_url)
    try:
        wait_until(lambda: client.exists(arq_baseline.HEALTH_KEY), name, _START_TIMEOUT_S, process)
    finally:
        client.close()
    return process


def arq(bench: Bench, sizes: Sizes, results: Results) -> str:
    """arq as a plain job queue: default settings, then 1 ms polling."""
    said = []
    for key, label, poll, samples, warmup in (
        ("arq_default", "default settings (0.5 s polls)", None, sizes.arq_default_samples,
         sizes.arq_default_warmup),
        ("arq_1ms", "poll_delay 1 ms (worker and job.result)", 0.001, sizes.arq_fast_samples,
         sizes.arq_fast_warmup),
    ):  # fmt: skip
        bench.fresh()
        _arq_worker(bench, poll)
        args = ["client", "--redis-url", bench.redis_url, *_counts(samples, warmup)]
        if poll is not None:
            args += ["--poll-delay", str(poll)]
        per_intent = 1.5 if poll is None else 0.05
        answer = bench.loadgen(key, "benchmarks.arq_baseline", args).result(
            _timeout((samples + warmup) * 4, per_intent)
        )
        _sequential(results, key, f"4 arq, {label}", f"arq job, {label}", answer)
        said.append(f"{key} place p50 {_ms(results, f'{key}.place')}")
    bench.stop_all()
    return "; ".join(said)


# --- 5. throughput ----------------------------------------------------------------------


def _producers(bench: Bench, label: str, count: int, args: list[str]) -> list[LoadGen]:
    gens = [
        bench.loadgen(f"producer-{label}-{i + 1}", "benchmarks.throughput", args)
        for i in range(count)
    ]
    for gen in gens:
        gen.line(_START_TIMEOUT_S)  # warmed up and ready
    return gens


def _cpu(pids: dict[str, list[int]]) -> dict[str, float]:
    return {name: sum(cpu_seconds(pid) for pid in group) for name, group in pids.items()}


def _point(
    bench: Bench, sizes: Sizes, label: str, workers: list[Process], concurrency: int
) -> dict[str, Any]:
    """One throughput measurement: producers start together, run ``window_s``, drain."""
    args = ["--redis-url", bench.redis_url, "--concurrency", str(concurrency)]
    gens = _producers(bench, label, sizes.producers, [*args, "--duration", str(sizes.window_s)])
    pids = {"worker": [w.popen.pid for w in workers]}
    pids.update({name: [pid] for name, pid in bench.pids().items()})
    before = _cpu(pids)
    start_at = time.time() + 0.1
    for gen in gens:
        gen.send(f"go {start_at:.6f}")
    answers = [gen.result(_timeout(0, 1.0) + sizes.window_s) for gen in gens]
    after = _cpu(pids)
    measured = sum(a["measured_answered"] for a in answers)
    cpu_us = {name: (after[name] - before[name]) * 1e6 / max(1, measured) for name in after}
    cpu_us["producers"] = sum(a["cpu_s"] for a in answers) * 1e6 / max(1, measured)
    return {
        "rate": sum(a["in_window"] for a in answers) / sizes.window_s,
        "cpu_us": cpu_us,
        "latency_ms": [x for a in answers for x in a["latency_ms"]],
        "answers": answers,
        "late_s": max(a["late_s"] for a in answers),
    }


def _record_point(
    results: Results, key: str, scenario: str, setup: str, point: dict[str, Any]
) -> None:
    for answer in point["answers"]:
        results.count(scenario).add(answer)
    results.scalar(f"{key}.rate", scenario, f"intents/s completed, {setup}", point["rate"], "/s")
    results.latency(
        f"{key}.latency",
        scenario,
        f"end-to-end latency under that load (place), {setup}",
        point["latency_ms"],
        keep_samples=False,
    )
    for name, micros in point["cpu_us"].items():
        results.scalar(
            f"{key}.cpu_{name}",
            scenario,
            f"CPU (user+sys) of the {name} process(es) per intent, {setup}",
            micros,
            "µs",
        )


def throughput(bench: Bench, sizes: Sizes, results: Results) -> str:
    """1 and 2 workers at zero broker latency; then in-flight bounds at 20 ms."""
    said = []
    scenario = "5 throughput"
    load = f"{sizes.producers} producer processes × {sizes.concurrency} calls in flight"
    for count in (1, 2):
        bench.fresh()
        workers = [bench.worker(f"bench-tput-{i + 1}") for i in range(count)]
        point = _point(bench, sizes, f"w{count}", workers, sizes.concurrency)
        setup = f"{count} worker(s), {load}, zero broker latency"
        _record_point(results, f"throughput.workers{count}", scenario, setup, point)
        results.curves.setdefault("throughput_vs_workers", []).append([count, point["rate"]])
        worker_us = point["cpu_us"]["worker"]
        if count == 1 and worker_us > 0:
            results.scalar(
                "throughput.workers1.ceiling",
                scenario,
                "one worker's CPU-bound ceiling: 1 / its CPU per intent (if it had a core "
                "to itself)",
                1e6 / worker_us,
                "/s",
            )
        said.append(f"{count} worker(s) {point['rate']:,.0f}/s ({worker_us:.0f} µs CPU/intent)")
    bench.fresh()
    listening = bench.worker("bench-tput-listening", PROJECTX_USER_HUB=LISTENING)
    point = _point(bench, sizes, "listening", [listening], sizes.concurrency)
    _record_point(
        results,
        "throughput.listening",
        scenario,
        f"1 worker with its user-hub listener leading (every order's hub pushes applied to "
        f"the mirror, on the same 2 cores as the simulator), {load}, zero broker latency",
        point,
    )
    said.append(f"listening {point['rate']:,.0f}/s")
    latency_s = sizes.broker_latency_ms / 1000
    for bound in sizes.bounds:
        bench.fresh()
        bench.sim.faults(latency_ms=sizes.broker_latency_ms)
        worker = bench.worker(f"bench-bound-{bound}", WORKER_MAX_IN_FLIGHT=str(bound))
        # Twice the bound in flight, so the worker always has a full window to take.
        concurrency = max(1, bound * 2 // sizes.producers)
        point = _point(bench, sizes, f"b{bound}", [worker], concurrency)
        ideal = bound / latency_s
        setup = (
            f"1 worker, WORKER_MAX_IN_FLIGHT={bound}, {sizes.producers} producers × "
            f"{concurrency} in flight, broker latency {sizes.broker_latency_ms} ms"
        )
        _record_point(results, f"throughput.bound{bound}", scenario, setup, point)
        results.scalar(
            f"throughput.bound{bound}.ideal",
            scenario,
            f"bound / latency = {bound} / {latency_s:g} s",
            ideal,
            "/s",
        )
        results.scalar(
            f"throughput.bound{bound}.share",
            scenario,
            f"measured / (bound / latency), bound {bound}",
            point["rate"] / ideal,
            "ratio",
        )
        # The baseline: the same bound as requests in flight on one session, no queue.
        worker.stop()
        direct = bench.loadgen(
            f"direct-b{bound}",
            "benchmarks.direct",
            ["--broker-url", bench.broker_url, "--concurrency", str(bound),
             "--duration", str(sizes.window_s)],
        ).result(_START_TIMEOUT_S + sizes.window_s)  # fmt: skip
        results.scalar(
            f"throughput.bound{bound}.direct",
            scenario,
            f"the same orders straight to the simulator, {bound} in flight on one aiohttp "
            f"session, broker latency {sizes.broker_latency_ms} ms",
            direct["rate"],
            "/s",
        )
        results.curves.setdefault("throughput_vs_bound", []).append([bound, point["rate"], ideal])
        said.append(
            f"bound {bound}: {point['rate'] / ideal:.0%} of bound / latency, "
            f"{point['rate'] / direct['rate']:.0%} of direct"
        )
    bench.sim.faults(latency_ms=0)
    bench.stop_all()
    return "; ".join(said)


# --- 6. memory and soak -----------------------------------------------------------------


def _sample_rss(
    pid: int, every_s: float, running: Callable[[], bool], origin: float
) -> list[list[float]]:
    """RSS of ``pid`` every ``every_s`` seconds while ``running()``; ``[t, MiB]`` points."""
    points = [[time.time() - origin, rss_mb(pid)]]
    while running():
        time.sleep(every_s)
        points.append([time.time() - origin, rss_mb(pid)])
    return points


def _rss_figures(
    results: Results, key: str, scenario: str, setup: str, points: list[list[float]]
) -> None:
    values = [p[1] for p in points]
    results.scalar(
        f"{key}.rss_start", scenario, f"worker RSS at the first sample, {setup}", values[0], "MB"
    )
    results.scalar(
        f"{key}.rss_max", scenario, f"worker RSS, highest sample, {setup}", max(values), "MB"
    )
    results.scalar(
        f"{key}.rss_end", scenario, f"worker RSS at the last sample, {setup}", values[-1], "MB"
    )


def soak(bench: Bench, sizes: Sizes, results: Results) -> str:
    """RSS while draining a backlog; then RSS over a long run of intents."""
    # The backlog: queued with no worker running, then one worker drains it.
    bench.fresh()
    scenario = "6 memory and soak"
    gen = bench.loadgen(
        "backlog",
        "benchmarks.soak",
        ["--redis-url", bench.redis_url, "--count", str(sizes.backlog)],
    )
    gen.line(_timeout(sizes.backlog, 0.01))  # all queued
    origin = time.time()
    worker = bench.worker("bench-backlog")
    ready = time.time()
    points = _sample_rss(worker.popen.pid, 0.05, lambda: not gen.done, origin)
    answer = gen.result(_timeout(sizes.backlog, 0.01))
    points.append([time.time() - origin, rss_mb(worker.popen.pid)])
    results.count(scenario).add(answer)
    setup = f"{sizes.backlog:,} intents queued before the worker started, sampled while it drained"
    _rss_figures(results, "soak.backlog", scenario, setup, points)
    results.scalar(
        "soak.backlog.rate",
        scenario,
        "intents/s draining the backlog (from the worker's start to the last result; "
        "approximate: the worker takes entries before it reports ready)",
        sizes.backlog / max(1e-9, answer["finished"] - ready),
        "/s",
    )
    results.curves["rss_backlog"] = points

    # The soak: one worker, closed-loop producers, RSS sampled all along.
    bench.fresh()
    worker = bench.worker("bench-soak")
    per_producer = sizes.soak // sizes.producers
    args = ["--redis-url", bench.redis_url, "--concurrency", str(sizes.concurrency)]
    gens = _producers(bench, "soak", sizes.producers, [*args, "--count", str(per_producer)])
    start_at = time.time() + 0.1
    for g in gens:
        g.send(f"go {start_at:.6f}")
    points = _sample_rss(
        worker.popen.pid, sizes.soak_sample_s, lambda: not all(g.done for g in gens), start_at
    )
    answers = [g.result(_timeout(0, 1.0)) for g in gens]
    elapsed = max(a["finished"] for a in answers) - start_at
    for a in answers:
        results.count(scenario).add(a)
    sent = sum(a["measured_sent"] for a in answers)
    setup = f"{sent:,} intents through one worker, sampled every {sizes.soak_sample_s:g} s"
    _rss_figures(results, "soak.run", scenario, setup, points)
    growth, flat = _growth(points)
    results.scalar(
        "soak.run.rss_growth",
        scenario,
        "RSS growth: mean of the last quarter of samples minus mean of the first quarter "
        "(after the first 10 % of the run, the warm-up)",
        growth,
        "MB",
    )
    results.scalar(
        "soak.run.flat",
        scenario,
        f"1 if that growth is within {_FLAT_MB:g} MB or {_FLAT_SHARE:.0%}, else 0",
        1.0 if flat else 0.0,
        "bool",
    )
    results.scalar("soak.run.rate", scenario, "intents/s over the soak", sent / elapsed, "/s")
    results.curves["rss_soak"] = points
    bench.stop_all()
    backlog_max = max(p[1] for p in results.curves["rss_backlog"])
    run_max = max(p[1] for p in points)
    return (
        f"backlog max RSS {backlog_max:.1f} MB; soak max {run_max:.1f} MB, "
        f"growth {growth:+.1f} MB, {sent / elapsed:,.0f}/s"
    )


def _growth(points: list[list[float]]) -> tuple[float, bool]:
    """RSS growth over a run, judged past its warm-up; and whether that is flat."""
    end = points[-1][0]
    settled = [p[1] for p in points if p[0] >= 0.1 * end] or [p[1] for p in points]
    quarter = max(1, len(settled) // 4)
    first = sum(settled[:quarter]) / quarter
    last = sum(settled[-quarter:]) / quarter
    growth = last - first
    return growth, growth <= max(_FLAT_MB, _FLAT_SHARE * first)


# --- 11. the lifecycle -------------------------------------------------------------------


def fills(bench: Bench, sizes: Sizes, results: Results) -> str:
    """A fill at the simulator until ``events()`` yields it, through two workers (one
    leads the user hub), one fill at a time."""
    bench.fresh()
    for index in (1, 2):
        bench.worker(f"bench-lifecycle-{index}", PROJECTX_USER_HUB=LISTENING)
    answer = bench.loadgen(
        "lifecycle",
        "benchmarks.lifecycle",
        ["--redis-url", bench.redis_url, "--broker-url", bench.broker_url,
         "--samples", str(sizes.fills), "--warmup", "5"],
    ).result(_timeout(sizes.fills, 0.5))  # fmt: skip
    scenario = "11 fills to events()"
    results.count(scenario).add(answer)
    figure = results.latency(
        "lifecycle.fill_to_event",
        scenario,
        "a resting limit filled by POST /_sim/price until events() yields its filled "
        "OrderUpdate: the venue, the user hub's WebSocket push, the leader's Lua write "
        "to the mirror and events stream, the strategy's XREAD BLOCK",
        answer["samples"],
    )
    results.latency(
        "lifecycle.price_request",
        scenario,
        "the POST /_sim/price itself (the fill is made and pushed within it), for scale",
        answer["post_ms"],
    )
    floor_p50 = _stat_of(results, "floor.rtt", "p50")
    if floor_p50 and figure.p50 is not None:
        results.scalar(
            "lifecycle.fill_to_event_floor_ratio",
            scenario,
            "fill to events() p50 / floor round trip p50",
            figure.p50 / floor_p50,
            "ratio",
        )
    bench.stop_all()
    return f"p50 {_ms(results, figure.key)}, p95 {_ms(results, figure.key, 'p95')}"


# --- 12. market data ----------------------------------------------------------------------

_STRATEGIES: Final = 5
_SETTLE_S: Final = 1.0
_MARKET_WARMUP_S: Final = 0.3


def fanout(bench: Bench, sizes: Sizes, results: Results) -> str:
    """Quotes set at the simulator until five strategies' ``quotes()`` yield them, ten
    symbols each, against one Redis stream hop at the same rate."""
    bench.fresh()
    bench.worker("bench-market", PROJECTX_MARKET_HUB="on")
    phase = ["--redis-url", bench.redis_url]
    driver = bench.loadgen(
        "market-driver",
        "benchmarks.market",
        ["drive", *phase, "--broker-url", bench.broker_url,
         "--rate", str(sizes.market_rate), "--seconds", str(sizes.market_s)],
    )  # fmt: skip
    strategies = [
        bench.loadgen(f"market-strategy-{index}", "benchmarks.market", ["strategy", *phase])
        for index in range(_STRATEGIES)
    ]
    for strategy in strategies:
        strategy.line(60)  # ready: a quote of every symbol came
    driver.send(f"go {time.time() + 0.2}")
    drove = driver.result(60 + 4 * sizes.market_s)
    time.sleep(_SETTLE_S)  # the last quotes on their way
    for strategy in strategies:
        strategy.send("stop")
    got = [strategy.result(30) for strategy in strategies]
    sent: dict[str, float] = drove["sent"]
    first = min(sent.values(), default=0.0)
    measured = {key: at for key, at in sent.items() if at >= first + _MARKET_WARMUP_S}
    samples: list[float] = []
    hops: list[float] = []
    for answer in got:
        arrived: dict[str, float] = {}
        for key, at in answer["quotes"]:
            arrived.setdefault(key, at)
        samples += [(arrived[k] - at) * 1000 for k, at in measured.items() if k in arrived]
        start = min((s for s, _ in answer["hops"]), default=0.0) + _MARKET_WARMUP_S
        hops += [(got_at - at) * 1000 for at, got_at in answer["hops"] if at >= start]
    scenario = "12 market fan-out"
    results.count(scenario).add(
        {"sent": len(measured) * _STRATEGIES, "answered": len(samples),
         "statuses": {"quoted": len(samples)}}
    )  # fmt: skip
    setup = (
        f"{drove['rate']:,.0f} quotes/s across 10 symbols, {_STRATEGIES} strategy processes "
        "each reading all ten"
    )
    figure = results.latency(
        "market.fanout",
        scenario,
        "a price set at the simulator (from just before POST /_sim/price) until a "
        "strategy's MarketFeed.quotes() yields its quote: the market hub's WebSocket "
        f"push, the leader's XADD, the strategy's XREAD BLOCK and decode; {setup}",
        samples,
    )
    floor = results.latency(
        "market.hop_floor",
        scenario,
        f"one Redis stream hop at the same rate: XADD until XREAD BLOCK returns it, in the "
        f"same strategy processes; {setup}",
        hops,
    )
    results.latency(
        "market.price_request",
        scenario,
        "the POST /_sim/price itself (the quote is pushed within it), for scale",
        drove["post_ms"],
    )
    results.scalar("market.rate", scenario, f"quotes/s achieved, {setup}", drove["rate"], "/s")
    if floor.p50 and figure.p50 is not None:
        results.scalar(
            "market.fanout_floor_ratio",
            scenario,
            "fan-out p50 / one-hop floor p50",
            figure.p50 / floor.p50,
            "ratio",
        )
    bench.stop_all()
    return (
        f"p50 {_ms(results, figure.key)}, p95 {_ms(results, figure.key, 'p95')}; "
        f"one hop p50 {_ms(results, floor.key)}"
    )


def _stat_of(results: Results, key: str, stat: str) -> float | None:
    figure = results.figure(key)
    value: float | None = None if figure is None else getattr(figure, stat)
    return value


SCENARIOS: Final[tuple[tuple[str, str, Callable[[Bench, Sizes, Results], str]], ...]] = (
    ("floor", "floor", floor),
    ("ours", "ours, sequential", ours),
    ("direct", "direct", direct),
    ("arq", "arq", arq),
    ("throughput", "throughput", throughput),
    ("soak", "memory and soak", soak),
    ("peers", "peers", peers.peers),
    ("burst", "burst at the rate limit", limits.burst),
    ("sustained", "sustained at the rate limit", limits.sustained),
    ("requests", "requests per new order", limits.per_order),
    ("lifecycle", "fills to events()", fills),
    ("market", "market data fan-out", fanout),
)
"""(name for ``--only``, title, scenario), in the order they run."""


def run_all(bench: Bench, sizes: Sizes, results: Results, only: Set[str] | None = None) -> None:
    """Every scenario (or those named in ``only``) in order, a progress line around each."""
    chosen = [s for s in SCENARIOS if only is None or s[0] in only]
    for index, (_, title, scenario) in enumerate(chosen, start=1):
        progress(f"{index}/{len(chosen)} {title}: starting")
        started = time.monotonic()
        summary = scenario(bench, sizes, results)
        progress(f"{index}/{len(chosen)} {title}: {summary} ({time.monotonic() - started:.1f} s)")
