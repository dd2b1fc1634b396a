"""``order-worker acl``: least-privilege Redis ACL users for strategies, workers, operators.

Redis's own ACLs decide who may touch which key; nothing here checks anything at run
time. This module only writes the rules, once, for the three roles:

- a **strategy** (``OrderClient(..., name=...)``): add intents to the stream, queue
  follow-ups of its own accounts' orders, read and trim its own reply streams
  (``<prefix>:reply:<name>-*``), read stored results, and read its own accounts' mirror
  and events; nothing else (no other client's replies, no kill switch, no results of its
  own making, no other account's events, no key listing, no admin command);
- a **worker**: every key of the deployment and arq's, every command but the dangerous
  ones (``FLUSHALL``, ``CONFIG``, ``KEYS``, ``DEBUG``, ``SHUTDOWN``, ...; ``INFO`` is
  given back, arq needs it);
- an **operator** (the CLI): the same as a worker, as a user of its own (so its password
  can be rotated and its commands told apart in ``ACL LOG``).

What it cannot close while every account shares one intents stream: a strategy's user
can add an intent for any account, and read a stored result whose request ID it knows.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Final

from ow_core.keys import CLIENT_NAME, DEFAULT_PREFIX, Keys
from producer.errors import InvalidConfig
from producer.validation import check_account_id
from worker.ops.args import account

# redis-py also names its library on each connection (CLIENT SETINFO, Redis 7.2+) and
# carries on when that is refused: not granted.
_CONNECT: Final = ("+ping",)


def strategy_rules(name: str, accounts: Sequence[int], prefix: str = DEFAULT_PREFIX) -> list[str]:
    """``ACL SETUSER`` rules (after the user name) for a strategy's user."""
    if not CLIENT_NAME.fullmatch(name):
        raise ValueError(f"a strategy's name is 1-40 letters, digits or _, got {name!r}")
    if not accounts:
        raise ValueError("a strategy's user needs at least one account")
    keys = Keys(prefix)
    own = [check_account_id(a) for a in accounts]
    reading = [f"%R~{keys.result('*')}", *(f"%R~{keys.account_keys(a)}" for a in own)]
    queues = [f"~{keys.order_queues(a)}" for a in own]
    return [
        "reset",
        "on",
        "resetchannels",
        # Its own reply streams (read, trimmed as read, deleted on close); results and its
        # accounts' mirror and events read-only.
        f"~{keys.replies_of(name)}",
        *reading,
        *_CONNECT,
        "+xread",
        "+xtrim",
        "+del",
        "+get",
        "+xrevrange",
        "+hget",
        "+hvals",
        "+exists",
        # The intents stream: add only.
        f"(~{keys.intents} +xadd)",
        # A follow-up is one script: add the intent and queue it under its order. The
        # script's own commands are checked against these rules too.
        f"(~{keys.intents} {' '.join(queues)} +evalsha +eval)",
        f"({' '.join(queues)} +rpush +expire)",
    ]


def service_rules(prefix: str = DEFAULT_PREFIX) -> list[str]:
    """``ACL SETUSER`` rules for a worker's (or an operator's) user."""
    return [
        "reset",
        "on",
        "resetchannels",
        f"~{prefix}:*",
        "~arq:*",  # arq's job, result and in-progress keys carry no prefix of ours
        "+@all",
        "-@dangerous",
        "+info",
    ]


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``acl`` command."""
    acl = commands.add_parser(
        "acl",
        help="print the Redis ACL rules of a strategy's, a worker's or an operator's user",
        description="Print an `ACL SETUSER` command with least-privilege rules for one user "
        "(see the README's ACL set-up). Add the password yourself: `>password`, or "
        "`#<sha256 of it>`.",
    )
    acl.add_argument("role", choices=("strategy", "worker", "operator"))
    acl.add_argument("user", help="the ACL user name (a strategy's is also its client name)")
    acl.add_argument(
        "--account",
        type=account,
        action="append",
        default=[],
        help="a strategy's account (repeat for each)",
    )
    acl.add_argument("--prefix", default=DEFAULT_PREFIX, help="Redis key prefix (default: ow)")
    acl.set_defaults(handler=_print)


def _print(args: argparse.Namespace) -> int:
    if args.role == "strategy":
        try:
            rules = strategy_rules(args.user, args.account, args.prefix)
        except ValueError as error:
            raise InvalidConfig(str(error)) from None
    else:
        rules = service_rules(args.prefix)
    print(" ".join(["ACL", "SETUSER", args.user, *rules]))
    return 0
