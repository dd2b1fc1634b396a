"""The user hub, listened to by the fleet's leader: every push of an account's orders,
positions, trades and balance goes to the account's mirror and events.

It runs as the job of a ``Leadership``: only the worker holding the lease connects.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Final

import msgspec
from redis.asyncio import Redis

from ow_core.aio import cancel_and_wait
from ow_core.fastlane import FastLane
from ow_core.keys import Keys
from ow_core.redis_down import REDIS_ERRORS, is_redis_down
from ow_core.tags import plain_key_of
from producer.errors import OrderError
from producer.events import Event
from worker.broker.client import GatewayClient
from worker.broker.errors import BrokerError
from worker.broker.models import Account, ContractInfo, Order, Position, Trade
from worker.hubs.connection import (
    Handler,
    HubConnection,
    Subscription,
    TokenKeeper,
    payload_of,
)
from worker.mirror import normalize
from worker.mirror.guard import LossGuard, Tick
from worker.mirror.normalize import Model
from worker.mirror.reconcile import RealizedToday, Reconciler, day_start_ms, trading_day_start
from worker.mirror.store import MirrorStore

log = logging.getLogger("worker.mirror")

_REMEMBERED_ORDERS: Final = 10_000
_CONTRACT_ID: Final = re.compile(r"^CON\.F\.[A-Z]+\.(?P<symbol>[A-Z0-9]+)\.[A-Z0-9]+$")
_PRUNE_EVERY_S: Final = 3600.0
_PROVE_AGAIN_S: Final = 5.0


class _Quote(msgspec.Struct, rename="camel", frozen=True):
    """The one field of a market hub quote the loss guard needs."""

    last_price: float | None = None


_QUOTE: Final = msgspec.json.Decoder(_Quote)


async def _nothing() -> None:
    """No proof to run when the quotes connection opens (prices are not a mirror)."""


class ContractSymbols:
    """Contract ID to symbol and tick: from the contracts this worker resolved (no request),
    else asked of the broker once per contract."""

    def __init__(self, broker: GatewayClient) -> None:
        self._broker = broker
        self._known: dict[str, tuple[str | None, Tick]] = {}

    def __call__(self, contract_id: str) -> str | None:
        known = self._known.get(contract_id)
        return None if known is None else known[0]

    def tick(self, contract_id: str) -> Tick | None:
        """The contract's tick size and value, once known."""
        known = self._known.get(contract_id)
        return None if known is None else known[1]

    async def known(self, contract_id: str) -> None:
        """Learn a contract (a failure leaves it unknown, to try again later)."""
        if contract_id in self._known:
            return
        try:
            resolved = await self._resolved(contract_id)
            if resolved is not None and resolved.tick_size and resolved.tick_value:
                tick = Tick(resolved.tick_size, resolved.tick_value)
                self._known[contract_id] = (resolved.symbol, tick)
                return
            contract = await self._broker.contracts.by_id(contract_id)
        except OrderError as error:  # the broker's errors, and a symbol it would not take
            log.warning("no symbol for %s yet (%s)", contract_id, error.code)
            return
        tick = Tick(contract.tick_size, contract.tick_value)
        self._known[contract_id] = (normalize.symbol_of_name(contract.name), tick)

    async def _resolved(self, contract_id: str) -> ContractInfo | None:
        """The contract as the fleet resolved it already (shared in Redis: no request),
        by the symbol its ID carries (``CON.F.US.MNQ.Z25``)."""
        contracts = self._broker.contracts
        known = contracts.known_by_id(contract_id)
        if known is not None:
            return known
        match = _CONTRACT_ID.match(contract_id)
        if match is None or not await contracts.shared(match.group("symbol")):
            return None
        resolved = await contracts.resolve(match.group("symbol"))
        return resolved if resolved.contract_id == contract_id else None


