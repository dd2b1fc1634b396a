"""``order-worker listen``: the hubs' listener (the user hub, the market-data feed), normally
started by ``order-worker run`` beside each worker; alone, for a fleet whose workers do not
listen themselves."""

from __future__ import annotations

import argparse
import asyncio
import logging

from worker.ops.args import positive
from worker.settings import Settings


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``listen`` command."""
    listen = commands.add_parser(
        "listen",
        help="listen to the gateway's hubs for the fleet (run starts one per worker)",
        description="Compete for the fleet's user-hub lease and, while holding it, keep every "
        "account's mirror and events in Redis (see the README, 'After accepted'); compete for "
        "the market-hub lease and, while holding it, publish the market data strategies ask "
        "for, and answer their bar history requests (see 'Market data'). "
        "order-worker run starts one beside each worker by itself; run this alone only "
        "for workers started with PROJECTX_USER_HUB=off and PROJECTX_MARKET_HUB=off. "
        "Configured from the environment like run. Stops cleanly (giving the leases back) "
        "on SIGTERM or Ctrl-C.",
    )
    listen.add_argument(
        "--parent",
        type=positive,
        help="stop when this process (the worker that started it) is gone",
    )
    listen.set_defaults(handler=_listen)


def _listen(args: argparse.Namespace) -> int:
    from worker.mirror.service import listen
    from worker.ops import logs
    from worker.ops.run import use_uvloop

    settings = Settings.from_env()
    settings.require_credentials()
    logs.configure(
        settings.log_level,
        json_lines=None if settings.log_format == "auto" else settings.log_format == "json",
    )
    use_uvloop()
    try:
        asyncio.run(listen(settings, parent=args.parent))
    except Exception:
        logging.getLogger("worker.mirror").critical("listener stopped by an error", exc_info=True)
        raise
    return 0
