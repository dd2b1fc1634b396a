"""``order-worker dead-letters list|retry|drop``: look at and deal with the dead-letter stream.

Each entry of ``<prefix>:dead`` has the fields ``entry`` (the intents-stream entry that
died) and ``record`` (a JSON ``DeadLetter``: why, how often it was delivered, its history
and the entry's original fields). ``retry`` puts the original intent back on the intents
stream as a new entry; ``drop`` deletes dead letters.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from importlib.resources import files
from typing import Final, TextIO

import msgspec
from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from ow_core.fastlane import Script
from ow_core.keys import ORDER_QUEUE_TTL_S, Keys

# The producer's own lifetime for an order's queue, so a retried follow-up's agrees with it.
from producer.contract import (
    ENCODER,
    CancelOrder,
    ClosePosition,
    Intent,
    ModifyOrder,
    PlaceOrder,
    decode_result,
    encode_intent,
)
from worker.attempt import kind_of
from worker.entries import Malformed, decode_entry, order_queue
from worker.ledger import DeadLetter
from worker.ops.args import positive, redis_options, seconds, with_redis
from worker.ops.status import duration, table, utc_time
from worker.settings import ConfigError

_PAGE: Final = 500
_ENTRY_ID: Final = re.compile(r"\d+-\d+")

_RETRY: Final = Script.from_files(files("worker.ops") / "retry_dead.lua")


class RetryArgs(msgspec.Struct, frozen=True, kw_only=True):
    """``retry_dead.lua``'s arguments."""

    dead_id: str
    version: str
    data: str
    force: bool
    follow_up: bool
    queue_ttl_s: int = ORDER_QUEUE_TTL_S


