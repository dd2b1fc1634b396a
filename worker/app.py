"""arq wiring, kept thin: one worker process is an arq ``Worker`` plus our stream consumer.

The hot path is the consumer (``consumer.py``), not arq's job queue, which polls a sorted
set (0.5 s by default). arq carries what it is good at: deferred jobs (cancelling a
good-til-time order) and cron (token renewal, trimming, forgetting dead consumers).

``on_startup`` makes the process's resources once and keeps them in arq's ``ctx``: one
Redis client, one aiohttp session, the broker client, the ledger, the executor and the
consumer. ``on_shutdown`` stops reading, drains what is in flight (bounded) and closes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

import arq.worker
import msgspec
import redis.exceptions
from aiohttp import web
from arq.connections import ArqRedis, RedisSettings
from arq.cron import cron
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from ow_core.aio import cancel_and_wait
from ow_core.connect import RedisTarget
from ow_core.redis_down import REDIS_ERRORS, is_redis_down
from producer.contract import ENCODER, CancelOrder, PlaceOrder
from worker.broker.client import GatewayClient
from worker.broker.errors import BrokerError
from worker.broker.transport import make_session
from worker.consumer import Consumer
from worker.executor import Executor, ExecutorConfig
from worker.fleet.client import fleet_broker
from worker.fleet.risk import RiskGate
from worker.housekeeping import forget_idle_consumers, trim_intents
from worker.ledger import Ledger
from worker.mirror.exposure import MirrorExposure
from worker.mirror.service import ListenerProcess
from worker.observe import Observer, Observers
from worker.ops.health import HealthState
from worker.ops.logs import LogObserver
from worker.ops.metrics import PrometheusObserver, metrics_app
from worker.ops.metrics import serve as serve_metrics
from worker.settings import ConfigError, Settings

log = logging.getLogger("worker.app")

# How long the scheduled cancel of a good-til-time order may take before it is refused.
_GTT_CANCEL_DEADLINE_S: Final = 30
_PLACE_DECODER: Final = msgspec.json.Decoder(PlaceOrder)
# How long each of arq's own closing steps may take before it is abandoned.
_ARQ_STEP_S: Final = 1.0


async def bounded(work: Awaitable[Any], seconds: float, what: str) -> None:
    """Run ``work`` for at most ``seconds``; a failure or a timeout is logged, not raised
    (for the steps of stopping, each of which would otherwise be able to hold it up)."""
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait([task], timeout=seconds)
    if not done:
        await cancel_and_wait([task])
        log.warning("%s: gave up after %.1f s", what, seconds)
    elif not task.cancelled() and task.exception() is not None:
        log.warning("%s: %s", what, task.exception())


class Worker(arq.worker.Worker):
    """arq's worker, made to ride out Redis outages and to stop within its bound.

    arq's poll loop has no error handling of its own, and redis-py can raise a connection
    error when it takes a pooled connection (outside its own retry): without this a
    restart or a reset connection to Redis would end the process. And arq's ``close``
    retries deleting its health-check key for about two minutes when Redis is gone (and
    fails outright when it cancelled a job that was running): here every step of closing
    is bounded, and the shutdown (our drain) always runs.
    ``order-worker run`` uses this class; plain ``arq worker.WorkerSettings`` uses arq's.
    """

    async def close(self) -> None:
        if not self._handle_signals:
            self.handle_sig(signal.SIGUSR1)
        if not self._pool:
            return
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        # The health-check key expires by itself (health_check_interval + 1 s).
        await bounded(self.pool.delete(self.health_check_key), _ARQ_STEP_S, "arq health key")
        if self.on_shutdown:
            await self.on_shutdown(self.ctx)
        await bounded(self.pool.close(close_connection_pool=True), _ARQ_STEP_S, "arq pool")
        self._pool = None

    def handle_sig(self, signum: signal.Signals) -> None:
        super().handle_sig(signum)
        # arq cancels its poll loop once; on Python 3.11 redis-py can absorb a cancel that
        # lands inside its asyncio.timeout(0), and the worker would then never stop. Keep
        # cancelling until the loop has really ended (ow_core.aio.cancel_and_wait).
        if self.main_task is not None:
            self._stopper = asyncio.ensure_future(cancel_and_wait([self.main_task]))

    async def _poll_iteration(self) -> None:
        try:
            await super()._poll_iteration()
        except REDIS_ERRORS as error:
            if not is_redis_down(error):
                raise
            log.warning("arq poll failed (%s); polling again", error)
            await asyncio.sleep(0.5)


async def startup(ctx: dict[str, Any]) -> None:
    """Open the process's resources and start consuming."""
    settings: Settings = ctx["settings"]
    health = HealthState(settings.health_max_outage_s)
    metrics = PrometheusObserver() if settings.metrics_port is not None else None
    if metrics is not None:
        # First: a port that cannot be served stops the worker before it takes any work.
        ctx["metrics_runner"] = await _serve_metrics(settings, metrics, health)
    redis = settings.redis.client(
        # A blocking XREADGROUP must never hit the socket timeout.
        socket_timeout=settings.block_ms / 1000 + 5,
        socket_connect_timeout=2,
        health_check_interval=30,
    )
    observer = Observers([LogObserver(), health, *([metrics] if metrics else [])])
    session = make_session(connections=max(100, settings.max_in_flight * 2))
    broker = fleet_broker(settings, session, redis, observer)
    consumer: Consumer | None = None

    def track(entry_id: str, request_id: str) -> None:
        if consumer is not None:
            consumer.track(entry_id, request_id)

    ledger = Ledger(
        redis,
        settings.keys,
        consumer=settings.worker_name,
        lease_ms=settings.lease_ms,
        result_ttl_s=settings.result_ttl_s,
        reply_maxlen=settings.reply_maxlen,
        budget=settings.budget,
        lane=settings.redis.lane(timeout=settings.block_ms / 1000 + 5),
    )
    executor = _executor(settings, broker, ledger, redis, ctx["redis"], track, observer)
    consumer = Consumer(
        redis,
        settings.keys,
        executor,
        ledger,
        name=settings.worker_name,
        max_in_flight=settings.max_in_flight,
        block_ms=settings.block_ms,
        claim_idle_ms=settings.claim_idle_ms,
        claim_interval_ms=settings.claim_interval_ms,
        max_deliveries=settings.max_deliveries,
        lease_ms=settings.lease_ms,
        observer=observer,
        health=health.report,
        redis_target=settings.redis,
    )
    ctx.update(
        stream_redis=redis, session=session, broker=broker, executor=executor, consumer=consumer
    )
    await warm_up(broker, settings)
    if settings.user_hub or settings.market_hub:
        ctx["listener"] = await ListenerProcess.start()
    # Everything made so far lives as long as the process: keep it out of the cyclic
    # garbage collector's scans, which otherwise pause the hot path now and then.
    gc.freeze()
    await consumer.start()


