"""What the ledger's Lua scripts take and answer, named and typed in one place.

Each script takes its named arguments as one JSON object (``ARGV[1]``, read with
``cjson.decode``) and declares its keys at the top of its ``.lua`` file. The claim answers
one of a tagged union, decoded in one call.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Final

import msgspec

from ow_core.fastlane import Script
from producer.contract import OrderResult
from worker.fleet.budget import BUDGET_LUA
from worker.fleet.halt import read_record

_HERE: Final = files("worker.ledger")
_TYPES: Final = _HERE / "types.lua"
CLAIM: Final = Script.from_files(_TYPES, BUDGET_LUA, _HERE / "claim.lua")
FINISH: Final = Script.from_files(_TYPES, _HERE / "finish.lua")
KEEPALIVE: Final = Script.from_files(_TYPES, _HERE / "keepalive.lua")
RELEASE: Final = Script.from_files(_TYPES, _HERE / "release.lua")


class _Args(msgspec.Struct, frozen=True, kw_only=True):
    """Every field is always sent (a None as JSON null, which Lua sees as cjson.null)."""


class BudgetArgs(_Args, frozen=True, kw_only=True):
    """The rate budget's window, for the slot of an intent's first request."""

    allowance: int
    window_ms: int


class ClaimArgs(_Args, frozen=True, kw_only=True):
    """``claim.lua``'s arguments."""

    owner: str
    """Who takes the lease (``worker/entry``)."""
    lease_ms: int
    history_ttl_s: int
    entry_id: str = ""
    """The stream entry ('' for an intent of a scheduled job)."""
    ordered: bool = False
    """A follow-up that must wait for its turn in the order's queue."""
    new_order: bool = False
    """A place, which the kill switch refuses."""
    reply: bool = False
    """The intent answers on a reply stream (KEYS[9]), which must be a stream or absent."""
    note: str
    """This claim's line in the request's history."""
    budget: BudgetArgs | None = None
    """Take the budget's slot for the first request (absent: no budget)."""


class FinishArgs(_Args, frozen=True, kw_only=True):
    """``finish.lua``'s named arguments (the result and dead letter go as ARGV 2 and 3)."""

    group: str
    entry_id: str = ""
    owner: str
    ttl_s: int
    reply_maxlen: int
    version: str
    reply: bool = False
    """Add the result to the reply stream."""
    ordered: bool = False
    """Leave the order's follow-up queue."""
    store: bool = True
    """Keep the result under the request ID (not for an entry too malformed to trust)."""


class KeepaliveArgs(_Args, frozen=True, kw_only=True):
    """``keepalive.lua``'s arguments: each running entry as (entry ID, lease key, owner)."""

    group: str
    consumer: str
    lease_ms: int
    running: list[tuple[str, str, str]]


class _Answer(msgspec.Struct, frozen=True, tag_field="state"):
    @property
    def state(self) -> str:
        """The answer's name, as the script spells it (``go``, ``done``, ...)."""
        return str(self.__struct_config__.tag)


class Go(_Answer, frozen=True, tag="go"):
    """The lease is ours: run it."""

    claims: int
    """Length of the request's history, this claim included: more than one means a worker
    started on it before."""
    prepaid: bool = False
    """The claim took the rate-budget slot for the intent's first broker request."""


class Done(_Answer, frozen=True, tag="done"):
    """The request has a result already: answer with it."""

    stored: OrderResult


class Busy(_Answer, frozen=True, tag="busy"):
    """Another live worker holds the lease (it may be placing the order right now)."""

    holder: str


class Wait(_Answer, frozen=True, tag="wait"):
    """An earlier follow-up of the same order must finish first."""

    head: str


class Halted(_Answer, frozen=True, tag="halted"):
    """New orders are stopped by the kill switch."""

    record: str

    @property
    def reason(self) -> str:
        """Why, as the operator said it."""
        halt = read_record(self.record)
        return "" if halt is None else halt.reason


class Throttle(_Answer, frozen=True, tag="throttle"):
    """The fleet's rate budget has no room yet."""

    wait_ms: int


class Conflict(_Answer, frozen=True, tag="conflict"):
    """A key the claim would touch holds something else than the ledger keeps there (or a
    stored result that cannot be read): nothing was written, the intent cannot be run."""

    key: str
    found: str
    wanted: str

    @property
    def problem(self) -> str:
        """What is wrong, for the result's message and the dead letter."""
        return f"Redis key {self.key} holds {_article(self.found)}, not {_article(self.wanted)}"


def _article(what: str) -> str:
    return what if what.startswith(("a ", "an ", "unreadable")) else f"a {what}"


ClaimAnswer = Go | Done | Busy | Wait | Halted | Throttle | Conflict


class FinishAnswer(msgspec.Struct, frozen=True):
    """What ``finish.lua`` did."""

    done: bool
    """This call finished the entry (false: it had been finished already)."""
    skipped: list[str]
    """What was not done because a key holds something else (``reply: <key> holds a
    string``): the rest of the step was done."""


ENCODER: Final = msgspec.json.Encoder()
CLAIM_ANSWER: Final[msgspec.json.Decoder[ClaimAnswer]] = msgspec.json.Decoder(ClaimAnswer)
FINISH_ANSWER: Final = msgspec.json.Decoder(FinishAnswer)
