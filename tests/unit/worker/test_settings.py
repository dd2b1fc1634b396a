"""worker/settings.py: environment variables parsed and checked once, secrets never shown."""

from __future__ import annotations

import os
import socket

import pytest

from ow_core.urls import mask_url
from worker.broker.retry import RetryPolicy
from worker.settings import ConfigError, Secret, Settings

API_KEY = "sk-settings-API-KEY-77aa66bb"
REDIS_PASSWORD = "hunter2-redis-pw"  # noqa: S105 (a fake, to detect leaks)

FULL_ENV = {
    "REDIS_URL": "redis://10.0.0.5:6380/2",
    "ORDER_KEY_PREFIX": "desk1",
    "PROJECTX_BASE_URL": "https://gateway-api-demo.s2f.projectx.com",
    "PROJECTX_USERNAME": "trader",
    "PROJECTX_API_KEY": API_KEY,
    "WORKER_NAME": "worker-a",
    "WORKER_MAX_IN_FLIGHT": "8",
    "WORKER_BLOCK_MS": "500",
    "WORKER_CLAIM_IDLE_MS": "3000",
    "WORKER_CLAIM_INTERVAL_MS": "250",
    "WORKER_MAX_DELIVERIES": "3",
    "WORKER_LEASE_MS": "2000",
    "WORKER_DRAIN_TIMEOUT_S": "2.5",
    "RESULT_TTL_S": "600",
    "REPLY_MAXLEN": "100",
    "INTENTS_RETENTION_S": "0",
    "BROKER_TIMEOUT_MS": "1500",
    "BROKER_CONNECT_TIMEOUT_MS": "250",
    "BROKER_RETRY_SCHEDULE_MS": "100,200",
    "RESOLVE_TIMEOUT_S": "30",
    "ORDER_LOOKBACK_H": "0.5",
    "PROJECTX_TAG_MAX_LEN": "40",
    "PROJECTX_DUPLICATE_TAG_CODE": "9",
    "WARM_SYMBOLS": " mnq, ,ES ",
    "LOG_LEVEL": "debug",
}


def test_defaults_without_any_variable() -> None:
    settings = Settings.from_env({})
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.key_prefix == "ow"
    assert settings.base_url == "https://api.topstepx.com"
    assert settings.username == ""
    assert not settings.api_key
    assert settings.worker_name == f"{socket.gethostname()}-{os.getpid()}"
    assert settings.max_in_flight == 64
    assert settings.block_ms == 2000
    assert settings.claim_idle_ms == 10_000
    assert settings.claim_interval_ms == 1000
    assert settings.max_deliveries == 5
    assert settings.lease_ms == 5000
    assert settings.drain_timeout_s == 10.0
    assert settings.result_ttl_s == 86_400
    assert settings.reply_maxlen == 10_000
    assert settings.intents_retention_s == 3600
    assert settings.broker_timeout_ms == 3000
    assert settings.broker_connect_timeout_ms == 1000
    assert settings.retry == RetryPolicy((0.75, 1.5, 3.0))
    assert settings.resolve_timeout_s == 60.0
    assert settings.order_lookback_h == 24.0
    assert settings.tag_max_len == 50
    assert settings.duplicate_tag_code == 2
    assert settings.warm_symbols == ()
    assert settings.log_level == "INFO"
    assert settings.keys.prefix == "ow"


