"""What an intent means: from a stream entry to its one final result.

Follow one request: ``handle`` decodes and validates the entry; ``execute`` claims the
request in the ledger (answering from a stored result when there is one), refuses it past
its deadline, runs it against the broker and finishes it (store, reply, acknowledge).

Exactly-once at the broker rests on three things here:
- the order's ``customTag`` is derived from the request ID (``tags.broker_tag``);
- a place whose outcome is unknown (timeout, dropped connection, 5xx, or a request some
  worker started before) is looked up by that tag before it is sent again;
- an outcome the broker cannot be asked about right now is never guessed: the entry stays
  pending (``Unresolved``) and is retried by redelivery, or dead-lettered in the end.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

import msgspec

from ow_core.backoff import Backoff
from ow_core.keys import Keys
from ow_core.redis_down import REDIS_ERRORS, is_redis_down
from producer.contract import (
    DATA_FIELD,
    INTENT_DECODER,
    VERSION_BYTES,
    VERSION_FIELD,
    CancelOrder,
    Intent,
    ModifyOrder,
    OrderResult,
    OrderState,
    PlaceOrder,
    Status,
)
from producer.errors import InvalidOrder, OrderError
from producer.validation import validate_intent
from worker.broker.client import GatewayClient
from worker.broker.errors import (
    BrokerError,
    BrokerRateLimited,
    BrokerRejected,
    BrokerUnavailable,
)
from worker.broker.models import Order, OrderStatus
from worker.broker.retry import RetryPolicy
from worker.broker.transport import CallStats
from worker.budget import Priority
from worker.ledger import Claim, DeadLetter, Ledger
from worker.observe import Observer
from worker.risk import RiskGate
from worker.tags import broker_tag

log = logging.getLogger("worker.executor")

MAX_INTENT_BYTES: Final = 64 * 1024
_STATES: Final[dict[int, OrderState]] = {
    OrderStatus.OPEN: "open",
    OrderStatus.PENDING: "pending",
    OrderStatus.FILLED: "filled",
    OrderStatus.CANCELLED: "cancelled",
    OrderStatus.EXPIRED: "expired",
    OrderStatus.REJECTED: "rejected",
}
_LIVE: Final = (OrderStatus.OPEN, OrderStatus.PENDING)
# Claims that end an intent without running it: (status, code, message).
_REFUSALS: Final[dict[str, tuple[Status, str, str]]] = {
    "wait": (
        "expired",
        "deadline_passed",
        "expired waiting for an earlier modify or cancel of the same order",
    ),
    "throttle": (
        "expired",
        "rate_budget",
        "the fleet's rate budget had no room for it before its deadline; not sent",
    ),
    "halted": ("rejected", "halted", "new orders are halted ({reason}); not sent"),
}


class Unresolved(Exception):
    """The outcome is unknown and the broker cannot be asked now: leave the entry pending."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One stream entry as the consumer hands it over."""

    entry_id: str
    fields: dict[bytes, bytes]
    deliveries: int = 1


@dataclass(frozen=True, slots=True)
class Malformed:
    """An entry that is not a valid intent, with whatever could be read of it."""

    reason: str
    request_id: str | None
    reply_to: str | None
    kind: str


class _Loose(msgspec.Struct):
    """The few fields worth reading from an entry that failed to decode."""

    request_id: str | None = None
    reply_to: str | None = None
    kind: str | None = None


@dataclass(frozen=True, slots=True)
class ExecutorConfig:
    """The executor's knobs, taken from ``Settings``."""

    worker_name: str
    retry: RetryPolicy
    tag_max_len: int = 50
    duplicate_tag_code: int = 2
    resolve_timeout_s: float = 60.0
    order_lookback_h: float = 24.0


ScheduleCancel = Callable[[PlaceOrder, int], Awaitable[None]]
Track = Callable[[str, str], None]


def decode_entry(fields: dict[bytes, bytes], keys: Keys) -> Intent | Malformed:
    """An entry's intent, or what can be told of why it is not one."""
    data = fields.get(DATA_FIELD, b"")
    version = fields.get(VERSION_FIELD)
    if version != VERSION_BYTES:
        return _malformed(data, keys, f"unsupported contract version {version!r}")
    if len(data) > MAX_INTENT_BYTES:
        return _malformed(data, keys, f"intent too large ({len(data)} bytes > {MAX_INTENT_BYTES})")
    try:
        intent = INTENT_DECODER.decode(data)
    except msgspec.DecodeError as error:
        return _malformed(data, keys, f"not a valid intent: {error}")
    if not keys.is_reply(intent.reply_to):
        return _malformed(data, keys, f"reply_to must be a reply stream under {keys.prefix}:reply:")
    return intent