async def _serve_metrics(
    settings: Settings, metrics: PrometheusObserver, health: HealthState
) -> web.AppRunner:
    host, port = settings.metrics_host, settings.metrics_port
    assert port is not None
    try:
        runner = await serve_metrics(metrics_app(metrics, health), host, port)
    except OSError as error:
        raise ConfigError(f"METRICS_PORT {port} on {host} cannot be served: {error}") from None
    log.info("metrics on http://%s:%d/metrics", host, port)
    return runner


def _executor(
    settings: Settings,
    broker: GatewayClient,
    ledger: Ledger,
    redis: Redis,
    arq_redis: ArqRedis,
    track: Callable[[str, str], None],
    observer: Observer,
) -> Executor:
    """The executor, scheduling good-til-time cancels as arq jobs."""

    async def schedule_cancel(intent: PlaceOrder, order_id: int) -> None:
        await arq_redis.enqueue_job(
            "cancel_after",
            ENCODER.encode(intent).decode(),
            order_id,
            _job_id=f"gtt:{intent.request_id}",
            _defer_by=timedelta(seconds=intent.cancel_after or 0),
        )

    return Executor(
        broker,
        ledger,
        settings.keys,
        ExecutorConfig(
            worker_name=settings.worker_name,
            retry=settings.retry,
            tag_max_len=settings.tag_max_len,
            duplicate_tag_code=settings.duplicate_tag_code,
            resolve_timeout_s=settings.resolve_timeout_s,
            order_lookback_h=settings.order_lookback_h,
            close_settle_s=settings.close_settle_s,
        ),
        schedule_cancel=schedule_cancel,
        track=track,
        risk=None
        if settings.risk.empty
        else RiskGate(
            settings.risk,
            redis,
            settings.keys,
            broker,
            MirrorExposure(redis, settings.keys) if settings.user_hub else None,
        ),
        observer=observer,
    )


async def warm_up(broker: GatewayClient, settings: Settings) -> None:
    """Log in and resolve the configured symbols now, not on the first order.

    A broker that is down at start-up does not stop the worker: intents then wait for it
    (or expire by their deadlines), and the first one logs in.
    """
    try:
        await broker.auth.ensure_token()
        for symbol in settings.warm_symbols:
            await broker.contracts.resolve(symbol)
    except BrokerError as error:
        log.warning("broker warm-up failed (%s); continuing", error)