class ListedDeadLetter(DeadLetter, kw_only=True, frozen=True):
    """A dead letter with its own ID in the dead-letter stream (the ``--json`` line)."""

    id: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one dead letter asked to be retried or dropped."""

    id: str
    done: bool
    message: str


async def read(redis: Redis, keys: Keys, *, limit: int | None = None) -> list[ListedDeadLetter]:
    """The dead letters, oldest first (at most ``limit``)."""
    found: list[ListedDeadLetter] = []
    async for letter in _scan(redis, keys):
        if limit is not None and len(found) >= limit:
            break
        found.append(letter)
    return found


async def list_command(
    redis: Redis, keys: Keys, *, limit: int, as_json: bool, out: TextIO | None = None
) -> int:
    """Print the dead letters: a table, or one JSON object per line."""
    out = out if out is not None else sys.stdout
    letters = await read(redis, keys, limit=limit)
    total = await redis.xlen(keys.dead_letters)
    if as_json:
        for letter in letters:
            print(ENCODER.encode(letter).decode(), file=out)
        return 0
    if not letters:
        print(f"{keys.dead_letters}: no dead letters", file=out)
        return 0
    rows = [("id", "dead since", "request", "kind", "deliveries", "reason")]
    rows += [
        (
            letter.id,
            utc_time(letter.at) if letter.at else "?",
            letter.request_id or "-",
            _describe(_decode(letter, keys)),
            str(letter.deliveries),
            _shorten(letter.reason, 80),
        )
        for letter in letters
    ]
    for line in table(rows):
        print(line, file=out)
    more = total - len(letters)
    if more > 0:
        print(f"({more} more not shown; use --limit)", file=out)
    return 0


async def retry(
    redis: Redis,
    keys: Keys,
    ids: Sequence[str] | None,
    *,
    force: bool = False,
    deadline_s: float | None = None,
) -> list[Outcome]:
    """Put dead letters' intents back on the intents stream as new entries (``ids=None``:
    all of them) and remove them from the dead-letter stream.

    Refused, and left where they are: an entry that is not a valid intent (it would only
    die again); one whose request already has a stored result, unless ``force`` (which
    deletes that result); one whose deadline has passed, unless ``deadline_s`` gives it a
    new one that many seconds from now (a worker answers an intent past its deadline
    ``expired`` without sending it, and the dead letter would be gone).
    """
    script = redis.register_script(_RETRY.source)
    outcomes: list[Outcome] = []
    async for letter in _select(redis, keys, ids, outcomes):
        outcomes.append(await _retry_one(redis, script, keys, letter, force, deadline_s))
    return outcomes


async def _retry_one(
    redis: Redis,
    script: AsyncScript,
    keys: Keys,
    letter: ListedDeadLetter,
    force: bool,
    deadline_s: float | None,
) -> Outcome:
    intent = _decode(letter, keys)
    if isinstance(intent, Malformed):
        return Outcome(
            letter.id,
            False,
            f"{letter.id}: not retried: {_shorten(intent.reason, 120)}; retrying "
            "would only dead-letter it again, so drop it",
        )
    what = f"{letter.id}: request {intent.request_id} ({_describe(intent)})"
    now = int(time.time() * 1000)
    # Everything that stands in the way is said at once, not one flag per attempt.
    refusals = []
    if not force and (stored := await redis.get(keys.result(intent.request_id))):
        refusals.append(_answered(stored) + "; --force deletes that result")
    if deadline_s is None and intent.deadline <= now:
        refusals.append(
            f"its deadline passed {duration(now - intent.deadline)} ago, so a worker would "
            "answer it expired without sending it; --deadline SECONDS gives it a new one"
        )
    if refusals:
        return Outcome(letter.id, False, f"{what}: not retried: {'; '.join(refusals)}")
    if deadline_s is None:
        fields = _raw(letter)  # exactly the fields it had
    else:
        intent = msgspec.structs.replace(intent, deadline=now + int(deadline_s * 1000))
        fields = encode_intent(intent)
    queue = order_queue(intent, keys)
    args = RetryArgs(
        dead_id=letter.id,
        version=fields[b"v"].decode(),
        data=fields[b"d"].decode(),
        force=force,
        follow_up=queue is not None,
    )
    state, detail = await script(
        keys=[
            keys.intents,
            keys.dead_letters,
            keys.result(intent.request_id),
            queue or keys.intents,
        ],
        args=[msgspec.json.encode(args)],
    )
    if state == b"gone":
        return Outcome(letter.id, False, f"{letter.id}: not found (already gone)")
    if state == b"answered":
        # Answered between the check above and now.
        message = f"{what}: not retried: {_answered(detail)}; --force deletes that result"
        return Outcome(letter.id, False, message)
    return Outcome(letter.id, True, f"{what} retried as intents entry {detail.decode()}")


async def drop(redis: Redis, keys: Keys, ids: Sequence[str] | None) -> list[Outcome]:
    """Delete dead letters (``ids=None``: all of them, as read now; later arrivals stay)."""
    outcomes: list[Outcome] = []
    async for letter in _select(redis, keys, ids, outcomes):
        # XDEL answers 0 when another operator dropped or retried it in the meantime.
        if await redis.xdel(keys.dead_letters, letter.id):
            what = f"request {letter.request_id}" if letter.request_id else "no request ID"
            outcomes.append(
                Outcome(
                    letter.id, True, f"dropped {letter.id} ({what}: {_shorten(letter.reason, 80)})"
                )
            )
        else:
            outcomes.append(Outcome(letter.id, False, f"{letter.id}: not found (already gone)"))
    return outcomes


def report(outcomes: list[Outcome], *, out: TextIO | None = None) -> int:
    """Print outcomes (refusals on stderr); 0 if every one was done, 1 otherwise."""
    for outcome in outcomes:
        print(outcome.message, file=(out or sys.stdout) if outcome.done else sys.stderr)
    if not outcomes:
        print("no dead letters", file=out or sys.stdout)
    return 0 if all(outcome.done for outcome in outcomes) else 1


# --- reading -----------------------------------------------------------------------------


async def _scan(redis: Redis, keys: Keys) -> AsyncIterator[ListedDeadLetter]:
    cursor = "-"
    while True:
        page = await redis.xrange(keys.dead_letters, min=cursor, max="+", count=_PAGE)
        for entry_id, fields in page:
            yield _listed(entry_id.decode(), fields)
        if len(page) < _PAGE:
            return
        cursor = "(" + page[-1][0].decode()


async def _select(
    redis: Redis, keys: Keys, ids: Sequence[str] | None, outcomes: list[Outcome]
) -> AsyncIterator[ListedDeadLetter]:
    """The dead letters asked for; one not found becomes a refused outcome."""
    if ids is None:
        # Read the whole list first: retrying removes entries while we would be paging.
        for letter in [letter async for letter in _scan(redis, keys)]:
            yield letter
        return
    for entry_id in ids:
        if not _ENTRY_ID.fullmatch(entry_id):
            outcomes.append(
                Outcome(
                    entry_id, False, f"{entry_id}: not a stream entry ID (like 1712345678901-0)"
                )
            )
            continue
        found = await redis.xrange(keys.dead_letters, min=entry_id, max=entry_id)
        if not found:
            outcomes.append(Outcome(entry_id, False, f"{entry_id}: not in {keys.dead_letters}"))
            continue
        yield _listed(entry_id, found[0][1])


def _listed(entry_id: str, fields: dict[bytes, bytes]) -> ListedDeadLetter:
    try:
        letter = msgspec.json.decode(fields.get(b"record", b""), type=DeadLetter)
    except msgspec.DecodeError as error:
        # Written by hand or by another version: still listed, so it can be dropped.
        entry = fields.get(b"entry", b"?").decode(errors="replace")
        return ListedDeadLetter(id=entry_id, entry_id=entry, reason=f"unreadable record: {error}")
    return ListedDeadLetter(id=entry_id, **msgspec.structs.asdict(letter))


# --- text --------------------------------------------------------------------------------


def _describe(intent: Intent | Malformed) -> str:
    """``place MNQ BUY 1``, ``cancel 8812``: what the intent was, as far as it can be read."""
    if isinstance(intent, Malformed):
        return f"{intent.kind} (malformed)"
    if isinstance(intent, PlaceOrder):
        return f"place {intent.symbol} {intent.side} {intent.quantity}"
    if isinstance(intent, ModifyOrder | CancelOrder):
        return f"{kind_of(intent)} {intent.order_id}"
    if isinstance(intent, ClosePosition):
        return f"close {intent.symbol} {'all' if intent.quantity is None else intent.quantity}"
    return f"{kind_of(intent)} {intent.symbol or 'every symbol'}"


def _raw(letter: DeadLetter) -> dict[bytes, bytes]:
    return {key.encode(): value.encode() for key, value in letter.fields.items()}


def _answered(stored: bytes) -> str:
    try:
        result = decode_result(stored)
    except msgspec.DecodeError:
        return "it already has a stored result"
    answer = result.status + (f"/{result.error_code}" if result.error_code else "")
    return f"it already has a result ({answer}), which its producer was sent"


def _decode(letter: DeadLetter, keys: Keys) -> Intent | Malformed:
    """The dead entry's intent, decoded exactly as a worker decodes it."""
    return decode_entry(_raw(letter), keys)


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