def _malformed(data: bytes, keys: Keys, reason: str) -> Malformed:
    """What can be read of a bad entry: enough to answer its producer, if anything."""
    loose = _read_loose(data)
    reply_to = loose.reply_to if loose.reply_to and keys.is_reply(loose.reply_to) else None
    kind = loose.kind if loose.kind in ("place", "modify", "cancel") else "unknown"
    return Malformed(reason, loose.request_id, reply_to, kind)


def _read_loose(data: bytes) -> _Loose:
    try:
        loose = msgspec.json.decode(data[:MAX_INTENT_BYTES], type=_Loose, strict=False)
    except msgspec.DecodeError:
        return _Loose()
    # Only trust a request ID that could have been a valid one.
    if loose.request_id is not None and not 0 < len(loose.request_id) <= 128:
        loose.request_id = None
    return loose


def order_state(order: Order) -> OrderState:
    """The gateway's order status as the contract names it."""
    return _STATES.get(order.status, "unknown")


def order_queue(intent: Intent, keys: Keys) -> str | None:
    """Follow-ups of one order run in submission order; a place has no queue."""
    if isinstance(intent, ModifyOrder | CancelOrder):
        return keys.order_queue(intent.account_id, intent.order_id)
    return None


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
        self._broker = broker
        self._ledger = ledger
        self._keys = keys
        self._config = config
        self._schedule_cancel = schedule_cancel
        self._track = track
        self._risk = risk
        self._observer = observer or Observer()
        self._sleep = sleep
        self._clock = clock

    # --- entry to result --------------------------------------------------------------

    async def handle(self, entry: Entry) -> None:
        """Execute one stream entry and finish it.

        Raises only when the entry must stay pending (``Unresolved``, Redis unreachable,
        a bug): redelivery then retries it, and dead-letters it after too many tries.
        """
        picked = self._now_ms()
        decoded = decode_entry(entry.fields, self._keys)
        if isinstance(decoded, Malformed):
            await self._finish_malformed(entry, decoded, picked)
            return
        try:
            intent = validate_intent(decoded)
        except InvalidOrder as error:
            result = self._result(decoded, picked, None, "rejected", error=error)
            # Leave the order's queue too, or later follow-ups of the order would wait on it.
            await self._finish(
                result, decoded, entry.entry_id, order_queue=order_queue(decoded, self._keys)
            )
            return
        await self.execute(intent, entry.entry_id, picked)

    async def execute(
        self, intent: Intent, entry_id: str | None, picked: int | None = None
    ) -> None:
        """Claim, run and finish a validated intent.

        ``entry_id`` is None for intents that come from a scheduled job rather than the
        stream (the cancel of a good-til-time order).
        """
        picked = self._now_ms() if picked is None else picked
        queue = order_queue(intent, self._keys)
        try:
            claim = await self._take(intent, entry_id, queue)
        except Unresolved as error:
            await self._ledger.note_error(intent.request_id, str(error))
            raise
        refusal = _REFUSALS.get(claim.state)
        if refusal is not None:
            status, code, message = refusal
            result = self._result(
                intent,
                picked,
                None,
                status,
                error_code=code,
                message=message.format(reason=claim.halt_reason),
            )
        elif claim.stored is not None:
            # Already executed (a repeated request ID, or another worker finished it):
            # answer from the stored result; the ledger replies with it and stores nothing.
            result = claim.stored
        else:
            if self._track is not None and entry_id is not None:
                self._track(entry_id, intent.request_id)
            try:
                result = await self._run(
                    intent, picked, started_before=claim.claims > 1, prepaid=claim.prepaid
                )
            except Exception as error:
                # Unresolved, Redis trouble or a bug: the entry stays pending and is
                # retried by redelivery; the next worker reads this in the history and
                # looks the order up before sending anything.
                await self._ledger.note_error(intent.request_id, f"{type(error).__name__}: {error}")
                await self._ledger.release(intent.request_id, entry_id)
                raise
        await self._finish(result, intent, entry_id, order_queue=queue)

    async def give_up(self, entry: Entry, reason: str) -> None:
        """Dead-letter an entry that was delivered too often, and tell its producer.

        A place some worker already started may exist at the broker: it is looked up
        once, so the producer is not told "failed" about an order that is live.
        """
        picked = self._now_ms()
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
        stats = CallStats()
        message = f"{reason}; moved to the dead-letter stream"
        if isinstance(intent, PlaceOrder) and history:
            tag = broker_tag(intent.custom_tag, intent.request_id, self._config.tag_max_len)
            since = datetime.fromtimestamp(intent.created_at / 1000, UTC)
            try:
                found = await self._broker.find_order(
                    intent.account_id, custom_tag=tag, since=since, stats=stats
                )
            except BrokerError as error:
                message += f"; it may have been placed: look for tag {tag!r} ({error.code})"
            else:
                if found is not None:
                    result = self._result(
                        intent,
                        picked,
                        stats,
                        "accepted",
                        order_id=found.id,
                        state=order_state(found),
                    )
                    await self._finish(result, intent, entry.entry_id, order_queue=None)
                    return
                message += "; it was not placed (looked up by tag)"
        result = self._result(
            intent, picked, stats, "failed", error_code="dead_lettered", message=message
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

    async def _take(self, intent: Intent, entry_id: str | None, queue: str | None) -> Claim:
        """The claim once it is ours, done or halted; or wait/throttle once the intent's
        deadline came while it waited for its turn or for the rate budget.

        ``busy`` (another live worker holds the lease) is waited out, never answered: that
        worker may be placing the order right now. Its lease expires if it died.
        """
        backoff = Backoff(0.002, 0.25)
        give_up = intent.deadline + self._config.resolve_timeout_s * 1000
        while True:
            claim = await self._ledger.claim(
                intent.request_id,
                entry_id,
                order_queue=queue,
                kind=_kind(intent),
                account_id=intent.account_id,
            )
            if claim.state in ("go", "done", "halted"):
                return claim
            now = self._now_ms()
            if claim.state == "throttle":
                if now + claim.wait_ms >= intent.deadline:
                    return claim
                await self._sleep(min(claim.wait_ms / 1000, 1.0))
                continue
            if claim.state == "wait" and now >= intent.deadline:
                return claim
            if now >= give_up:
                raise Unresolved(f"request {intent.request_id} still held by another worker")
            await self._sleep(backoff.next())

    async def _run(
        self, intent: Intent, picked: int, *, started_before: bool, prepaid: bool = False
    ) -> OrderResult:
        stats = CallStats(prepaid=int(prepaid))
        try:
            if isinstance(intent, PlaceOrder):
                return await self._place(intent, picked, stats, started_before=started_before)
            return await self._follow_up(intent, picked, stats, started_before=started_before)
        except (InvalidOrder, BrokerError) as error:
            status: Status = "failed" if isinstance(error, BrokerUnavailable) else "rejected"
            return self._result(intent, picked, stats, status, error=error)

    def _not_sent(
        self, intent: Intent, picked: int, stats: CallStats, error: OrderError | None
    ) -> OrderResult:
        """Expired: the deadline passed before the intent could be sent."""
        reason = f" ({error.message})" if error is not None else ""
        return self._result(
            intent,
            picked,
            stats,
            "expired",
            error_code="deadline_passed",
            message=f"the deadline passed before it could be sent{reason}; not sent",
        )

    # --- place ------------------------------------------------------------------------

    async def _place(
        self, intent: PlaceOrder, picked: int, stats: CallStats, *, started_before: bool
    ) -> OrderResult:
        """Send a place exactly once.

        Whenever a send may have reached the broker (this time, or by a worker that
        started this intent before), the order is looked up by its tag before anything
        else: found means placed. Sends that may have gone through are repeated at most
        the retry schedule's length; sends that provably did not (refused connection,
        429) are repeated until the deadline, since the broker may just be away a while.
        """
        reservation = None
        if self._risk is not None and not started_before:
            reservation = await self._risk.admit(intent, stats)
        try:
            return await self._send_place(intent, picked, stats, started_before=started_before)
        finally:
            if self._risk is not None:
                await self._risk.release(reservation)

    async def _send_place(
        self, intent: PlaceOrder, picked: int, stats: CallStats, *, started_before: bool
    ) -> OrderResult:
        tag = broker_tag(intent.custom_tag, intent.request_id, self._config.tag_max_len)
        schedule = self._config.retry.schedule
        maybe_sent = started_before
        unknown: BrokerUnavailable | None = None
        resends = 0
        backoff = Backoff(0.25, 2.0)
        last_error: OrderError | None = None
        while True:
            if maybe_sent:
                found = await self._find_placed(intent, tag, stats)
                if found is not None:
                    return await self._placed(intent, picked, stats, found.id, order_state(found))
            if unknown is not None and resends > len(schedule):
                return self._result(
                    intent,
                    picked,
                    stats,
                    "failed",
                    error=unknown,
                    message=f"{unknown.message}; the order was not placed (looked up by tag)",
                )
            if self._now_ms() >= intent.deadline:
                result = self._not_sent(intent, picked, stats, last_error)
                if maybe_sent:
                    return msgspec.structs.replace(
                        result,
                        message="the deadline passed; the order was not placed (looked up by tag)",
                    )
                return result
            try:
                order_id = await self._broker.place_order(
                    account_id=intent.account_id,
                    symbol=intent.symbol,
                    side=intent.side,
                    quantity=intent.quantity,
                    order_type=intent.order_type,
                    limit_price=intent.limit_price,
                    stop_price=intent.stop_price,
                    stop_loss_ticks=intent.stop_loss_ticks,
                    take_profit_ticks=intent.take_profit_ticks,
                    custom_tag=tag,
                    stats=stats,
                    deadline=self._monotonic_deadline(intent),
                )
            except BrokerRejected as error:
                if not self._is_duplicate_tag(error):
                    raise
                # Our tag is taken: by this very intent, sent before and forgotten.
                found = await self._find_placed(intent, tag, stats)
                if found is not None:
                    return await self._placed(intent, picked, stats, found.id, order_state(found))
                return self._result(
                    intent,
                    picked,
                    stats,
                    "failed",
                    error=error,
                    error_code="duplicate_tag",
                    message=f"the broker says tag {tag!r} is in use but no order carries it; "
                    "not placed",
                )
            except (BrokerUnavailable, BrokerRateLimited) as error:
                last_error = error
                if isinstance(error, BrokerUnavailable) and error.sent:
                    # It may have gone through: wait for the broker to settle, then look.
                    maybe_sent = True
                    unknown = error
                    resends += 1
                    if resends <= len(schedule):
                        await self._pause(schedule[resends - 1], intent)
                    log.info("place %s: outcome unknown; looking it up by tag", tag)
                else:
                    await self._pause(backoff.next(), intent)
            else:
                return await self._placed(intent, picked, stats, order_id, None)

    async def _placed(
        self,
        intent: PlaceOrder,
        picked: int,
        stats: CallStats,
        order_id: int,
        state: OrderState | None,
    ) -> OrderResult:
        if intent.cancel_after is not None and self._schedule_cancel is not None:
            # Before the result is written: if this worker dies in between, the redelivered
            # intent finds the order by its tag and schedules again (same job ID).
            await self._schedule_cancel(intent, order_id)
        return self._result(intent, picked, stats, "accepted", order_id=order_id, state=state)

    def _is_duplicate_tag(self, error: BrokerRejected) -> bool:
        # The gateway publishes no code for it (docs/gateway.md §5.8): match code and text.
        text = (error.broker_message or "").lower()
        return error.broker_code == self._config.duplicate_tag_code and "tag" in text

    async def _find_placed(self, intent: PlaceOrder, tag: str, stats: CallStats) -> Order | None:
        since = datetime.fromtimestamp(intent.created_at / 1000, UTC)
        return await self._ask(
            intent,
            lambda: self._broker.find_order(
                intent.account_id, custom_tag=tag, since=since, stats=stats
            ),
        )

    # --- modify and cancel ------------------------------------------------------------

    async def _follow_up(
        self,
        intent: ModifyOrder | CancelOrder,
        picked: int,
        stats: CallStats,
        *,
        started_before: bool,
    ) -> OrderResult:
        """A modify or cancel, sent again while it provably did not reach the broker.

        Past the deadline it is not sent; if a worker started it before, the order's state
        tells whether that earlier attempt took effect.
        """
        if self._risk is not None and isinstance(intent, ModifyOrder) and not started_before:
            await self._risk.admit(intent, stats)
        backoff = Backoff(0.25, 2.0)
        last_error: OrderError | None = None
        while True:
            if self._now_ms() >= intent.deadline:
                if started_before:
                    order = await self._find_existing(intent, stats)
                    if order is not None and _took_effect(order, intent):
                        return self._accepted_as_is(intent, picked, stats, order, "applied earlier")
                return self._not_sent(intent, picked, stats, last_error)
            try:
                if isinstance(intent, ModifyOrder):
                    return await self._modify(intent, picked, stats)
                return await self._cancel(intent, picked, stats)
            except (BrokerUnavailable, BrokerRateLimited) as error:
                if isinstance(error, BrokerUnavailable) and error.sent:
                    raise
                last_error = error
                await self._pause(backoff.next(), intent)

    async def _modify(self, intent: ModifyOrder, picked: int, stats: CallStats) -> OrderResult:
        try:
            await self._broker.modify_order(
                account_id=intent.account_id,
                order_id=intent.order_id,
                quantity=intent.quantity,
                limit_price=intent.limit_price,
                stop_price=intent.stop_price,
                stats=stats,
                deadline=self._monotonic_deadline(intent),
            )
        except BrokerRejected as error:
            order = await self._find_existing(intent, stats)
            if order is not None and order.status in _LIVE and _has_values(order, intent):
                return self._accepted_as_is(
                    intent, picked, stats, order, "already had these values"
                )
            return self._refused(intent, picked, stats, error, order)
        except BrokerUnavailable as error:
            if not error.sent:
                raise
            order = await self._find_existing(intent, stats)
            if order is not None and _has_values(order, intent):
                return self._accepted_as_is(intent, picked, stats, order, "modified")
            raise
        return self._result(intent, picked, stats, "accepted", order_id=intent.order_id)

    async def _cancel(self, intent: CancelOrder, picked: int, stats: CallStats) -> OrderResult:
        try:
            await self._broker.cancel_order(
                account_id=intent.account_id,
                order_id=intent.order_id,
                stats=stats,
                deadline=self._monotonic_deadline(intent),
            )
        except BrokerRejected as error:
            order = await self._find_existing(intent, stats)
            if order is not None and order.status == OrderStatus.CANCELLED:
                return self._accepted_as_is(intent, picked, stats, order, "already cancelled")
            return self._refused(intent, picked, stats, error, order)
        except BrokerUnavailable as error:
            if not error.sent:
                raise
            order = await self._find_existing(intent, stats)
            if order is not None and order.status == OrderStatus.CANCELLED:
                return self._accepted_as_is(intent, picked, stats, order, "cancelled")
            raise
        return self._result(
            intent, picked, stats, "accepted", order_id=intent.order_id, state="cancelled"
        )

    async def _find_existing(
        self, intent: ModifyOrder | CancelOrder, stats: CallStats
    ) -> Order | None:
        since = datetime.now(UTC) - timedelta(hours=self._config.order_lookback_h)
        return await self._ask(
            intent,
            lambda: self._broker.find_order(
                intent.account_id, order_id=intent.order_id, since=since, stats=stats
            ),
        )

    def _accepted_as_is(
        self, intent: Intent, picked: int, stats: CallStats, order: Order, note: str
    ) -> OrderResult:
        return self._result(
            intent,
            picked,
            stats,
            "accepted",
            order_id=order.id,
            state=order_state(order),
            message=note,
        )

    def _refused(
        self,
        intent: ModifyOrder | CancelOrder,
        picked: int,
        stats: CallStats,
        error: BrokerRejected,
        order: Order | None,
    ) -> OrderResult:
        """A refused follow-up, answered with the order's real state where it tells why."""
        code = None
        if order is None:
            code = "order_not_found"
        elif order.status == OrderStatus.FILLED:
            code = "order_filled"
        elif order.status == OrderStatus.CANCELLED:
            code = "order_cancelled"
        return self._result(
            intent,
            picked,
            stats,
            "rejected",
            error=error,
            error_code=code,
            order_id=intent.order_id,
            state=None if order is None else order_state(order),
        )

    # --- asking the broker what happened ----------------------------------------------

    async def _ask(
        self, intent: Intent, lookup: Callable[[], Awaitable[Order | None]]
    ) -> Order | None:
        """Run a look-up until it answers; ``Unresolved`` once the resolve time is over.

        Look-ups are reads, so the client already retries them on its schedule; this loop
        keeps asking (every few seconds) through a longer broker outage.
        """
        give_up = intent.deadline + self._config.resolve_timeout_s * 1000
        backoff = Backoff(0.5, 5.0)
        while True:
            try:
                return await lookup()
            except BrokerUnavailable as error:
                if self._now_ms() >= give_up:
                    raise Unresolved(f"cannot ask the broker: {error.message}") from None
                delay = backoff.next()
                log.warning("look-up failed (%s); asking again in %.1f s", error.code, delay)
            await self._sleep(delay)

    # --- finishing --------------------------------------------------------------------

    async def _finish(
        self,
        result: OrderResult,
        intent: Intent,
        entry_id: str | None,
        *,
        order_queue: str | None = None,
    ) -> None:
        written = await self._write(
            lambda: self._ledger.finish(
                result, entry_id=entry_id, reply_to=intent.reply_to, order_queue=order_queue
            )
        )
        if written:
            self._observer.intent_finished(result)

    async def _finish_malformed(self, entry: Entry, bad: Malformed, picked: int) -> None:
        result = OrderResult(
            request_id=bad.request_id or f"entry:{entry.entry_id}",
            status="rejected",
            kind=bad.kind,
            error_code="malformed_intent",
            message=bad.reason,
            worker_ms=self._now_ms() - picked,
            finished_at=self._now_ms(),
            worker=self._config.worker_name,
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
            at=self._now_ms(),
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
                await self._sleep(delay)
        return await finish()

    # --- small helpers ----------------------------------------------------------------

    def _result(
        self,
        intent: Intent,
        picked: int,
        stats: CallStats | None,
        status: Status,
        *,
        error: OrderError | None = None,
        error_code: str | None = None,
        message: str | None = None,
        order_id: int | None = None,
        state: OrderState | None = None,
    ) -> OrderResult:
        now = self._now_ms()
        if order_id is None and isinstance(intent, ModifyOrder | CancelOrder):
            order_id = intent.order_id
        return OrderResult(
            request_id=intent.request_id,
            status=status,
            kind=_kind(intent),
            order_id=order_id,
            order_state=state,
            error_code=error_code or (error.code if error is not None else None),
            message=message or (error.message if error is not None else None),
            broker_error_code=error.broker_code if isinstance(error, BrokerRejected) else None,
            attempts=stats.attempts if stats else 0,
            queued_ms=float(max(0, picked - intent.created_at)),
            broker_ms=round(stats.broker_ms, 3) if stats else 0.0,
            worker_ms=float(now - picked),
            finished_at=now,
            worker=self._config.worker_name,
        )

    async def _pause(self, seconds: float, intent: Intent) -> None:
        """Wait before a resend, but not past the intent's deadline."""
        left = (intent.deadline - self._now_ms()) / 1000
        if left > 0:
            await self._sleep(min(seconds, left))

    def _monotonic_deadline(self, intent: Intent) -> float:
        return time.monotonic() + (intent.deadline - self._now_ms()) / 1000

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)


def _kind(intent: Intent) -> Priority:
    if isinstance(intent, PlaceOrder):
        return "place"
    return "modify" if isinstance(intent, ModifyOrder) else "cancel"


def _took_effect(order: Order, intent: ModifyOrder | CancelOrder) -> bool:
    """Whether the order shows the follow-up applied."""
    if isinstance(intent, CancelOrder):
        return order.status == OrderStatus.CANCELLED
    return _has_values(order, intent)


def _has_values(order: Order, intent: ModifyOrder) -> bool:
    """Whether the order already carries every value the modify asks for."""
    return (
        (intent.quantity is None or order.size == intent.quantity)
        and (intent.limit_price is None or order.limit_price == intent.limit_price)
        and (intent.stop_price is None or order.stop_price == intent.stop_price)
    )


def readable_fields(fields: dict[bytes, bytes]) -> dict[str, str]:
    """A stream entry's fields as text, for the dead-letter record."""
    return {
        key.decode(errors="replace"): value.decode(errors="replace")[:MAX_INTENT_BYTES]
        for key, value in fields.items()
    }