def test_every_variable_is_read() -> None:
    settings = Settings.from_env(FULL_ENV)
    assert settings.redis_url == "redis://10.0.0.5:6380/2"
    assert settings.key_prefix == "desk1"
    assert settings.keys.prefix == "desk1"
    assert settings.base_url == "https://gateway-api-demo.s2f.projectx.com"
    assert settings.username == "trader"
    assert settings.api_key.reveal() == API_KEY
    assert settings.worker_name == "worker-a"
    assert settings.max_in_flight == 8
    assert settings.block_ms == 500
    assert settings.claim_idle_ms == 3000
    assert settings.claim_interval_ms == 250
    assert settings.max_deliveries == 3
    assert settings.lease_ms == 2000
    assert settings.drain_timeout_s == 2.5
    assert settings.result_ttl_s == 600
    assert settings.reply_maxlen == 100
    assert settings.intents_retention_s == 0
    assert settings.broker_timeout_ms == 1500
    assert settings.broker_connect_timeout_ms == 250
    assert settings.retry.schedule == pytest.approx((0.1, 0.2))
    assert settings.resolve_timeout_s == 30.0
    assert settings.order_lookback_h == 0.5
    assert settings.tag_max_len == 40
    assert settings.duplicate_tag_code == 9
    assert settings.warm_symbols == ("MNQ", "ES")
    assert settings.log_level == "DEBUG"


def test_blank_values_mean_the_default_and_spaces_are_ignored() -> None:
    settings = Settings.from_env(
        {"WORKER_MAX_IN_FLIGHT": "  ", "WORKER_BLOCK_MS": " 750 ", "REDIS_URL": ""}
    )
    assert settings.max_in_flight == 64
    assert settings.block_ms == 750
    assert settings.redis_url == "redis://127.0.0.1:6379/0"


def test_an_empty_retry_schedule_means_no_retries_only_when_set_to_nothing() -> None:
    assert Settings.from_env({"BROKER_RETRY_SCHEDULE_MS": ","}).retry.schedule == ()
    assert Settings.from_env({"BROKER_RETRY_SCHEDULE_MS": ""}).retry == RetryPolicy()


def test_from_env_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKER_MAX_IN_FLIGHT", "12")
    monkeypatch.setenv("WORKER_NAME", "from-os-environ")
    settings = Settings.from_env()
    assert (settings.max_in_flight, settings.worker_name) == (12, "from-os-environ")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("WORKER_MAX_IN_FLIGHT", "0"),
        ("WORKER_MAX_IN_FLIGHT", "many"),
        ("WORKER_MAX_IN_FLIGHT", "1.5"),
        ("WORKER_BLOCK_MS", "-1"),
        ("WORKER_CLAIM_IDLE_MS", "99"),
        ("WORKER_CLAIM_INTERVAL_MS", "9"),
        ("WORKER_MAX_DELIVERIES", "0"),
        ("WORKER_LEASE_MS", "50"),
        ("WORKER_DRAIN_TIMEOUT_S", "-0.5"),
        ("WORKER_DRAIN_TIMEOUT_S", "soon"),
        ("RESULT_TTL_S", "0"),
        ("REPLY_MAXLEN", "9"),
        ("INTENTS_RETENTION_S", "-1"),
        ("BROKER_TIMEOUT_MS", "0"),
        ("BROKER_CONNECT_TIMEOUT_MS", "1e3"),
        ("BROKER_RETRY_SCHEDULE_MS", "750,soon"),
        ("BROKER_RETRY_SCHEDULE_MS", "-750"),
        ("BROKER_RETRY_SCHEDULE_MS", "inf"),
        ("RESOLVE_TIMEOUT_S", "-1"),
        ("ORDER_LOOKBACK_H", "0"),
        ("PROJECTX_TAG_MAX_LEN", "19"),
        ("PROJECTX_DUPLICATE_TAG_CODE", "-1"),
        ("LOG_LEVEL", "LOUD"),
        ("REDIS_URL", "localhost:6379"),
        ("PROJECTX_BASE_URL", "api.topstepx.com"),
    ],
)
def test_bad_values_are_refused_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({name: value})
    assert raised.value.code == "invalid_config"
    assert name in raised.value.message
    assert str(raised.value).startswith(f"invalid_config: {name}")


