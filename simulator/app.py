"""The aiohttp application: the gateway's HTTP conventions wrapped around `Gateway`.

Every /api request goes through one pipeline (`_api_handler`), in this order:
latency → Bearer auth (401) → body decoding (400) → rate limit (429) → injected error (500)
→ stall → the Gateway call → commit-then-fail (500 or dropped connection) → JSON answer.
The /_sim/* endpoints are for tests and benchmarks: no auth, no rate limit, no faults.
The real-time hubs (/hubs/user, /hubs/market) are simulator/hubs.py; they are the
Simulator's publisher.
"""

import asyncio
import contextlib
import dataclasses
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import msgspec
from aiohttp import hdrs, web

from simulator.config import SimConfig
from simulator.faults import AfterCommit, FaultConfig, merge_faults, plan_request
from simulator.gateway import ANONYMOUS, ENDPOINTS, Caller, Endpoint, Gateway
from simulator.hubs import HubServer
from simulator.publish import Fanout, NoPublisher, Publisher
from simulator.ratelimit import SlidingWindowLimiter
from simulator.views import order_model
from simulator.wire import (
    ENCODER,
    Envelope,
    LoginApiKeyRequest,
    NoBody,
    SimPriceRequest,
    Wire,
    validation_problem,
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_NO_BODY = NoBody()


@dataclasses.dataclass(slots=True)
class Stats:
    """Counters served by GET /_sim/stats (the Gateway adds logins and validations)."""

    requests: int = 0  # every /api request except ping
    rate_limited: int = 0  # 429s sent
    errors_injected: int = 0  # 500s sent instead of processing
    commit_then_fail: int = 0  # processed, then answered 500 or dropped
    stalls: int = 0
    endpoints: dict[str, int] = dataclasses.field(default_factory=dict)

    def count(self, path: str) -> None:
        """Count one request to `path`."""
        self.requests += 1
        self.endpoints[path] = self.endpoints.get(path, 0) + 1


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Simulator:
    """Everything one running simulator holds; lives on the app under SIMULATOR.

    `publisher` receives every change of the venue (None: nobody listens). `clock` is what
    every request and control reads the time from; tests may replace it.
    """

    def __init__(self, config: SimConfig, publisher: Publisher | None = None) -> None:
        self.config = config
        self.clock: Callable[[], datetime] = _utc_now
        self.publisher: Publisher = publisher if publisher is not None else NoPublisher()
        # Separate streams, so injected faults do not change the simulated prices.
        seeds = random.Random(config.seed)
        today = config.trading_date or self.clock().date()
        self.gateway = Gateway(config, random.Random(seeds.getrandbits(64)), today, self.publisher)
        self.fault_rng = random.Random(seeds.getrandbits(64))
        self.faults = config.faults
        self.limiter = SlidingWindowLimiter()
        self.stats = Stats()
        self._stalled: set[asyncio.Task[Envelope]] = set()

    @property
    def faults(self) -> FaultConfig:
        """The fault settings in force."""
        return self._faults

    @faults.setter
    def faults(self, value: FaultConfig) -> None:
        self._faults = value
        self.gateway.book.max_fill_size = value.max_fill_size

    async def stalled(self, seconds: float, process: Callable[[], Envelope]) -> Envelope:
        """`process()` run after `seconds`, even if the client disconnects meanwhile.

        The point of a stall is a request that takes effect after its client gave up, so
        the wait runs in its own task: cancelling the handler (aiohttp's test server does on
        disconnect) does not cancel it. The set keeps a strong reference until it is done.
        """

        async def later() -> Envelope:
            await asyncio.sleep(seconds)
            return process()

        task = asyncio.create_task(later())
        self._stalled.add(task)
        task.add_done_callback(self._stalled.discard)
        return await asyncio.shield(task)

    def reset(self) -> None:
        """Back to a fresh start, except that tokens stay valid so running clients carry on."""
        self.gateway.reset()
        self.faults = self.config.faults
        self.limiter.reset()
        self.stats = Stats()

    def stats_json(self) -> dict[str, Any]:
        """The counters as GET /_sim/stats returns them."""
        counters = dataclasses.asdict(self.stats)
        counters["logins"] = self.gateway.logins
        counters["validations"] = self.gateway.validations
        return counters


SIMULATOR = web.AppKey("simulator", Simulator)


def _json(value: object, status: int = 200) -> web.Response:
    return web.Response(body=ENCODER.encode(value), status=status, content_type="application/json")


def _caller(request: web.Request, sim: Simulator) -> Caller | None:
    scheme, _, token = request.headers.get(hdrs.AUTHORIZATION, "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    user = sim.gateway.tokens.user_of(token, time.time())
    return None if user is None else Caller(user=user, token=token)


def _unauthorized() -> web.Response:
    # docs/gateway.md §1: ASP.NET's JwtBearer challenge, an empty body clients must not parse.
    return web.Response(status=401, headers={hdrs.WWW_AUTHENTICATE: "Bearer"})


def _too_many_requests(retry_after_s: int | None) -> web.Response:
    # §7: the gateway documents no Retry-After and no body; the header is opt-in here.
    headers = {} if retry_after_s is None else {hdrs.RETRY_AFTER: str(retry_after_s)}
    return web.Response(status=429, headers=headers)


def _bad_request(error: msgspec.MsgspecError | None) -> web.Response:
    return web.Response(
        body=validation_problem(error), status=400, content_type="application/problem+json"
    )


def _api_handler(endpoint: Endpoint[Any]) -> Handler:
    """The aiohttp handler of one gateway endpoint."""
    decoder = msgspec.json.Decoder(endpoint.request)
    takes_body = endpoint.request is not NoBody

    async def handle(request: web.Request) -> web.StreamResponse:
        sim = request.app[SIMULATOR]
        sim.stats.count(endpoint.path)
        plan = plan_request(sim.faults, endpoint.path, endpoint.mutates_orders, sim.fault_rng)
        if plan.delay_s:
            await asyncio.sleep(plan.delay_s)

        caller = ANONYMOUS
        if endpoint.authenticated:
            found = _caller(request, sim)
            if found is None:
                return _unauthorized()
            caller = found

        body: Wire = _NO_BODY
        if takes_body:
            raw = await request.read()
            if not raw:
                return _bad_request(None)
            try:
                body = decoder.decode(raw)
            except msgspec.MsgspecError as exc:
                return _bad_request(exc)

        # loginKey has no token yet, so it is counted under the user name it logs in as.
        user = body.user_name if isinstance(body, LoginApiKeyRequest) else caller.user
        if not sim.limiter.allow(user, endpoint.path, sim.faults.rate_limit, time.monotonic()):
            sim.stats.rate_limited += 1
            return _too_many_requests(sim.config.retry_after_s)

        if plan.fail:
            sim.stats.errors_injected += 1
            return web.Response(status=500)

        def process() -> Envelope:
            return endpoint.call(sim.gateway, body, caller, sim.clock())

        if plan.stall_s:
            sim.stats.stalls += 1
            answer = await sim.stalled(plan.stall_s, process)
        else:
            answer = process()

        if plan.after_commit is not None:
            sim.stats.commit_then_fail += 1
            if plan.after_commit is AfterCommit.DROP and request.transport is not None:
                # The client sees the connection close with no answer at all.
                request.transport.abort()
            return web.Response(status=500)
        return _json(answer)

    return handle


async def _ping(request: web.Request) -> web.Response:
    # §1: "Returns a "pong"", a string in the spec: the JSON string, as ASP.NET sends one.
    # Simulator choice: never delayed, faulted or rate-limited.
    return _json("pong")


@web.middleware
async def _gateway_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A path or method the gateway does not serve gets ASP.NET's answer: no body at all."""
    try:
        return await handler(request)
    except web.HTTPNotFound:
        return web.Response(status=404)
    except web.HTTPMethodNotAllowed as exc:
        return web.Response(
            status=405, headers={hdrs.ALLOW: ", ".join(sorted(exc.allowed_methods))}
        )


async def _sim_get_price(request: web.Request) -> web.Response:
    sim = request.app[SIMULATOR]
    query = request.query
    found = sim.gateway.sim_contract(query.get("contractId"), query.get("symbol"))
    if isinstance(found, str):
        return _json({"error": found}, status=400)
    return _json(sim.gateway.sim_price(found.id))


async def _sim_set_price(request: web.Request) -> web.Response:
    sim = request.app[SIMULATOR]
    try:
        body = msgspec.json.decode(await request.read(), type=SimPriceRequest)
    except msgspec.MsgspecError as exc:
        return _json({"error": str(exc)}, status=400)
    answer = sim.gateway.set_price(body, sim.clock())
    if isinstance(answer, str):
        return _json({"error": answer}, status=400)
    return _json(answer)


async def _sim_orders(request: web.Request) -> web.Response:
    orders = request.app[SIMULATOR].gateway.book.orders()
    return _json([order_model(o) for o in orders])


async def _sim_stats(request: web.Request) -> web.Response:
    return _json(request.app[SIMULATOR].stats_json())


async def _sim_get_faults(request: web.Request) -> web.Response:
    return _json(request.app[SIMULATOR].faults)


async def _sim_set_faults(request: web.Request) -> web.Response:
    sim = request.app[SIMULATOR]
    try:
        sim.faults = merge_faults(sim.faults, await request.read())
    except msgspec.MsgspecError as exc:
        return _json({"error": str(exc)}, status=400)
    return _json(sim.faults)


async def _sim_reset(request: web.Request) -> web.Response:
    request.app[SIMULATOR].reset()
    return _json({"reset": True})


def _random_walk(sim: Simulator) -> Callable[[web.Application], AsyncIterator[None]]:
    """The seeded random walk of `--random-walk-ms`, as a background task of the app."""

    async def walk() -> None:
        interval = sim.config.random_walk_ms / 1000
        while True:
            await asyncio.sleep(interval)
            sim.gateway.book.walk(sim.gateway.rng, sim.clock())

    async def run(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(walk())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return run


def create_app(
    config: SimConfig | None = None, publisher: Publisher | None = None
) -> web.Application:
    """A ready-to-run simulator application; its state is `app[SIMULATOR]`.

    The venue's changes go to the real-time hubs, and also to `publisher` if one is given.
    """
    config = config or SimConfig()
    hubs = HubServer(config.hubs)
    sim = Simulator(config, hubs if publisher is None else Fanout((hubs, publisher)))
    hubs.attach(sim.gateway.tokens, lambda: sim.faults)
    app = web.Application(middlewares=[_gateway_errors])
    app[SIMULATOR] = sim
    if sim.config.random_walk_ms > 0:
        app.cleanup_ctx.append(_random_walk(sim))
    hubs.add_routes(app.router)
    app.on_shutdown.append(hubs.shutdown)
    for endpoint in ENDPOINTS:
        app.router.add_post(endpoint.path, _api_handler(endpoint))
    app.router.add_get("/api/Status/ping", _ping)
    app.router.add_get("/_sim/price", _sim_get_price)
    app.router.add_post("/_sim/price", _sim_set_price)
    app.router.add_get("/_sim/orders", _sim_orders)
    app.router.add_get("/_sim/stats", _sim_stats)
    app.router.add_get("/_sim/faults", _sim_get_faults)
    app.router.add_post("/_sim/faults", _sim_set_faults)
    app.router.add_post("/_sim/reset", _sim_reset)
    return app