async def shutdown(ctx: dict[str, Any]) -> None:
    """Stop taking entries, drain those in flight (bounded), close everything.

    Bounded as a whole, with Redis or the broker gone too: the drain takes at most
    ``WORKER_DRAIN_TIMEOUT_S``, handing back and each closing step a second or two.
    """
    settings: Settings = ctx["settings"]
    # The listener stops beside the drain, not before it: the drain's bound is the worker's.
    listener = (
        asyncio.ensure_future(bounded(ctx["listener"].stop(), _ARQ_STEP_S + 3, "hub listener"))
        if "listener" in ctx
        else None
    )
    consumer: Consumer | None = ctx.get("consumer")
    if consumer is not None:
        await bounded(
            consumer.stop(settings.drain_timeout_s), settings.drain_timeout_s + 5, "stopping"
        )
    if listener is not None:
        await listener
    if "metrics_runner" in ctx:
        await bounded(ctx["metrics_runner"].cleanup(), _ARQ_STEP_S, "metrics")
    if "session" in ctx:
        await bounded(ctx["session"].close(), _ARQ_STEP_S, "broker session")
    if "stream_redis" in ctx:
        await bounded(ctx["stream_redis"].aclose(), _ARQ_STEP_S, "Redis")


async def cancel_after(ctx: dict[str, Any], intent_json: str, order_id: int) -> str:
    """arq job: the good-til-time cancel of an order placed by ``intent_json``.

    Runs as a cancel intent with request ID ``<place request_id>:gtt`` through the same
    executor (so it is exactly-once too), answered on the place's reply stream. An order
    already filled or cancelled is reported as such. arq may run a job twice around a
    restart; a second cancel is answered from the stored result.
    """
    place = _PLACE_DECODER.decode(intent_json)
    now = int(time.time() * 1000)
    cancel = CancelOrder(
        request_id=f"{place.request_id}:gtt",
        reply_to=place.reply_to,
        account_id=place.account_id,
        created_at=now,
        deadline=now + _GTT_CANCEL_DEADLINE_S * 1000,
        order_id=order_id,
    )
    executor: Executor = ctx["executor"]
    await executor.execute(cancel, None)
    return cancel.request_id


async def renew_token(ctx: dict[str, Any]) -> None:
    """cron: renew the broker token ahead of its expiry, off the hot path (the fleet shares
    it, so one worker renews and the others pick the new one up)."""
    broker: GatewayClient = ctx["broker"]
    await broker.auth.ensure_token()


async def housekeeping(ctx: dict[str, Any]) -> None:
    """cron: trim acknowledged intents, forget long-idle consumers."""
    settings: Settings = ctx["settings"]
    redis: Redis = ctx["stream_redis"]
    await trim_intents(redis, settings.keys, settings.intents_retention_s)
    await forget_idle_consumers(redis, settings.keys)


def _arq_redis(target: RedisTarget) -> RedisSettings:
    """arq's connection settings for the same Redis (arq asks Sentinel itself)."""
    dsn = RedisSettings.from_dsn(target.url)
    # arq reads no options from the URL; TLS needs them (the CA to trust, a client cert).
    query = {name: values[-1] for name, values in parse_qs(urlsplit(target.url).query).items()}
    dsn = dataclasses.replace(
        dsn,
        ssl_ca_certs=query.get("ssl_ca_certs"),
        ssl_certfile=query.get("ssl_certfile"),
        ssl_keyfile=query.get("ssl_keyfile"),
        ssl_cert_reqs=query.get("ssl_cert_reqs", dsn.ssl_cert_reqs),
        ssl_check_hostname=query.get("ssl_check_hostname", "").lower() in ("1", "true", "yes"),
    )
    if not target.uses_sentinel:
        return dsn
    return dataclasses.replace(
        dsn, host=list(target.sentinels), sentinel=True, sentinel_master=target.sentinel_master
    )


def worker_settings(settings: Settings) -> dict[str, Any]:
    """arq ``Worker`` keyword arguments for these settings."""
    return {
        "functions": [cancel_after],
        "cron_jobs": [
            cron(renew_token, second={0, 30}, run_at_startup=False),
            cron(housekeeping, second=0, run_at_startup=True, unique=True),
        ],
        "on_startup": startup,
        "on_shutdown": shutdown,
        "redis_settings": dataclasses.replace(
            _arq_redis(settings.redis),
            # arq's own polling loop has no reconnect logic of its own: without these a
            # Redis restart would end the worker process.
            retry=Retry(ExponentialBackoff(cap=2.0, base=0.1), 60),
            # OSError too: redis-py retries a refused connect only when told to.
            retry_on_error=[
                redis.exceptions.ConnectionError,
                redis.exceptions.TimeoutError,
                OSError,
            ],
            retry_on_timeout=True,
        ),
        "queue_name": f"{settings.key_prefix}:arq",
        "health_check_key": f"{settings.key_prefix}:arq:health:{settings.worker_name}",
        "ctx": {"settings": settings},
        "health_check_interval": 30,
        "max_jobs": 10,
        "job_timeout": 120,
        "keep_result": 3600,
    }
