"""Prometheus metrics and the health endpoint, on ``METRICS_PORT`` (off when unset).

``GET /metrics`` serves the worker's registry (its own, not the process-global one, so
tests and several workers in one process never mix); ``GET /healthz`` answers 200 or 503
with the health report as JSON.
"""

from __future__ import annotations

from typing import Final

import msgspec
from aiohttp import web
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from producer.contract import OrderResult
from worker.observe import Observer
from worker.ops.health import HealthState

# Milliseconds, from a fraction of a millisecond (our queue) to seconds (a slow broker).
_MS_BUCKETS: Final = (0.25, 0.5, 1, 2, 3, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)


class PrometheusObserver(Observer):
    """The worker's metrics."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.intents = Counter(
            "orderworker_intents",
            "Intents finished, by kind and status",
            ["kind", "status"],
            registry=r,
        )
        self.broker_requests = Counter(
            "orderworker_broker_requests",
            "HTTP requests to the broker, by endpoint and status code (or failure kind)",
            ["endpoint", "status"],
            registry=r,
        )
        self.retries = Counter(
            "orderworker_broker_retries", "Broker requests sent again", ["endpoint"], registry=r
        )
        self.queue_ms = Histogram(
            "orderworker_queue_wait_ms",
            "From creation to pick-up",
            ["kind"],
            buckets=_MS_BUCKETS,
            registry=r,
        )
        self.broker_ms = Histogram(
            "orderworker_broker_ms",
            "Time at the broker per intent",
            ["kind"],
            buckets=_MS_BUCKETS,
            registry=r,
        )
        self.end_to_end_ms = Histogram(
            "orderworker_end_to_end_ms",
            "From creation to the result written",
            ["kind"],
            buckets=_MS_BUCKETS,
            registry=r,
        )
        self.in_flight_now = Gauge("orderworker_in_flight", "Intents executing now", registry=r)
        self.reclaims = Counter(
            "orderworker_reclaims", "Entries taken over from stopped workers", registry=r
        )
        self.dead_letters = Counter("orderworker_dead_letters", "Entries dead-lettered", registry=r)
        self.redis_errors = Counter(
            "orderworker_redis_errors",
            "Redis commands that failed for want of a connection",
            ["where"],
            registry=r,
        )

    def intent_finished(self, result: OrderResult) -> None:
        self.intents.labels(result.kind, result.status).inc()
        self.queue_ms.labels(result.kind).observe(result.queued_ms)
        self.broker_ms.labels(result.kind).observe(result.broker_ms)
        self.end_to_end_ms.labels(result.kind).observe(result.queued_ms + result.worker_ms)

    def broker_request(self, endpoint: str, outcome: str, seconds: float) -> None:
        self.broker_requests.labels(endpoint, outcome).inc()

    def broker_retry(self, endpoint: str) -> None:
        self.retries.labels(endpoint).inc()

    def redis_trouble(self, where: str) -> None:
        self.redis_errors.labels(where).inc()

    def reclaimed(self, deliveries: int) -> None:
        self.reclaims.inc()

    def dead_lettered(self, reason: str) -> None:
        self.dead_letters.inc()

    def in_flight(self, count: int) -> None:
        self.in_flight_now.set(count)


def metrics_app(metrics: PrometheusObserver, health: HealthState) -> web.Application:
    """``/metrics`` and ``/healthz``."""

    async def serve_metrics(_: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def serve_health(_: web.Request) -> web.Response:
        report = health.report()
        return web.Response(
            body=msgspec.json.encode(report),
            status=200 if report.healthy else 503,
            content_type="application/json",
        )

    app = web.Application()
    app.router.add_get("/metrics", serve_metrics)
    app.router.add_get("/healthz", serve_health)
    return app


async def serve(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Start serving; the caller cleans the runner up on shutdown."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