# --- the command ---------------------------------------------------------------------


def _dead_letter_ids(parser: argparse.ArgumentParser, verb: str) -> None:
    parser.add_argument(
        "ids", nargs="*", metavar="ID", help="dead-letter IDs, as `dead-letters list` shows them"
    )
    parser.add_argument("--all", action="store_true", help=f"{verb} every dead letter")


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``dead-letters`` command and its actions."""
    dead = commands.add_parser(
        "dead-letters",
        help="list, retry or drop the intents that could not be executed",
        description="Entries that kept failing (delivered WORKER_MAX_DELIVERIES times) or did "
        "not decode are moved to the dead-letter stream (<prefix>:dead) with their error and "
        "history. Their producers were answered (failed/dead_lettered, or "
        "rejected/malformed_intent). `list` them, `retry` them or `drop` them.",
    )
    actions = dead.add_subparsers(title="actions", required=True, metavar="ACTION")
    listing = actions.add_parser(
        "list",
        help="show the dead letters, oldest first",
        description="Show each dead letter: its ID in the dead-letter stream (what retry and "
        "drop take), when it died, its request ID, what it was, its deliveries and why.",
    )
    redis_options(listing)
    listing.add_argument(
        "--json", action="store_true", help="one JSON object per line: the full record with its id"
    )
    listing.add_argument("--limit", type=positive, default=100, help="show at most N (default 100)")
    listing.set_defaults(handler=_dead_letters_list)
    retry = actions.add_parser(
        "retry",
        help="put dead letters' intents back on the intents stream",
        description="Add each dead letter's original intent (the same fields) to the intents "
        "stream as a new entry, and remove it from the dead-letter stream. A retried place "
        "cannot be placed twice: its broker customTag is derived from its request ID, and its "
        "history (kept for RESULT_TTL_S) tells the worker it was started before, so the "
        "worker first looks the order up by that tag and answers from what it finds (the "
        "gateway also refuses a second order with the same tag). Refused: an entry that is "
        "not a valid intent (drop it), a request that already has a stored result (its "
        "producer was answered; --force), and an intent past its deadline (--deadline).",
        epilog="Exit status 1 when any dead letter was not retried.",
    )
    redis_options(retry)
    _dead_letter_ids(retry, "retry")
    retry.add_argument(
        "--force",
        action="store_true",
        help="delete a request's stored result first (a dead-lettered request has one: "
        "failed/dead_lettered), so it is executed again and answered anew",
    )
    retry.add_argument(
        "--deadline",
        type=seconds,
        metavar="SECONDS",
        help="give each intent a new deadline SECONDS from now; without it, an intent past its "
        "deadline is refused (a worker would answer it expired without sending it)",
    )
    retry.set_defaults(handler=_dead_letters_retry)
    drop = actions.add_parser(
        "drop",
        help="delete dead letters",
        description="Delete dead letters from the dead-letter stream, without asking; prints "
        "each one dropped. Their producers were answered already.",
        epilog="Exit status 1 when any ID was not found.",
    )
    redis_options(drop)
    _dead_letter_ids(drop, "drop")
    drop.set_defaults(handler=_dead_letters_drop)


def _dead_letters_list(args: argparse.Namespace) -> int:
    return with_redis(
        args,
        lambda client, keys: list_command(client, keys, limit=args.limit, as_json=args.json),
    )


def _dead_letters_retry(args: argparse.Namespace) -> int:
    ids = _chosen(args)

    async def work(client: Redis, keys: Keys) -> int:
        outcomes = await retry(client, keys, ids, force=args.force, deadline_s=args.deadline)
        return report(outcomes)

    return with_redis(args, work)


def _dead_letters_drop(args: argparse.Namespace) -> int:
    ids = _chosen(args)

    async def work(client: Redis, keys: Keys) -> int:
        return report(await drop(client, keys, ids))

    return with_redis(args, work)


def _chosen(args: argparse.Namespace) -> list[str] | None:
    """The dead-letter IDs given, or None for --all."""
    if args.all == bool(args.ids):
        raise ConfigError("give dead-letter IDs or --all (not both)")
    return None if args.all else list(args.ids)
