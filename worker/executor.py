"""What an intent means: from a stream entry to its one final result.

Follow one request: ``handle`` decodes and validates the entry (``entries.py``);
``execute`` claims the request in the ledger (answering from a stored result when there is
one), refuses it past its deadline, runs it against the broker (``place.py`` for a new
order, ``follow_ups.py`` for a modify or cancel) and finishes it in the ledger (store,
reply, acknowledge in one step).

An outcome the broker cannot be asked about right now is never guessed: the entry stays
pending (``Unresolved``) and is retried by redelivery, or dead-lettered in the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from ow_core.backoff import Backoff
from ow_core.keys import Keys
from ow_core.redis_down import REDIS_ERRORS, is_redis_down
from producer.contract import CancelOrder, Intent, ModifyOrder, OrderResult, PlaceOrder, Status
from producer.errors import InvalidOrder
from producer.validation import validate_intent
from worker.attempt import (
    Attempt,
    Env,
    Unresolved,
    build_result,
    kind_of,
    order_state,
    priority_of,
)
from worker.broker.client import GatewayClient
from worker.broker.errors import BrokerError
from worker.broker.retry import RetryPolicy
from worker.entries import Entry, Malformed, decode_entry, order_queue, readable_fields
from worker.fleet.risk import RiskGate
from worker.follow_ups import FollowUps
from worker.ledger import DeadLetter, Ledger
from worker.ledger.protocol import ClaimAnswer, Conflict, Done, Go, Halted, Throttle, Wait
from worker.observe import Observer
from worker.place import Placer, ScheduleCancel
from worker.positions import Positions

log = logging.getLogger("worker.executor")

# Claims that end an intent without running it: (status, code, message).
_REFUSALS: Final[dict[type[ClaimAnswer], tuple[Status, str, str]]] = {
    Wait: (
        "expired",
        "deadline_passed",
        "expired waiting for an earlier modify or cancel of the same order",
    ),
    Throttle: (
        "expired",
        "rate_budget",
        "the fleet's rate budget had no room for it before its deadline; not sent",
    ),
    Halted: ("rejected", "halted", "new orders are halted ({reason}); not sent"),
}


@dataclass(frozen=True, slots=True)
class ExecutorConfig:
    """The executor's knobs, taken from ``Settings``."""

    worker_name: str
    retry: RetryPolicy
    tag_max_len: int = 50
    duplicate_tag_code: int = 2
    resolve_timeout_s: float = 60.0
    order_lookback_h: float = 24.0
    close_settle_s: float = 5.0


Track = Callable[[str, str], None]


