"""The Redis side of exactly-once: results, leases, claim history and per-order queues.

Lua scripts, each one atomic step, each in a ``.lua`` file here that declares its keys and
reads its named arguments (``protocol.py``):

- ``claim.lua`` before a worker acts on a request: answer from the stored result if there
  is one; otherwise take the request's lease (SET NX PX) unless another live worker holds
  it; for a modify or cancel, go only when it is the head of its order's queue; refuse a
  new order while the kill switch is on; take the fleet's rate-budget slot for the first
  broker request; and append this claim to the request's history, whose length tells the
  executor the request was started before (so a place is looked up by its tag before it
  is sent again).
- ``finish.lua`` at the end: XACK the entry (if someone already did, stop: that entry has
  had its reply), store the result unless one exists, XADD the stored result to the reply
  stream, release the lease, leave the order queue, and dead-letter the entry if asked.
- ``keepalive.lua`` while requests run: renew each lease still ours and reset the idle
  time of each entry still pending on us, so a live worker's entries are not reclaimed.
- ``release.lua``: give a lease back without finishing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Final, cast

import msgspec
from redis.asyncio import Redis

from ow_core.fastlane import FastLane, Script
from ow_core.keys import Keys
from producer.contract import VERSION_BYTES, OrderResult, encode_result
from worker.fleet.budget import Priority, Window
from worker.ledger.protocol import (
    CLAIM,
    CLAIM_ANSWER,
    ENCODER,
    FINISH,
    FINISH_ANSWER,
    KEEPALIVE,
    RELEASE,
    BudgetArgs,
    ClaimAnswer,
    ClaimArgs,
    FinishArgs,
    KeepaliveArgs,
)


class DeadLetter(msgspec.Struct, kw_only=True, frozen=True):
    """What the dead-letter stream keeps of an entry that could not be executed."""

    entry_id: str
    reason: str
    request_id: str | None = None
    deliveries: int = 0
    history: list[str] = msgspec.field(default_factory=list)
    """Each claim (``claim worker@epoch_ms``) and error (``error worker@epoch_ms: text``)."""
    fields: dict[str, str] = msgspec.field(default_factory=dict)
    """The entry as it was on the stream (undecodable bytes replaced)."""
    at: int = 0


@dataclass(frozen=True, slots=True)
class Running:
    """An entry a worker is executing, as keepalive sees it."""

    entry_id: str
    lease_key: str
    owner: str


_VERSION: Final = VERSION_BYTES.decode()
log = logging.getLogger("worker.ledger")


class Ledger:
    """Exactly-once bookkeeping for one worker process, on its Redis client."""

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        *,
        consumer: str,
        lease_ms: int,
        result_ttl_s: int,
        reply_maxlen: int,
        budget: Window | None = None,
        lane: FastLane | None = None,
    ) -> None:
        self._redis = redis
        self._lane = lane
        self._budget = budget
        self._keys = keys
        self._consumer = consumer
        self._lease_ms = lease_ms
        self._ttl = result_ttl_s
        self._reply_maxlen = reply_maxlen
        # Without a lane (tests on fakeredis), redis-py runs them, loading them as needed.
        self._registered = {
            script.sha: redis.register_script(script.source)
            for script in (CLAIM, FINISH, KEEPALIVE, RELEASE)
        }

    def owner(self, entry_id: str | None) -> str:
        """The lease owner for one entry executed by this worker (or a scheduled job)."""
        return f"{self._consumer}/{entry_id or 'job'}"

    async def claim(
        self,
        request_id: str,
        entry_id: str | None,
        *,
        order_queue: str | None = None,
        kind: Priority = "cancel",
        account_id: int | None = None,
        reply_to: str | None = None,
    ) -> ClaimAnswer:
        """Try to take the request (see the module docstring).

        A place is refused while the kill switch is on for all accounts or for
        ``account_id``; with a rate budget, the claim also takes the budget slot of the
        intent's first request (``kind`` sets its priority).
        """
        keys = self._keys
        budget = None
        if self._budget is not None:
            allowance, window_ms = self._budget.args(kind)
            budget = BudgetArgs(allowance=allowance, window_ms=window_ms)
        args = ClaimArgs(
            owner=self.owner(entry_id),
            lease_ms=self._lease_ms,
            history_ttl_s=self._ttl,
            entry_id=entry_id or "",
            ordered=bool(order_queue and entry_id),
            new_order=kind == "place",
            reply=reply_to is not None,
            note=f"claim {self._consumer}@{int(time.time() * 1000)}",
            budget=budget,
        )
        # Without a budget the claim never reads these two: a key of the request's stands in.
        window, pause = (
            (self._budget.key, self._budget.pause)
            if self._budget is not None
            else (keys.lease(request_id), keys.lease(request_id))
        )
        answer = await self._hot(
            CLAIM,
            [
                keys.result(request_id),
                keys.lease(request_id),
                keys.claims(request_id),
                order_queue or keys.lease(request_id),
                keys.halt(),
                keys.halt(account_id),
                window,
                pause,
                reply_to or keys.result(request_id),
            ],
            [ENCODER.encode(args)],
        )
        return CLAIM_ANSWER.decode(answer)

    async def finish(
        self,
        result: OrderResult,
        *,
        entry_id: str | None,
        reply_to: str | None,
        order_queue: str | None = None,
        dead_letter: DeadLetter | None = None,
        store: bool = True,
    ) -> bool:
        """Store, reply, acknowledge: one atomic step. False if the entry was already done.

        ``store=False`` replies without keeping the result under its request ID: for an
        entry too malformed to trust its request ID.
        """
        keys = self._keys
        request_id = result.request_id
        args = FinishArgs(
            group=keys.group,
            entry_id=entry_id or "",
            owner=self.owner(entry_id),
            ttl_s=self._ttl,
            reply_maxlen=self._reply_maxlen,
            version=_VERSION,
            reply=reply_to is not None,
            ordered=bool(order_queue and entry_id),
            store=store,
        )
        answer = await self._hot(
            FINISH,
            [
                keys.result(request_id),
                keys.intents,
                reply_to or keys.intents,
                keys.lease(request_id),
                order_queue or keys.lease(request_id),
                keys.dead_letters,
            ],
            [
                ENCODER.encode(args),
                encode_result(result),
                ENCODER.encode(dead_letter) if dead_letter else b"",
            ],
        )
        finished = FINISH_ANSWER.decode(answer)
        for problem in finished.skipped:
            # The rest of the step was done; this part would have failed it (and, Lua being
            # without rollback, left it half done).
            log.warning("finishing %s: skipped %s", request_id, problem)
        return finished.done

    async def _hot(self, script: Script, keys: list[str], args: list[Any]) -> Any:
        """A script on the hot path: through the pipelined lane when there is one."""
        if self._lane is not None:
            return await self._lane.run(script, keys, args)
        return await self._registered[script.sha](keys=keys, args=args)

    async def keepalive(self, running: list[Running]) -> set[str]:
        """Renew leases and entry idle times; returns the entries whose lease another
        worker holds now (a lease that is simply gone was released by a finish)."""
        if not running:
            return set()
        args = KeepaliveArgs(
            group=self._keys.group,
            consumer=self._consumer,
            lease_ms=self._lease_ms,
            running=[(item.entry_id, item.lease_key, item.owner) for item in running],
        )
        lost = await self._hot(KEEPALIVE, [self._keys.intents], [ENCODER.encode(args)])
        return {entry.decode() for entry in lost}

    async def release(self, request_id: str, entry_id: str | None) -> None:
        """Give the lease back without finishing (the entry stays pending for a retry)."""
        await self._hot(RELEASE, [self._keys.lease(request_id)], [self.owner(entry_id)])

    async def history(self, request_id: str) -> list[str]:
        """Every claim and recorded error of a request so far, oldest first."""
        items = await cast(
            Awaitable[list[bytes]], self._redis.lrange(self._keys.claims(request_id), 0, -1)
        )
        return [item.decode(errors="replace") for item in items]

    async def note_error(self, request_id: str, text: str) -> None:
        """Add an error to a request's history (it goes with the entry if dead-lettered)."""
        key = self._keys.claims(request_id)
        note = f"error {self._consumer}@{int(time.time() * 1000)}: {text[:500]}"
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.rpush(key, note)
            pipe.expire(key, self._ttl)
            await pipe.execute()

    async def first_plan(self, request_id: str, plan: bytes) -> bytes:
        """``plan`` if it is the request's first, else the one its first run stored (kept
        as long as results are)."""
        earlier = await self._redis.set(
            self._keys.close_plan(request_id), plan, nx=True, ex=self._ttl, get=True
        )
        return plan if earlier is None else bytes(earlier)

    async def stored_result(self, request_id: str) -> OrderResult | None:
        """The final result of a request, if it has one."""
        data = await self._redis.get(self._keys.result(request_id))
        return None if data is None else msgspec.json.decode(data, type=OrderResult)
