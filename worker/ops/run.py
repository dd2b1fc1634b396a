"""``order-worker run``: one worker process, configured from the environment."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os

from ow_core.urls import DEFAULT_REDIS_URL
from producer.errors import OrderError
from worker.settings import Settings


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``run`` command."""
    run = commands.add_parser(
        "run",
        help="run one worker process (configured from the environment)",
        description="Run one worker: consume the intents stream and execute against the "
        "broker. Needs REDIS_URL, PROJECTX_BASE_URL, PROJECTX_USERNAME, PROJECTX_API_KEY "
        "(see the README for the rest). Stops cleanly on SIGTERM or Ctrl-C.",
    )
    run.set_defaults(handler=_run, redis_url=os.environ.get("REDIS_URL", DEFAULT_REDIS_URL))


def _run(args: argparse.Namespace) -> int:
    from worker.app import Worker, worker_settings
    from worker.ops import logs

    settings = Settings.from_env()
    # Where Redis is, for the one line that says it cannot be reached (worker.ops.cli).
    vars(args).update(
        redis_url=settings.redis_url,
        sentinels=settings.redis_sentinels,
        sentinel_master=settings.redis_sentinel_master,
    )
    settings.require_credentials()
    logs.configure(
        settings.log_level,
        json_lines=None if settings.log_format == "auto" else settings.log_format == "json",
    )
    log = logging.getLogger("worker")
    for name in settings.unknown_variables:
        log.warning("%s is not a setting of the worker and is ignored", name)
    use_uvloop()
    try:
        Worker(**worker_settings(settings)).run()
    except OrderError:
        raise  # a setting that cannot work (a port in use, ...): one line, exit 2
    except Exception:
        log.critical("worker stopped by an error", exc_info=True)
        raise
    return 0


def use_uvloop() -> None:
    """uvloop when installed: a faster event loop for the hot path."""
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
