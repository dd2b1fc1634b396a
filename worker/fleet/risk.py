"""Pre-trade risk checks, per account, before the broker is called.

Configured by environment variables (limits for every account) and optionally a TOML file
(``RISK_CONFIG``) with a ``[default]`` table and ``[accounts.<id>]`` tables that override it:

    [default]
    max_order_size = 10
    allowed_symbols = ["MNQ", "ES"]

    [accounts.12345678]
    max_order_size = 2
    max_position = 4
    max_new_orders_per_minute = 30

A breach answers ``rejected`` with a ``risk_*`` code and never reaches the broker.
"""

from __future__ import annotations

import time
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import msgspec
from redis.asyncio import Redis

from ow_core.keys import Keys
from producer.contract import ModifyOrder, PlaceOrder
from producer.errors import InvalidOrder
from worker.broker.client import GatewayClient
from worker.broker.models import OrderSide
from worker.broker.transport import CallStats
from worker.mirror.exposure import MirrorExposure

# A limit of 0 or less would refuse everything: the file says so rather than take it.
Positive = Annotated[int, msgspec.Meta(ge=1)]
Dollars = Annotated[float, msgspec.Meta(gt=0)]


class RiskRejected(InvalidOrder):
    """An order refused by a pre-trade risk limit (``code`` names the limit)."""

    code = "risk_rejected"


