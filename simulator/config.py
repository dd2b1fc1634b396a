"""Start-up settings of one simulator instance."""

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from simulator.faults import FaultConfig
from simulator.hubs import HubSettings
from simulator.orders import PlaceOrderErrorCode, StopThroughMarket, TagUniqueness
from simulator.tokens import DEFAULT_TTL_S

# 12345678 is the account ID used in the predecessor project's examples.
DEFAULT_ACCOUNTS = (12345678, 12345679, 12345680)


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Everything `create_app` needs; the defaults behave like the real gateway."""

    accounts: tuple[int, ...] = DEFAULT_ACCOUNTS
    # None: any non-empty user name, or any non-empty API key, is accepted (demo mode).
    username: str | None = None
    api_key: str | None = None
    token_ttl_s: float = DEFAULT_TTL_S
    # None: 429 carries no Retry-After, like the gateway (docs/gateway.md §7).
    retry_after_s: int | None = None
    faults: FaultConfig = field(default_factory=FaultConfig)
    hubs: HubSettings = field(default_factory=HubSettings)
    tag_uniqueness: TagUniqueness = TagUniqueness.FOREVER
    duplicate_tag_code: int = PlaceOrderErrorCode.ORDER_REJECTED
    # None: a fresh, unseeded random source.
    seed: int | None = None
    # The day that decides the front-month contracts; None: today (UTC) at start-up.
    trading_date: date | None = None
    # The market: ask - bid in ticks; a seeded random walk every this many ms (0: off).
    spread_ticks: int = 1
    random_walk_ms: float = 0.0
    stop_through_market: StopThroughMarket = StopThroughMarket.REJECT
    # Dollars per contract and fill; None: each product's own (contracts.py).
    fee_per_contract: Decimal | None = None
    # The venue's daily loss limit per account, in dollars; None: none.
    daily_loss_limit: Decimal | None = None