@pytest.mark.parametrize(
    ("name", "value"),
    [("WORKER_DRAIN_TIMEOUT_S", "nan"), ("RESOLVE_TIMEOUT_S", "inf"), ("ORDER_LOOKBACK_H", "nan")],
)
def test_non_finite_durations_are_refused(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_secret_never_shows_itself() -> None:
    secret = Secret(API_KEY)
    shown = [repr(secret), str(secret), f"{secret}", f"{secret!r}", "%s" % (secret,)]  # noqa: UP031
    assert all(text == "Secret('***')" for text in shown)
    assert secret.reveal() == API_KEY
    assert secret
    assert not Secret("")


def test_settings_never_show_the_api_key() -> None:
    settings = Settings.from_env({**FULL_ENV, "PROJECTX_API_KEY": API_KEY})
    described = settings.describe()
    assert described["api_key"] == "Secret('***')"
    assert API_KEY not in repr(settings)
    assert API_KEY not in str(settings)
    assert all(API_KEY not in text for text in described.values())


def test_describe_shows_every_setting_as_text() -> None:
    settings = Settings.from_env(FULL_ENV)
    described = settings.describe()
    assert described["max_in_flight"] == "8"
    assert described["worker_name"] == "'worker-a'"
    assert described["warm_symbols"] == "('MNQ', 'ES')"
    assert set(described) >= {"redis_url", "base_url", "retry", "log_level", "tag_max_len"}


@pytest.mark.parametrize(
    "url",
    [
        f"redis://user:{REDIS_PASSWORD}@cache.internal:6379/0",
        f"redis://:{REDIS_PASSWORD}@cache.internal:6379/0",
        f"rediss://default:{REDIS_PASSWORD}@cache.internal:6380",
    ],
)
def test_describe_masks_the_redis_password(url: str) -> None:
    shown = Settings.from_env({"REDIS_URL": url}).describe()["redis_url"]
    assert REDIS_PASSWORD not in shown
    assert ":***@cache.internal" in shown


def test_a_bad_redis_url_is_reported_without_its_password() -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"REDIS_URL": f"http://user:{REDIS_PASSWORD}@cache:6379"})
    assert "REDIS_URL" in raised.value.message
    assert REDIS_PASSWORD not in str(raised.value)
    assert REDIS_PASSWORD not in repr(raised.value)


def test_mask_url_leaves_urls_without_a_password_alone() -> None:
    assert mask_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    assert mask_url("redis://user@host:6379/0") == "redis://user@host:6379/0"
    assert mask_url("redis://u:p@h:1/0") == "redis://u:***@h:1/0"


def test_require_credentials_names_what_is_missing() -> None:
    with pytest.raises(ConfigError) as both:
        Settings.from_env({}).require_credentials()
    assert "PROJECTX_USERNAME and PROJECTX_API_KEY must be set" in both.value.message

    with pytest.raises(ConfigError) as key:
        Settings.from_env({"PROJECTX_USERNAME": "trader"}).require_credentials()
    assert "PROJECTX_API_KEY must be set" in key.value.message
    assert "PROJECTX_USERNAME" not in key.value.message

    with pytest.raises(ConfigError) as user:
        Settings.from_env({"PROJECTX_API_KEY": API_KEY}).require_credentials()
    assert "PROJECTX_USERNAME must be set" in user.value.message
    assert API_KEY not in str(user.value)

    Settings.from_env({"PROJECTX_USERNAME": "t", "PROJECTX_API_KEY": "k"}).require_credentials()


def test_repr_of_settings_hides_the_redis_password_and_the_api_key() -> None:
    settings = Settings.from_env(
        {"REDIS_URL": "redis://:hunter2@10.0.0.1:6379/0", "PROJECTX_API_KEY": API_KEY}
    )
    shown = repr(settings)
    assert "hunter2" not in shown
    assert API_KEY not in shown
    assert "redis://:***@10.0.0.1:6379/0" in shown


def test_an_idle_limit_shorter_than_the_lease_is_refused() -> None:
    with pytest.raises(ConfigError, match="WORKER_CLAIM_IDLE_MS"):
        Settings.from_env({"WORKER_CLAIM_IDLE_MS": "1000", "WORKER_LEASE_MS": "5000"})