class RiskLimits(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """The limits of one account; a limit left out is not checked."""

    max_order_size: Positive | None = None
    """Contracts in one order (or in a modify's new size)."""
    max_position: Positive | None = None
    """Net contracts per symbol in the worst case: the broker's position, every working
    order filling (bracket legs included, so it errs on the safe side) and every new order
    in flight through the fleet."""
    allowed_symbols: list[str] | None = None
    max_new_orders_per_minute: Positive | None = None
    daily_loss_limit: Dollars | None = None
    """Dollars an account may lose in a trading day (realized less fees, plus open P&L at
    the last price) before the fleet halts its new orders (``worker/mirror/guard.py``)."""

    def over(self, other: RiskLimits) -> RiskLimits:
        """These limits, with ``other``'s where these set none."""
        return RiskLimits(
            **{
                name: getattr(self, name)
                if getattr(self, name) is not None
                else getattr(other, name)
                for name in self.__struct_fields__
            }
        )

    @property
    def empty(self) -> bool:
        """Nothing to check."""
        return all(getattr(self, name) is None for name in self.__struct_fields__)


class RiskFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The TOML file's shape."""

    default: RiskLimits = RiskLimits()
    accounts: dict[str, RiskLimits] = msgspec.field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RiskConfig:
    """Limits for every account, and per-account overrides."""

    default: RiskLimits = field(default_factory=RiskLimits)
    accounts: Mapping[int, RiskLimits] = field(default_factory=dict)

    def limits(self, account_id: int) -> RiskLimits:
        """The limits that apply to one account."""
        own = self.accounts.get(account_id)
        return self.default if own is None else own.over(self.default)

    @property
    def empty(self) -> bool:
        """No limit anywhere: the gate can be skipped entirely."""
        return self.default.empty and all(limits.empty for limits in self.accounts.values())

    @classmethod
    def load(cls, path: str | None, env_default: RiskLimits) -> RiskConfig:
        """The file's limits over the environment's; ValueError naming what is wrong."""
        if not path:
            return cls(env_default, {})
        try:
            raw = tomllib.loads(Path(path).read_text())
            parsed = msgspec.convert(raw, RiskFile)
        except (OSError, tomllib.TOMLDecodeError, msgspec.ValidationError) as error:
            raise ValueError(f"{path}: {error}") from None
        try:
            accounts = {int(account): limits for account, limits in parsed.accounts.items()}
        except ValueError:
            raise ValueError(f"{path}: account tables must be named by account ID") from None
        return cls(parsed.default.over(env_default), accounts)


def check_static(limits: RiskLimits, intent: PlaceOrder | ModifyOrder) -> None:
    """The checks that need nothing but the intent."""
    size = intent.quantity
    if limits.max_order_size is not None and size is not None and size > limits.max_order_size:
        raise RiskRejected(
            f"order size {size} is over the account's limit of {limits.max_order_size}",
            code="risk_max_order_size",
        )
    if (
        isinstance(intent, PlaceOrder)
        and limits.allowed_symbols is not None
        and intent.symbol not in limits.allowed_symbols
    ):
        raise RiskRejected(
            f"{intent.symbol} is not among the account's allowed symbols "
            f"({', '.join(limits.allowed_symbols) or 'none'})",
            code="risk_symbol_not_allowed",
        )


@dataclass(frozen=True, slots=True)
class Reservation:
    """Contracts a new order holds in the fleet's in-flight exposure until it finishes."""

    key: str
    quantity: int
    account_id: int
    contract_id: str


class RiskGate:
    """Applies the configured limits to new orders and modifies.

    The position and working orders come from the account's mirror while a leader keeps it
    live (no broker request), else from the broker (two requests).
    """

    def __init__(
        self,
        config: RiskConfig,
        redis: Redis,
        keys: Keys,
        broker: GatewayClient,
        mirror: MirrorExposure | None = None,
    ) -> None:
        self._config = config
        self._redis = redis
        self._keys = keys
        self._broker = broker
        self._mirror = mirror

    async def admit(self, intent: PlaceOrder | ModifyOrder, stats: CallStats) -> Reservation | None:
        """Raise ``RiskRejected`` on a breach; a new order may hold a reservation, which
        ``release`` must give back when it is done."""
        limits = self._config.limits(intent.account_id)
        if limits.empty:
            return None
        check_static(limits, intent)
        if not isinstance(intent, PlaceOrder):
            return None
        if limits.max_new_orders_per_minute is not None:
            await self._count_order(intent, limits.max_new_orders_per_minute)
        if limits.max_position is not None:
            return await self._reserve(intent, limits.max_position, stats)
        return None

    async def release(self, reservation: Reservation | None, order_id: int | None = None) -> None:
        """Give back a new order's in-flight exposure; an order the broker accepted
        (``order_id``) stays counted until the mirror shows it."""
        if reservation is None:
            return
        if order_id is not None and self._mirror is not None:
            await self._mirror.accepted(
                reservation.account_id, order_id, reservation.contract_id, reservation.quantity
            )
        await self._redis.decrby(reservation.key, reservation.quantity)

    async def _count_order(self, intent: PlaceOrder, limit: int) -> None:
        key = self._keys.orders_per_minute(intent.account_id, int(time.time() // 60))
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, 120)
            count, _ = await pipe.execute()
        if count > limit:
            await self._redis.decr(key)  # a refused order does not use up the minute
            raise RiskRejected(
                f"the account has sent {limit} new orders this minute, its limit",
                code="risk_order_rate",
            )

    async def _reserve(self, intent: PlaceOrder, limit: int, stats: CallStats) -> Reservation:
        signed = intent.quantity if intent.side == "BUY" else -intent.quantity
        contract = await self._broker.contracts.resolve(intent.symbol, stats=stats)
        key = self._keys.exposure(intent.account_id, contract.contract_id)
        # Reserve first, then look: two orders racing each other both see the other.
        in_flight = int(await self._redis.incrby(key, signed))
        await self._redis.expire(key, 3600)
        reservation = Reservation(key, signed, intent.account_id, contract.contract_id)
        try:
            seen = (
                None
                if self._mirror is None
                else await self._mirror.of(intent.account_id, contract.contract_id)
            )
            if seen is None:
                position = await self._position(intent.account_id, contract.contract_id, stats)
                working_buy, working_sell = await self._working(
                    intent.account_id, contract.contract_id, stats
                )
            else:
                position, working_buy, working_sell = (
                    seen.position,
                    seen.working_buy,
                    seen.working_sell,
                )
                in_flight += seen.unseen
        except BaseException:
            await self.release(reservation)
            raise
        # Worst case either way: every working order filling, plus all new orders in flight.
        long_case = position + working_buy + max(in_flight, 0)
        short_case = position - working_sell + min(in_flight, 0)
        worst = max(abs(long_case), abs(short_case))
        if worst > limit:
            await self.release(reservation)
            raise RiskRejected(
                f"{intent.symbol} position could reach {worst} contracts with this order "
                f"(position {position}, working buy {working_buy} / sell {working_sell}, "
                f"in flight {in_flight}); the account's limit is {limit}",
                code="risk_max_position",
            )
        return reservation

    async def _position(self, account_id: int, contract_id: str, stats: CallStats) -> int:
        positions = await self._broker.search_open_positions(account_id, stats=stats)
        return sum(p.signed_size for p in positions if p.contract_id == contract_id)

    async def _working(
        self, account_id: int, contract_id: str, stats: CallStats
    ) -> tuple[int, int]:
        orders = await self._broker.search_open_orders(account_id, stats=stats)
        mine = [o for o in orders if o.contract_id == contract_id]
        buy = sum(o.size - o.fill_volume for o in mine if o.side == OrderSide.BID)
        sell = sum(o.size - o.fill_volume for o in mine if o.side == OrderSide.ASK)
        return buy, sell
