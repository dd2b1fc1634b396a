"""``order-worker``: run a worker, run the demo, submit, record and replay intents, watch the
fleet's status, follow an account's lifecycle and a symbol's market data, deal with dead
letters, halt and resume, pin contracts.

Each command is defined by the module that does its work (its ``add_parser``); this one
only puts them together and turns the project's errors into one line and an exit code.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ow_core.redis_down import REDIS_ERRORS, is_redis_down
from producer.errors import OrderError
from worker.local import demo
from worker.ops import (
    acl,
    controls,
    deadletters,
    intents,
    lifecycle,
    listen,
    market,
    run,
    status,
)
from worker.ops.args import Handler, target
from worker.settings import ConfigError


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``order-worker`` console script."""
    args = parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except (ConfigError, OrderError) as error:
        print(f"order-worker: {error}", file=sys.stderr)
        return 2
    except REDIS_ERRORS as error:
        if not is_redis_down(error):
            raise
        where = target(args).describe()
        print(f"order-worker: cannot reach Redis at {where}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def parser() -> argparse.ArgumentParser:
    """The whole command line."""
    top = argparse.ArgumentParser(
        prog="order-worker",
        description="Redis-stream order worker for the ProjectX Gateway (TopstepX).",
        epilog="Configuration comes from environment variables; see the README.",
    )
    commands = top.add_subparsers(title="commands", required=True, metavar="COMMAND")
    for module in (
        run, listen, demo, intents, status, lifecycle, market, deadletters, controls, acl,
    ):  # fmt: skip
        module.add_parser(commands)
    return top