class UserHub:
    """The leader's job: keep every account's mirror live from the user hub."""

    def __init__(
        self,
        broker: GatewayClient,
        redis: Redis,
        keys: Keys,
        *,
        hub_url: str,
        accounts: Sequence[int] = (),
        synced_ttl_ms: int = 5_000,
        ping_s: float = 10.0,
        retention_s: int = 86_400,
        lane: FastLane | None = None,
        market_url: str = "",
        loss_limit_of: Callable[[int], float | None] | None = None,
        flatten_on_loss_limit: bool = False,
        holder: str = "",
    ) -> None:
        self._broker = broker
        self._redis = redis
        self._keys = keys
        self._hub_url = hub_url
        self._configured = tuple(accounts)
        self._accounts: tuple[int, ...] = ()
        self._synced_ttl_ms = synced_ttl_ms
        self._ping_s = ping_s
        self._market_url = market_url
        self._store = MirrorStore(redis, keys, retention_s=retention_s, lane=lane)
        self._proven = False
        self._marked = False
        self._next_proof = 0.0
        self._symbols = ContractSymbols(broker)
        self._guard = (
            None
            if loss_limit_of is None
            else LossGuard(
                redis,
                keys,
                limit_of=loss_limit_of,
                tick_of=self._symbols.tick,
                holder=holder,
                flatten=flatten_on_loss_limit,
            )
        )
        self._quotes: HubConnection | None = None
        self._quoted: set[str] = set()
        self._request_ids: dict[int, str | None] = {}
        self._realized = RealizedToday()
        self._reconciler = Reconciler(
            broker,
            self._store,
            redis,
            keys,
            symbols=self._symbols,
            known=self._symbols.known,
            request_id_of=self._request_id_of,
            realized=self._realized,
        )
        self.connection: HubConnection | None = None

    async def run(self) -> None:
        """Connect, subscribe, reconcile after every gap, keep the mirrors marked live."""
        self._accounts = self._configured or tuple(
            a.id for a in await self._broker.search_accounts()
        )
        log.info("user hub: watching accounts %s", ", ".join(map(str, self._accounts)))
        self.connection = connection = HubConnection(
            self._hub_url,
            self._broker.auth.ensure_token,
            handlers={
                "GatewayUserOrder": self._safely(self._on_order),
                "GatewayUserTrade": self._safely(self._on_trade),
                "GatewayUserPosition": self._safely(self._on_position),
                "GatewayUserAccount": self._safely(self._on_account),
            },
            subscriptions=self._subscriptions,
            on_open=self._reconcile,
            on_gap=self._gap,
            ping_s=self._ping_s,
        )
        watch = [
            asyncio.create_task(connection.run(), name="user-hub"),
            asyncio.create_task(self._keep_synced(connection), name="user-hub-synced"),
        ]
        if self._guard is not None and self._market_url:
            # The daily loss guard values open positions at the market hub's last price.
            self._quotes = HubConnection(
                self._market_url,
                self._broker.auth.ensure_token,
                handlers={"GatewayQuote": self._safely(self._on_quote)},
                subscriptions=self._quote_subscriptions,
                on_open=_nothing,
                on_gap=lambda why: None,
                ping_s=self._ping_s,
            )
            watch.append(asyncio.create_task(self._quotes.run(), name="market-hub-quotes"))
        try:
            done, _ = await asyncio.wait(watch, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()
        finally:
            await cancel_and_wait(watch)
            await self._unproven()

    def _subscriptions(self) -> list[Subscription]:
        subscriptions = [Subscription("SubscribeAccounts")]
        for account_id in self._accounts:
            for method in ("SubscribeOrders", "SubscribePositions", "SubscribeTrades"):
                subscriptions.append(Subscription(method, (account_id,)))
        return subscriptions

    async def _reconcile(self) -> None:
        self._next_proof = time.monotonic() + _PROVE_AGAIN_S
        try:
            await self._reconciler.accounts(self._accounts)
        except BrokerError as error:
            # The hub is up but the gap is not proven: the mirror is not called live (the
            # risk check asks the broker) until a later try succeeds.
            log.warning("reconciliation failed (%s); the mirror is not live yet", error.code)
            return
        except REDIS_ERRORS as error:
            if not is_redis_down(error):
                raise
            log.warning("reconciliation cannot reach Redis (%s); trying again shortly", error)
            return
        self._proven = True
        await self._mark_synced()

    def _gap(self, why: str) -> None:
        self._proven = False

    async def _mark_synced(self) -> None:
        now = int(time.time() * 1000)
        for account_id in self._accounts:
            await self._store.mark_synced(account_id, now, self._synced_ttl_ms)

    async def _unproven(self) -> None:
        """No longer listening: readers stop trusting the mirror now, not at its expiry."""
        self._proven = False
        try:
            for account_id in self._accounts:
                await asyncio.wait_for(self._store.forget_synced(account_id), 1.0)
        except (*REDIS_ERRORS, TimeoutError):
            pass  # it expires by itself within synced_ttl_ms

    async def _keep_synced(self, connection: HubConnection) -> None:
        """Tend the connection every fifth of the mirror's time to live, whatever Redis does."""
        keeper = TokenKeeper(
            connection,
            self._broker.auth.ensure_token,
            current=self._broker.get_token(),
            hub="user hub",
        )
        pruned = time.monotonic()
        while True:
            await asyncio.sleep(self._synced_ttl_ms / 5000)
            try:
                await self._tend(connection)
                if time.monotonic() - pruned > _PRUNE_EVERY_S:
                    pruned = time.monotonic()
                    await self._prune()
            except REDIS_ERRORS as error:
                if not is_redis_down(error):
                    raise
                self._proven = False
                log.warning("user hub: cannot reach Redis (%s)", error)
            await keeper.tend()

    async def _tend(self, connection: HubConnection) -> None:
        """Mark each mirror live while connected and proven, else make sure it is not; prove
        it again when an earlier proof failed."""
        if not connection.connected.is_set():
            if self._marked:
                for account_id in self._accounts:
                    await self._store.forget_synced(account_id)
                self._marked = False
            return
        if not self._proven and time.monotonic() >= self._next_proof:
            await self._reconcile()
        if self._proven:
            await self._mark_synced()
            self._marked = True
        elif self._marked:
            for account_id in self._accounts:
                await self._store.forget_synced(account_id)
            self._marked = False

    async def _prune(self) -> None:
        day = trading_day_start(datetime.now(UTC))
        before = int(day.timestamp() * 1000) - 24 * 3600 * 1000
        for account_id in self._accounts:
            dropped = await self._store.prune(account_id, before)
            if dropped:
                log.info(
                    "account %d: pruned %d orders and trades of past days", account_id, dropped
                )

    # --- hub pushes -------------------------------------------------------------------

    async def _on_order(self, arguments: list[Any]) -> None:
        order = self._decode("order", arguments, Order)
        if order is None:
            return
        await self._symbols.known(order.contract_id)
        event = normalize.order_update(
            order, self._symbols, request_id=await self._request_id_of(order)
        )
        await self._apply(event)

    async def _on_trade(self, arguments: list[Any]) -> None:
        trade = self._decode("trade", arguments, Trade)
        if trade is not None:
            await self._symbols.known(trade.contract_id)
            event = normalize.trade_update(trade, self._symbols)
            if await self._apply(event):
                self._realized.add(event, day_start_ms())

    async def _on_position(self, arguments: list[Any]) -> None:
        position = self._decode("position", arguments, Position)
        if position is not None:
            await self._symbols.known(position.contract_id)
            at = int(time.time() * 1000)
            await self._apply(normalize.position_update(position, self._symbols, at=at))

    async def _on_account(self, arguments: list[Any]) -> None:
        account = self._decode("account", arguments, Account)
        if account is None or (self._accounts and account.id not in self._accounts):
            return
        day = day_start_ms()
        realized = self._realized.value(account.id, day)
        if realized is None:
            realized = self._realized.reset(
                account.id, await self._reconciler.trades(account.id), day
            )
        at = int(time.time() * 1000)
        await self._apply(normalize.account_update(account, realized_pnl=realized, at=at))

    def _decode(self, kind: str, arguments: list[Any], model: type[Model]) -> Model | None:
        try:
            return normalize.decode(model, payload_of(arguments))
        except msgspec.DecodeError as error:
            log.warning("ignoring a %s push the gateway's models do not read: %s", kind, error)
            return None

    async def _apply(self, event: Event) -> bool:
        """Apply a pushed change; whether it was new."""
        new = await self._store.apply(event) is not None
        if self._guard is not None:
            # Fed whether or not the change was new: after a restart the guard learns the
            # day from changes the mirror had seen already.
            await self._guard.on_event(event)
            await self._quote_new_contracts()
        return new

    def _safely(self, handler: Handler) -> Handler:
        """A push handler that rides out a Redis outage rather than end the session."""

        async def handle(arguments: list[Any]) -> None:
            try:
                await handler(arguments)
            except REDIS_ERRORS as error:
                if not is_redis_down(error):
                    raise
                # Lost for now, not for good: the mirror is not live until a
                # reconciliation, once Redis is back, writes what this push would have.
                if self._proven:
                    log.warning(
                        "user hub: cannot write to Redis (%s); reconciling once back", error
                    )
                self._proven = False

        return handle

    def _quote_subscriptions(self) -> list[Subscription]:
        self._quoted = self._guard.contracts() if self._guard is not None else set()
        return [Subscription("SubscribeContractQuotes", (c,)) for c in sorted(self._quoted)]

    async def _quote_new_contracts(self) -> None:
        if self._guard is None or self._quotes is None:
            return
        for contract_id in self._guard.contracts() - self._quoted:
            self._quoted.add(contract_id)
            await self._quotes.subscribe(Subscription("SubscribeContractQuotes", (contract_id,)))

    async def _on_quote(self, arguments: list[Any]) -> None:
        if self._guard is None or len(arguments) < 2:
            return
        try:
            quote = _QUOTE.decode(payload_of(arguments, 1))
        except msgspec.DecodeError:
            return
        if quote.last_price is not None:
            await self._guard.on_quote(str(arguments[0]), quote.last_price)

    async def _request_id_of(self, order: Order) -> str | None:
        """The intent that placed an order, when its tag is ours: the tag ends in the
        request key, which is the request ID itself for every plain ID of up to 32
        characters (all that ``OrderClient`` makes), and such a request was claimed."""
        if order.id in self._request_ids:
            return self._request_ids[order.id]
        key = plain_key_of(order.custom_tag)
        request_id = None
        if key is not None and await self._redis.exists(self._keys.claims(key)):
            request_id = key
        if len(self._request_ids) >= _REMEMBERED_ORDERS:
            del self._request_ids[next(iter(self._request_ids))]  # the oldest
        self._request_ids[order.id] = request_id
        return request_id