class Executor:
    """Runs intents against the broker, exactly once, and finishes them in the ledger."""

    def __init__(
        self,
        broker: GatewayClient,
        ledger: Ledger,
        keys: Keys,
        config: ExecutorConfig,
        *,
        schedule_cancel: ScheduleCancel | None = None,
        track: Track | None = None,
        risk: RiskGate | None = None,
        observer: Observer | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._ledger = ledger
        self._keys = keys
        self._track = track
        self._observer = observer or Observer()
        self._env = Env(config.worker_name, config.resolve_timeout_s, sleep, clock)
        self._placer = Placer(
            broker,
            resend_waits=config.retry.schedule,
            tag_max_len=config.tag_max_len,
            duplicate_tag_code=config.duplicate_tag_code,
            schedule_cancel=schedule_cancel,
            risk=risk,
        )
        self._follow_ups = FollowUps(broker, lookback_h=config.order_lookback_h, risk=risk)
        self._positions = Positions(broker, ledger.first_plan, settle_s=config.close_settle_s)

    # --- entry to result --------------------------------------------------------------

    async def handle(self, entry: Entry) -> None:
        """Execute one stream entry and finish it.

        Raises only when the entry must stay pending (``Unresolved``, Redis unreachable,
        a bug): redelivery then retries it, and dead-letters it after too many tries.
        """
        picked = self._env.now_ms()
        decoded = decode_entry(entry.fields, self._keys)
        if isinstance(decoded, Malformed):
            await self._finish_malformed(entry, decoded, picked)
            return
        try:
            # The tag's length is the place's to check: it knows the configured maximum
            # and whether the order may be at the broker already.
            intent = validate_intent(decoded, tag_max_len=None)
        except InvalidOrder as error:
            result = build_result(decoded, picked, self._env, None, "rejected", error=error)
            # Leave the order's queue too, or later follow-ups of the order would wait on it.
            # A request ID that is not a valid one is not kept as a key of ours: it may be
            # one the worker reserves (the good-til-time cancel's "<id>:gtt").
            await self._finish(
                result,
                decoded,
                entry.entry_id,
                order_queue=order_queue(decoded, self._keys),
                store=error.code != "invalid_request_id",
            )
            return
        await self.execute(intent, entry, picked)

    async def execute(self, intent: Intent, entry: Entry | None, picked: int | None = None) -> None:
        """Claim, run and finish a validated intent.

        ``entry`` is None for intents that come from a scheduled job rather than the
        stream (the cancel of a good-til-time order).
        """
        picked = self._env.now_ms() if picked is None else picked
        entry_id = None if entry is None else entry.entry_id
        queue = order_queue(intent, self._keys)
        try:
            claim = await self._take(intent, entry_id, queue)
        except Unresolved as error:
            await self._ledger.note_error(intent.request_id, str(error))
            raise
        if isinstance(claim, Conflict):
            await self._refuse_conflict(intent, entry, picked, claim, queue)
            return
        refusal = _REFUSALS.get(type(claim))
        if refusal is not None:
            status, code, message = refusal
            result = build_result(
                intent,
                picked,
                self._env,
                None,
                status,
                error_code=code,
                message=message.format(reason=claim.reason if isinstance(claim, Halted) else ""),
                order_exists=False if isinstance(intent, PlaceOrder) else None,
            )
        elif isinstance(claim, Done):
            # Already executed (a repeated request ID, or another worker finished it):
            # answer from the stored result; the ledger replies with it and stores nothing.
            result = claim.stored
        else:
            assert isinstance(claim, Go)
            result = await self._run_claimed(intent, entry_id, picked, claim)
        await self._finish(result, intent, entry_id, order_queue=queue)

    async def _run_claimed(
        self, intent: Intent, entry_id: str | None, picked: int, claim: Go
    ) -> OrderResult:
        if self._track is not None and entry_id is not None:
            self._track(entry_id, intent.request_id)
        try:
            return await self._run(Attempt(intent, picked, self._env, claim.claims > 1), claim)
        except asyncio.CancelledError:
            # Stopped mid-run (the worker is shutting down past its drain time): give the
            # lease back so the worker that takes the entry over need not wait for it to
            # expire. It looks the order up by its tag first: it was started.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._ledger.release(intent.request_id, entry_id), 1.0)
            raise
        except Exception as error:
            # Unresolved, Redis trouble or a bug: the entry stays pending and is retried
            # by redelivery; the next worker reads this in the history and looks the order
            # up before sending anything.
            await self._ledger.note_error(intent.request_id, f"{type(error).__name__}: {error}")
            await self._ledger.release(intent.request_id, entry_id)
            raise

    async def _refuse_conflict(
        self,
        intent: Intent,
        entry: Entry | None,
        picked: int,
        conflict: Conflict,
        queue: str | None,
    ) -> None:
        """A key of this intent holds something else than the ledger keeps there: it cannot
        be run exactly once, so it is refused (nothing was sent) and dead-lettered."""
        result = build_result(
            intent,
            picked,
            self._env,
            None,
            "rejected",
            error_code="key_conflict",
            message=f"{conflict.problem}; not sent",
            order_exists=False if isinstance(intent, PlaceOrder) else None,
        )
        # The refusal is the request's one result, kept like any other, unless the conflict
        # is its result key itself (that value is neither overwritten nor sent as ours).
        store = conflict.key != self._keys.result(intent.request_id)
        if entry is None:
            log.error("scheduled %s refused: %s", intent.request_id, conflict.problem)
            await self._finish(result, intent, None, order_queue=queue, store=store)
            return
        await self._dead_letter(
            entry,
            result,
            conflict.problem,
            reply_to=intent.reply_to,
            request_id=intent.request_id,
            queue=queue,
            store=store,
        )

    async def give_up(self, entry: Entry, reason: str) -> None:
        """Dead-letter an entry that was delivered too often, and tell its producer.

        A place some worker already started may exist at the broker: it is looked up
        once, so the producer is not told "failed" about an order that is live. Whatever
        goes wrong on the way (a stored result that cannot be read, a key of the wrong
        type, a bug), the entry still reaches the dead letters: an entry that fails on
        every delivery must not be delivered for ever. Only an unreachable Redis leaves it
        pending, to be given up again later.
        """
        try:
            await self._give_up(entry, reason)
        except Exception as error:
            if is_redis_down(error):
                raise
            log.exception("giving up entry %s failed; dead-lettering it as it is", entry.entry_id)
            await self._dead_letter_as_is(entry, f"{reason}; then {type(error).__name__}: {error}")

    async def _give_up(self, entry: Entry, reason: str) -> None:
        picked = self._env.now_ms()
        decoded = decode_entry(entry.fields, self._keys)
        if isinstance(decoded, Malformed):
            await self._finish_malformed(entry, decoded, picked)
            return
        intent = decoded
        stored = await self._ledger.stored_result(intent.request_id)
        if stored is not None:
            await self._finish(
                stored, intent, entry.entry_id, order_queue=order_queue(intent, self._keys)
            )
            return
        history = await self._ledger.history(intent.request_id)
        attempt = Attempt(intent, picked, self._env, started_before=bool(history))
        message = f"{reason}; moved to the dead-letter stream"
        exists: bool | None = None
        if isinstance(intent, PlaceOrder) and history:
            try:
                found = await self._placer.find_once(attempt, intent)
            except BrokerError as error:
                message += "; it may have been placed: look for tag "
                message += f"{self._placer.tag_of(intent)!r} ({error.code})"
            else:
                if found is not None:
                    result = attempt.result(
                        "accepted", order_id=found.id, state=order_state(found), order_exists=True
                    )
                    await self._finish(result, intent, entry.entry_id, order_queue=None)
                    return
                message += "; it was not placed (looked up by tag)"
                exists = False
        elif isinstance(intent, PlaceOrder):
            exists = False  # never claimed, so never sent
        result = attempt.result(
            "failed", error_code="dead_lettered", message=message, order_exists=exists
        )
        await self._dead_letter(
            entry,
            result,
            reason,
            reply_to=intent.reply_to,
            request_id=intent.request_id,
            queue=order_queue(intent, self._keys),
            history=history,
        )

    async def _dead_letter_as_is(self, entry: Entry, reason: str) -> None:
        """The last resort: the entry dead-lettered with what can be read of it, its producer
        told, nothing looked up and nothing stored under its request ID."""
        decoded = decode_entry(entry.fields, self._keys)
        if isinstance(decoded, Malformed):
            request_id, reply_to, kind = decoded.request_id, decoded.reply_to, decoded.kind
            queue = None
        else:
            request_id, reply_to, kind = decoded.request_id, decoded.reply_to, kind_of(decoded)
            queue = order_queue(decoded, self._keys)
        now = self._env.now_ms()
        result = OrderResult(
            request_id=request_id or f"entry:{entry.entry_id}",
            status="failed",
            kind=kind,
            error_code="dead_lettered",
            message=f"{reason}; moved to the dead-letter stream",
            finished_at=now,
            worker=self._env.worker_name,
        )
        await self._dead_letter(
            entry,
            result,
            reason,
            reply_to=reply_to,
            request_id=request_id,
            queue=queue,
            store=False,
        )

    async def _take(self, intent: Intent, entry_id: str | None, queue: str | None) -> ClaimAnswer:
        """The claim once it is ours, done or halted; or wait/throttle once the intent's
        deadline came while it waited for its turn or for the rate budget.

        ``busy`` (another live worker holds the lease) is waited out, never answered: that
        worker may be placing the order right now. Its lease expires if it died.
        """
        backoff = Backoff(0.002, 0.25)
        give_up = intent.deadline + self._env.resolve_timeout_s * 1000
        while True:
            claim = await self._ledger.claim(
                intent.request_id,
                entry_id,
                order_queue=queue,
                kind=priority_of(intent),
                account_id=intent.account_id,
                reply_to=intent.reply_to,
            )
            if isinstance(claim, Go | Done | Halted | Conflict):
                return claim
            now = self._env.now_ms()
            if isinstance(claim, Throttle):
                if now + claim.wait_ms >= intent.deadline:
                    return claim
                await self._env.sleep(min(claim.wait_ms / 1000, 1.0))
                continue
            if isinstance(claim, Wait) and now >= intent.deadline:
                return claim
            if now >= give_up:
                raise Unresolved(f"request {intent.request_id} still held by another worker")
            await self._env.sleep(backoff.next())

    async def _run(self, attempt: Attempt, claim: Go) -> OrderResult:
        attempt.stats.prepaid = int(claim.prepaid)
        intent = attempt.intent
        if isinstance(intent, PlaceOrder):
            return await self._placer.place(attempt, intent)
        if isinstance(intent, ModifyOrder | CancelOrder):
            return await self._follow_ups.run(attempt, intent)
        return await self._positions.run(attempt, intent)

    # --- finishing --------------------------------------------------------------------

    async def _finish(
        self,
        result: OrderResult,
        intent: Intent,
        entry_id: str | None,
        *,
        order_queue: str | None = None,
        store: bool = True,
    ) -> None:
        written = await self._write(
            lambda: self._ledger.finish(
                result,
                entry_id=entry_id,
                reply_to=intent.reply_to,
                order_queue=order_queue,
                store=store,
            )
        )
        if written:
            self._observer.intent_finished(result)

    async def _finish_malformed(self, entry: Entry, bad: Malformed, picked: int) -> None:
        now = self._env.now_ms()
        result = OrderResult(
            request_id=bad.request_id or f"entry:{entry.entry_id}",
            status="rejected",
            kind=bad.kind,
            error_code="malformed_intent",
            message=bad.reason,
            worker_ms=now - picked,
            finished_at=now,
            worker=self._env.worker_name,
        )
        # Not stored: the request ID of an entry that did not decode cannot be trusted.
        await self._dead_letter(
            entry, result, bad.reason, reply_to=bad.reply_to, request_id=bad.request_id, store=False
        )

    async def _dead_letter(
        self,
        entry: Entry,
        result: OrderResult,
        reason: str,
        *,
        reply_to: str | None,
        request_id: str | None,
        queue: str | None = None,
        history: list[str] | None = None,
        store: bool = True,
    ) -> None:
        """Answer an entry's producer and move the entry to the dead-letter stream."""
        record = DeadLetter(
            entry_id=entry.entry_id,
            reason=reason,
            request_id=request_id,
            deliveries=entry.deliveries,
            history=history or [],
            fields=readable_fields(entry.fields),
            at=self._env.now_ms(),
        )
        await self._write(
            lambda: self._ledger.finish(
                result,
                entry_id=entry.entry_id,
                reply_to=reply_to,
                order_queue=queue,
                dead_letter=record,
                store=store,
            )
        )
        self._observer.intent_finished(result)
        self._observer.dead_lettered(reason)
        log.warning("entry %s (%s) dead-lettered: %s", entry.entry_id, request_id, reason)

    async def _write(self, finish: Callable[[], Awaitable[bool]]) -> bool:
        """The finish step, retried through a short Redis outage; False if the entry was
        already finished (by another worker) so this one wrote nothing.

        The broker has acted; losing the answer now would leave the producer guessing.
        If Redis stays away, the entry stays pending and its redelivery finds the order
        by its tag.
        """
        backoff = Backoff(0.05, 5.0)
        for _ in range(12):
            try:
                return await finish()
            except REDIS_ERRORS as error:
                if not is_redis_down(error):
                    raise
                self._observer.redis_trouble("finish")
                delay = backoff.next()
                log.warning("cannot write a result (%s); retrying in %.2f s", error, delay)
                await self._env.sleep(delay)
        return await finish()
