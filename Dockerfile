# One image for the whole package: `order-worker` (the worker and its operator commands)
# and `order-sim` (the broker simulator). docker-compose.yml runs both.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# Only what the package is built from (pyproject.toml names README.md as its readme).
COPY pyproject.toml README.md ./
COPY producer ./producer
COPY worker ./worker
COPY simulator ./simulator
RUN pip install . && rm -rf /src

# A worker needs no privileges: it only talks to Redis and the broker over the network.
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin orderworker
USER 10001
# Writable by that user, for files of `order-worker record` and `replay`.
WORKDIR /tmp

# Exec form, so the worker is PID 1 and gets SIGTERM from `docker stop` directly: it
# stops reading, drains the intents in flight (WORKER_DRAIN_TIMEOUT_S) and exits.
ENTRYPOINT ["order-worker"]
CMD ["run"]
# The worker's own verdict, from its heartbeat in Redis: alive, and not cut off from Redis
# or the broker for HEALTH_MAX_OUTAGE_S. (Services running this image as something else,
# like the simulator, turn it off in docker-compose.yml.)
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s CMD ["order-worker", "health"]
