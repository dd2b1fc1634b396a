"""The Redis side of exactly-once: results, leases, claim history and per-order queues.

Three Lua scripts, each one atomic step:

- ``claim`` before a worker acts on a request: answer from the stored result if there is
  one; otherwise take the request's lease (SET NX PX) unless another live worker holds it;
  for a modify or cancel, go only when it is the head of its order's queue; refuse a new
  order while the kill switch is on; take the fleet's rate-budget token for the first
  broker request; and append this claim to the request's history, whose length tells the
  executor the request was started before (so a place is looked up by its tag before it
  is sent again).
- ``finish`` at the end: XACK the entry (if someone already did, stop: that entry has had
  its reply), store the result unless one exists, XADD the stored result to the reply
  stream, release the lease, leave the order queue, and dead-letter the entry if asked.
- ``keepalive`` while requests run: renew each lease still ours and reset the idle time of
  each entry still pending on us, so a live worker's entries are not reclaimed.

Lease keys are passed as arguments rather than KEYS, so this needs a single Redis (or a
primary with replicas), not Redis Cluster.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Final, Literal, cast

import msgspec
from redis.asyncio import Redis

from ow_core.fastlane import FastLane, Script
from ow_core.keys import Keys
from producer.contract import VERSION_BYTES, OrderResult, encode_result
from worker.budget import TAKE_LUA, Priority, RateLimit

_CLAIM: Final = (
    TAKE_LUA
    + """
local stored = redis.call('GET', KEYS[1])
if stored then return {'done', stored} end
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[1] then return {'busy', holder} end
if ARGV[5] == '1' then
  local head = redis.call('LINDEX', KEYS[4], 0)
  if head and head ~= ARGV[4] and redis.call('LPOS', KEYS[4], ARGV[4]) then
    return {'wait', head}
  end
end
if ARGV[7] == 'place' then
  local halted = redis.call('GET', KEYS[5]) or redis.call('GET', KEYS[6])
  if halted then return {'halted', halted} end
end
if ARGV[8] == '1' then
  local wait = take_budget(KEYS[7], KEYS[8], tonumber(ARGV[9]), tonumber(ARGV[10]),
                           tonumber(ARGV[11]))
  if wait > 0 then return {'throttle', tostring(wait)} end
end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
local n = redis.call('RPUSH', KEYS[3], ARGV[6])
redis.call('EXPIRE', KEYS[3], ARGV[3])
return {'go', tostring(n)}
"""
)

_FINISH: Final = """
local held = redis.call('GET', KEYS[4]) == ARGV[6]
if ARGV[2] ~= '' and redis.call('XACK', KEYS[2], ARGV[1], ARGV[2]) == 0 then
  if held then redis.call('DEL', KEYS[4]) end
  return 0
end
local stored = redis.call('GET', KEYS[1])
if not stored then
  stored = ARGV[3]
  if ARGV[11] == '1' then redis.call('SET', KEYS[1], stored, 'EX', ARGV[4]) end
end
if ARGV[7] == '1' then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*', 'v', ARGV[10], 'r', stored)
  redis.call('EXPIRE', KEYS[3], ARGV[4])
end
if held then redis.call('DEL', KEYS[4]) end
if ARGV[8] == '1' then redis.call('LREM', KEYS[5], 1, ARGV[2]) end
if ARGV[9] ~= '' then
  redis.call('XADD', KEYS[6], '*', 'entry', ARGV[2], 'record', ARGV[9])
end
return 1
"""

_KEEPALIVE: Final = """
local lost = {}
for i = 4, #ARGV, 3 do
  local id, lease, owner = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if #redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1, ARGV[2]) > 0 then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, id, 'JUSTID')
  end
  if lease ~= '' then
    local holder = redis.call('GET', lease)
    if holder == owner then
      redis.call('PEXPIRE', lease, ARGV[3])
    elseif holder then
      table.insert(lost, id)
    end
  end
