"""ow_core/connect.py: where Redis is, read once and refused with one clear line."""

from __future__ import annotations

import pytest

from ow_core.connect import RedisTarget, parse_sentinels
from producer import InvalidConfig, OrderClient
from worker.settings import ConfigError, Settings


def test_sentinels_are_read_from_a_list_or_from_text() -> None:
    assert parse_sentinels("10.0.0.1:26379, sentinel-b:26380,") == (
        ("10.0.0.1", 26379),
        ("sentinel-b", 26380),
    )
    assert parse_sentinels(["[::1]:26379", ("h", 1)]) == (("::1", 26379), ("h", 1))
    for bad in ("h", "h:", ":1", "h:x", "h:0", "h:70000"):
        with pytest.raises(ValueError, match=r"host:port|port must be"):
            parse_sentinels(bad)


def test_one_server_is_the_default_and_a_sentinel_target_says_where_it_asks() -> None:
    assert not RedisTarget().uses_sentinel
    assert RedisTarget.of("redis://:pw@h:1/0").describe() == "redis://:***@h:1/0"
    target = RedisTarget.of("rediss://u:pw@ignored/2", "a:1,b:2", None)
    assert target.sentinel_master == "mymaster"
    assert target.describe() == (
        "sentinel master 'mymaster' via a:1,b:2 (rediss://u:***@ignored/2)"
    )
    with pytest.raises(ValueError, match="unix"):
        RedisTarget.of("unix:///tmp/redis.sock", "a:1")


def test_workers_and_strategies_take_the_sentinels_from_their_settings() -> None:
    settings = Settings.from_env(
        {"REDIS_SENTINELS": "a:26379,b:26379", "REDIS_SENTINEL_MASTER": "desk"}
    )
    assert settings.redis == RedisTarget(
        "redis://127.0.0.1:6379/0", (("a", 26379), ("b", 26379)), "desk"
    )
    with pytest.raises(ConfigError, match="REDIS_SENTINELS"):
        Settings.from_env({"REDIS_SENTINELS": "a"})
    with pytest.raises(ConfigError, match="REDIS_SENTINELS: a unix"):
        Settings.from_env({"REDIS_URL": "unix:///x.sock", "REDIS_SENTINELS": "a:1"})
    misspelt = Settings.from_env({"REDIS_SENTINEL_MASTR": "x"}).unknown_variables
    assert misspelt == ("REDIS_SENTINEL_MASTR (did you mean REDIS_SENTINEL_MASTER?)",)
    with pytest.raises(InvalidConfig, match="host:port"):
        OrderClient(sentinels="nope")
