"""Worker configuration: environment variables, parsed and validated once at start.

Every variable is documented in the README ("Worker configuration"). ``Settings.from_env``
raises ``ConfigError`` naming the variable and what is wrong with it; the API key is kept
in a ``Secret`` whose repr never shows it.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Final, TypeVar
from urllib.parse import urlsplit

from ow_core.connect import DEFAULT_SENTINEL_MASTER, Address, RedisTarget, parse_sentinels
from ow_core.keys import DEFAULT_PREFIX, Keys
from ow_core.urls import DEFAULT_REDIS_URL, check_redis_url, mask_url
from producer.errors import InvalidOrder, OrderError
from producer.validation import check_account_id
from worker.broker.retry import RetryPolicy
from worker.fleet.budget import HISTORY_LIMIT, RateLimit, Window
from worker.fleet.risk import RiskConfig, RiskLimits

T = TypeVar("T")

DEFAULT_BASE_URL: Final = "https://api.topstepx.com"
# The gateway's documented limit for everything but bar history (docs/gateway.md §7).
DEFAULT_RATE_LIMIT: Final[RateLimit | None] = RateLimit(200, 60.0)
# Variables of these families are ours: one that no setting reads is a mistake to report.
_PREFIXES: Final = (
    "WORKER_", "PROJECTX_", "RISK_", "BROKER_", "ORDER_", "RESULT_", "REPLY_", "INTENTS_",
    "TOKEN_", "CONTRACT_", "METRICS_", "HEALTH_", "RESOLVE_", "WARM_", "LEADER_", "EVENTS_",
    "CLOSE_", "REDIS_SENTINEL", "MARKET_",
)  # fmt: skip


class ConfigError(OrderError):
    """A configuration value is missing or malformed."""

    code = "invalid_config"


class Secret:
    """A string that never shows itself in a repr, a log line or an f-string."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself, for the one place that must send it."""
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a worker process needs to know, from ``Settings.from_env``."""

    redis_url: str = DEFAULT_REDIS_URL
    redis_sentinels: tuple[Address, ...] = ()
    """Sentinels naming the primary (none: ``redis_url`` is the server)."""
    redis_sentinel_master: str = DEFAULT_SENTINEL_MASTER
    key_prefix: str = DEFAULT_PREFIX
    base_url: str = DEFAULT_BASE_URL
    username: str = ""
    api_key: Secret = field(default_factory=lambda: Secret(""))
    worker_name: str = ""
    max_in_flight: int = 64
    block_ms: int = 2000
    claim_idle_ms: int = 10_000
    claim_interval_ms: int = 1000
    max_deliveries: int = 5
    lease_ms: int = 5000
    drain_timeout_s: float = 10.0
    result_ttl_s: int = 86_400
    reply_maxlen: int = 10_000
    intents_retention_s: int = 3600
    broker_timeout_ms: int = 3000
    broker_connect_timeout_ms: int = 1000
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    resolve_timeout_s: float = 60.0
    order_lookback_h: float = 24.0
    close_settle_s: float = 5.0
    """How long a close that may have reached the broker is given to show in the position
    before anything is sent again."""
    tag_max_len: int = 50
    duplicate_tag_code: int = 2
    warm_symbols: tuple[str, ...] = ()
    log_level: str = "INFO"
    rate_limit: RateLimit | None = field(default_factory=lambda: DEFAULT_RATE_LIMIT)
    """The login's budget for every endpoint but retrieveBars (None: no budget at all)."""
    history_rate_limit: RateLimit | None = field(default_factory=lambda: HISTORY_LIMIT)
    """retrieveBars' own budget."""
    token_renew_margin_s: float = 3600.0
    contract_ttl_s: int = 12 * 3600
    contract_refresh_s: float = 60.0
    risk: RiskConfig = field(default_factory=RiskConfig)
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    health_max_outage_s: float = 30.0
    log_format: str = "auto"
    user_hub: bool = True
    hub_url: str = ""
    """The hubs' base URL ('' derives it from the gateway's: rtc.topstepx.com for
    api.topstepx.com, else the gateway's own host, as the simulator serves them)."""
    accounts: tuple[int, ...] = ()
    """The accounts whose lifecycle the fleet mirrors (empty: every one the login sees)."""
    leader_ttl_ms: int = 3000
    events_retention_s: int = 86_400
    flatten_on_loss_limit: bool = False
    """The daily loss guard flattens the account too, not only halts it."""
    hub_ping_s: float = 10.0
    market_hub: bool = True
    """The market-data feed: the listener beside each worker competes for the market hub."""
    market_quotes_maxlen: int = 10_000
    market_trades_maxlen: int = 10_000
    market_bars_maxlen: int = 2_000
    market_bar_grace_ms: int = 500
    """How long after its end a bar waits for trades that arrive late (worker/market/bars.py)."""
    unknown_variables: tuple[str, ...] = ()
    """Variables with one of our prefixes that no setting reads (warned about at start)."""

    @property
    def hubs_url(self) -> str:
        """Where the real-time hubs are (``<this>/user``, ``<this>/market``)."""
        if self.hub_url:
            return self.hub_url
        parts = urlsplit(self.base_url)
        if parts.hostname == "api.topstepx.com":
            return "https://rtc.topstepx.com/hubs"
        return f"{self.base_url.rstrip('/')}/hubs"

    @property
    def redis(self) -> RedisTarget:
        """Where Redis is: what every connection of the worker is made from."""
        return RedisTarget(self.redis_url, self.redis_sentinels, self.redis_sentinel_master)

    @property
    def budget(self) -> Window | None:
        """The login's window for every endpoint but retrieveBars (None: no budget)."""
        if self.rate_limit is None:
            return None
        return Window.of(self.keys, self.username, self.rate_limit)

    @property
    def history_budget(self) -> Window | None:
        """The login's window for retrieveBars (None: no budget)."""
        if self.rate_limit is None or self.history_rate_limit is None:
            return None
        return Window.of(self.keys, self.username, self.history_rate_limit, "history")

    @property
    def keys(self) -> Keys:
        """Redis key names under this deployment's prefix."""
        return Keys(self.key_prefix)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and check every variable; raise ``ConfigError`` on the first bad one."""
        env = os.environ if environ is None else environ
        reader = _Reader(env)
        d = cls()  # every default is written once, as a field's default above
        settings = cls(
            redis_url=reader.text("REDIS_URL", d.redis_url),
            redis_sentinels=reader.parsed("REDIS_SENTINELS", d.redis_sentinels, parse_sentinels),
            redis_sentinel_master=reader.text("REDIS_SENTINEL_MASTER", d.redis_sentinel_master),
            key_prefix=reader.text("ORDER_KEY_PREFIX", d.key_prefix),
            base_url=reader.text("PROJECTX_BASE_URL", d.base_url),
            username=reader.text("PROJECTX_USERNAME", ""),
            api_key=Secret(reader.raw("PROJECTX_API_KEY")),
            worker_name=reader.text("WORKER_NAME", f"{socket.gethostname()}-{os.getpid()}"),
            max_in_flight=reader.integer("WORKER_MAX_IN_FLIGHT", d.max_in_flight, low=1),
            block_ms=reader.integer("WORKER_BLOCK_MS", d.block_ms, low=1),
            claim_idle_ms=reader.integer("WORKER_CLAIM_IDLE_MS", d.claim_idle_ms, low=100),
            claim_interval_ms=reader.integer(
                "WORKER_CLAIM_INTERVAL_MS", d.claim_interval_ms, low=10
            ),
            max_deliveries=reader.integer("WORKER_MAX_DELIVERIES", d.max_deliveries, low=1),
            lease_ms=reader.integer("WORKER_LEASE_MS", d.lease_ms, low=100),
            drain_timeout_s=reader.real("WORKER_DRAIN_TIMEOUT_S", d.drain_timeout_s, low=0),
            result_ttl_s=reader.integer("RESULT_TTL_S", d.result_ttl_s, low=1),
            reply_maxlen=reader.integer("REPLY_MAXLEN", d.reply_maxlen, low=10),
            intents_retention_s=reader.integer("INTENTS_RETENTION_S", d.intents_retention_s, low=0),
            broker_timeout_ms=reader.integer("BROKER_TIMEOUT_MS", d.broker_timeout_ms, low=1),
            broker_connect_timeout_ms=reader.integer(
                "BROKER_CONNECT_TIMEOUT_MS", d.broker_connect_timeout_ms, low=1
            ),
            retry=reader.parsed("BROKER_RETRY_SCHEDULE_MS", d.retry, RetryPolicy.from_ms),
            resolve_timeout_s=reader.real("RESOLVE_TIMEOUT_S", d.resolve_timeout_s, low=0),
            order_lookback_h=reader.real("ORDER_LOOKBACK_H", d.order_lookback_h, low=0.01),
            close_settle_s=reader.real("CLOSE_SETTLE_S", d.close_settle_s, low=0.1),
            tag_max_len=reader.integer("PROJECTX_TAG_MAX_LEN", d.tag_max_len, low=20),
            duplicate_tag_code=reader.integer(
                "PROJECTX_DUPLICATE_TAG_CODE", d.duplicate_tag_code, low=0
            ),
            warm_symbols=tuple(
                s.strip().upper() for s in reader.raw("WARM_SYMBOLS").split(",") if s.strip()
            ),
            rate_limit=reader.parsed("PROJECTX_RATE_LIMIT", d.rate_limit, RateLimit.parse),
            history_rate_limit=reader.parsed(
                "PROJECTX_HISTORY_RATE_LIMIT", d.history_rate_limit, RateLimit.parse
            ),
            token_renew_margin_s=reader.real("TOKEN_RENEW_MARGIN_S", d.token_renew_margin_s, low=0),
            contract_ttl_s=reader.integer("CONTRACT_TTL_S", d.contract_ttl_s, low=1),
            contract_refresh_s=reader.real("CONTRACT_REFRESH_S", d.contract_refresh_s, low=0),
            risk=reader.parsed(
                "RISK_CONFIG",
                RiskConfig(_risk_from_env(reader)),
                lambda path: RiskConfig.load(path, _risk_from_env(reader)),
            ),
            metrics_port=reader.optional_integer("METRICS_PORT", high=65535),
            metrics_host=reader.text("METRICS_HOST", d.metrics_host),
            health_max_outage_s=reader.real("HEALTH_MAX_OUTAGE_S", d.health_max_outage_s, low=1),
            user_hub=reader.switch("PROJECTX_USER_HUB", d.user_hub),
            hub_url=reader.text("PROJECTX_HUB_URL", d.hub_url).rstrip("/"),
            accounts=reader.parsed("PROJECTX_ACCOUNTS", d.accounts, _account_list),
            leader_ttl_ms=reader.integer("LEADER_TTL_MS", d.leader_ttl_ms, low=500),
            flatten_on_loss_limit=reader.switch(
                "RISK_FLATTEN_ON_LOSS_LIMIT", d.flatten_on_loss_limit
            ),
            events_retention_s=reader.integer("EVENTS_RETENTION_S", d.events_retention_s, low=60),
            hub_ping_s=reader.real("PROJECTX_HUB_PING_S", d.hub_ping_s, low=1),
            market_hub=reader.switch("PROJECTX_MARKET_HUB", d.market_hub),
            market_quotes_maxlen=reader.integer(
                "MARKET_QUOTES_MAXLEN", d.market_quotes_maxlen, low=10
            ),
            market_trades_maxlen=reader.integer(
                "MARKET_TRADES_MAXLEN", d.market_trades_maxlen, low=10
            ),
            market_bars_maxlen=reader.integer("MARKET_BARS_MAXLEN", d.market_bars_maxlen, low=10),
            market_bar_grace_ms=reader.integer("MARKET_BAR_GRACE_MS", d.market_bar_grace_ms, low=0),
            log_format=reader.choice("LOG_FORMAT", "AUTO", ("AUTO", "JSON", "TEXT")).lower(),
            log_level=reader.choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR")),
        )
        _check(settings)
        return dataclasses.replace(settings, unknown_variables=reader.unknown())

    def require_credentials(self) -> None:
        """A worker cannot log in without these; say so before anything starts."""
        missing = [
            name
            for name, value in (
                ("PROJECTX_USERNAME", self.username),
                ("PROJECTX_API_KEY", self.api_key),
            )
            if not value
        ]
        if missing:
            raise ConfigError(
                f"{' and '.join(missing)} must be set (the broker login; "
                "`order-worker demo` runs without an account)"
            )

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={value}" for name, value in self.describe().items())
        return f"Settings({shown})"

    def describe(self) -> dict[str, str]:
        """Every setting as text, secrets masked: for the start-up log line."""
        shown = {f.name: repr(getattr(self, f.name)) for f in fields(self)}
        shown["redis_url"] = repr(mask_url(self.redis_url))
        return shown


def _check(settings: Settings) -> None:
    """What no single variable can tell: combinations, and the URLs."""
    try:
        check_redis_url(settings.redis_url)
    except ValueError as error:
        raise ConfigError(f"REDIS_URL: {error}") from None
    try:
        settings.redis  # noqa: B018 (the combination of URL and sentinels is checked here)
    except ValueError as error:
        raise ConfigError(f"REDIS_SENTINELS: {error}") from None
    if not settings.base_url.startswith(("http://", "https://")):
        raise ConfigError(f"PROJECTX_BASE_URL must be an http(s) URL, got {settings.base_url!r}")
    if settings.claim_idle_ms < settings.lease_ms:
        # A running entry's idle time is reset with its lease, every third of it; a
        # shorter idle limit would have live workers' entries reclaimed from under them.
        raise ConfigError(
            f"WORKER_CLAIM_IDLE_MS ({settings.claim_idle_ms}) must be at least "
            f"WORKER_LEASE_MS ({settings.lease_ms})"
        )


def _account_list(text: str) -> tuple[int, ...]:
    try:
        accounts = tuple(check_account_id(int(part)) for part in text.split(",") if part.strip())
    except (ValueError, InvalidOrder):
        raise ValueError("expected comma-separated account IDs such as 12345678,12345679") from None
    return accounts


def _risk_from_env(reader: _Reader) -> RiskLimits:
    """Limits for every account from RISK_* variables (a RISK_CONFIG file can refine them)."""
    symbols = reader.text("RISK_ALLOWED_SYMBOLS", "")
    return RiskLimits(
        max_order_size=reader.optional_integer("RISK_MAX_ORDER_SIZE"),
        max_position=reader.optional_integer("RISK_MAX_POSITION"),
        allowed_symbols=[s.strip().upper() for s in symbols.split(",") if s.strip()] or None,
        max_new_orders_per_minute=reader.optional_integer("RISK_MAX_NEW_ORDERS_PER_MINUTE"),
        daily_loss_limit=reader.optional_real("RISK_DAILY_LOSS_LIMIT"),
    )


class _Reader:
    """Typed access to an environment mapping with errors that name the variable; it
    remembers every name it was asked for, to tell which variables of ours it never read
    (a misspelt ``RISK_MAX_POSITON`` would otherwise be silently ignored)."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env
        self._read: set[str] = set()

    def raw(self, name: str) -> str:
        self._read.add(name)
        return self._env.get(name, "")

    def text(self, name: str, default: str) -> str:
        return self.raw(name).strip() or default

    def integer(self, name: str, default: int, *, low: int, high: int | None = None) -> int:
        value = self.parsed(name, default, int)
        if value < low or (high is not None and value > high):
            bound = f">= {low}" if high is None else f"{low} to {high}"
            raise ConfigError(f"{name} must be {bound}, got {value}")
        return value

    def optional_integer(self, name: str, *, high: int | None = None) -> int | None:
        if not self.raw(name).strip():
            return None
        return self.integer(name, 0, low=1, high=high)

    def unknown(self) -> tuple[str, ...]:
        """Variables with one of our prefixes that nothing read, each with the name it
        was probably meant to be."""
        found = []
        for name in sorted(self._env):
            if name.startswith(_PREFIXES) and name not in self._read:
                close = difflib.get_close_matches(name, self._read, n=1)
                found.append(f"{name} (did you mean {close[0]}?)" if close else name)
        return tuple(found)

    def optional_real(self, name: str) -> float | None:
        if not self.raw(name).strip():
            return None
        value = self.real(name, 0.0, low=0.0)
        if value <= 0:
            raise ConfigError(f"{name} must be > 0, got {value:g}")
        return value

    def real(self, name: str, default: float, *, low: float) -> float:
        value = self.parsed(name, default, float)
        if not math.isfinite(value) or value < low:
            raise ConfigError(f"{name} must be a finite number >= {low:g}, got {value:g}")
        return value

    def parsed(self, name: str, default: T, parse: Callable[[str], T]) -> T:
        raw = self.raw(name).strip()
        if not raw:
            return default
        try:
            return parse(raw)
        except ValueError as error:
            raise ConfigError(f"{name}: cannot read {raw!r} ({error})") from None

    def switch(self, name: str, default: bool) -> bool:
        value = self.raw(name).strip().lower()
        if not value:
            return default
        if value in ("on", "true", "yes", "1"):
            return True
        if value in ("off", "false", "no", "0"):
            return False
        raise ConfigError(f"{name} must be on or off, got {value!r}")

    def choice(self, name: str, default: str, allowed: tuple[str, ...]) -> str:
        value = self.raw(name).strip().upper() or default
        if value not in allowed:
            raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
        return value