end
return lost
"""

_RELEASE: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

ClaimState = Literal["go", "done", "busy", "wait", "halted", "throttle"]


@dataclass(frozen=True, slots=True)
class Claim:
    """The answer of ``Ledger.claim``."""

    state: ClaimState
    """go: the lease is ours; done: a result exists; busy: another worker holds the lease;
    wait: an earlier follow-up of the same order must finish first; halted: new orders are
    stopped by the kill switch; throttle: the fleet's rate budget has no room yet."""
    stored: OrderResult | None = None
    claims: int = 0
    """Length of the request's history, this claim included (state go): more than one
    means a worker started on it before."""
    prepaid: bool = False
    """The claim took the rate-budget token for the intent's first broker request."""
    halt_reason: str = ""
    wait_ms: int = 0
    """For throttle: how long until the budget has room."""


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


class HaltRecord(msgspec.Struct, kw_only=True, frozen=True):
    """What the kill switch key holds (its presence is what halts)."""

    reason: str
    at: int
    by: str


@dataclass(frozen=True, slots=True)
class Running:
    """An entry a worker is executing, as keepalive sees it."""

    entry_id: str
    lease_key: str
    owner: str


_DEAD_ENCODER: Final = msgspec.json.Encoder()


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
        budget: RateLimit | None = None,
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
        self._claim = Script(_CLAIM)
        self._finish = Script(_FINISH)
        # Without a lane (tests on fakeredis), redis-py runs them, loading them as needed.
        self._registered = {
            script.sha: redis.register_script(script.source)
            for script in (self._claim, self._finish)
        }
        self._keepalive = redis.register_script(_KEEPALIVE)
        self._release = redis.register_script(_RELEASE)

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
    ) -> Claim:
        """Try to take the request (see the module docstring).

        A place is refused while the kill switch is on for all accounts or for
        ``account_id``; with a rate budget, the claim also takes the budget token of the
        intent's first request (``kind`` sets its priority).
        """
        keys = self._keys
        budget = self._budget.args(kind) if self._budget is not None else [0, 0, 0]
        answer = await self._hot(
            self._claim,
            [
                keys.result(request_id),
                keys.lease(request_id),
                keys.claims(request_id),
                order_queue or keys.lease(request_id),
                keys.halt(),
                keys.halt(account_id),
                keys.budget,
                keys.budget_pause,
            ],
            [
                self.owner(entry_id),
                self._lease_ms,
                self._ttl,
                entry_id or "",
                "1" if order_queue and entry_id else "0",
                f"claim {self._consumer}@{int(time.time() * 1000)}",
                kind,
                "1" if self._budget is not None else "0",
                *budget,
            ],
        )
        state = answer[0].decode()
        if state == "done":
            return Claim("done", stored=msgspec.json.decode(answer[1], type=OrderResult))
        if state == "go":
            return Claim("go", claims=int(answer[1]), prepaid=self._budget is not None)
        if state == "halted":
            try:
                reason = msgspec.json.decode(answer[1], type=HaltRecord).reason
            except msgspec.DecodeError:
                reason = answer[1].decode(errors="replace")
            return Claim("halted", halt_reason=reason)
        if state == "throttle":
            return Claim("throttle", wait_ms=int(answer[1]))
        return Claim("busy" if state == "busy" else "wait")

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
        done = await self._hot(
            self._finish,
            [
                keys.result(request_id),
                keys.intents,
                reply_to or keys.intents,
                keys.lease(request_id),
                order_queue or keys.lease(request_id),
                keys.dead_letters,
            ],
            [
                keys.group,
                entry_id or "",
                encode_result(result),
                self._ttl,
                self._reply_maxlen,
                self.owner(entry_id),
                "1" if reply_to else "0",
                "1" if order_queue and entry_id else "0",
                _DEAD_ENCODER.encode(dead_letter) if dead_letter else "",
                VERSION_BYTES,
                "1" if store else "0",
            ],
        )
        return bool(done)

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
        args: list[str | int] = [self._keys.group, self._consumer, self._lease_ms]
        for item in running:
            args += [item.entry_id, item.lease_key, item.owner]
        lost = await self._keepalive(keys=[self._keys.intents], args=args)
        return {entry.decode() for entry in lost}

    async def release(self, request_id: str, entry_id: str | None) -> None:
        """Give the lease back without finishing (the entry stays pending for a retry)."""
        await self._release(keys=[self._keys.lease(request_id)], args=[self.owner(entry_id)])

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

    async def stored_result(self, request_id: str) -> OrderResult | None:
        """The final result of a request, if it has one."""
        data = await self._redis.get(self._keys.result(request_id))
        return None if data is None else msgspec.json.decode(data, type=OrderResult)
