"""worker/ops/acl.py: the ACL rules of each role, written once."""

from __future__ import annotations

import pytest

from producer import InvalidConfig, OrderClient
from worker.ops.acl import strategy_rules
from worker.ops.cli import main


def test_a_strategy_gets_its_own_replies_and_accounts_only() -> None:
    rules = strategy_rules("alpha", [12345678], prefix="desk")
    assert "~desk:reply:alpha-*" in rules
    assert "%R~desk:acct:{12345678}:*" in rules
    assert "(~desk:intents +xadd)" in rules
    assert not [r for r in rules if r.startswith(("+@", "~*", "allkeys", "&"))]
    for bad in ("a-b", "", "x" * 41, "a*"):
        with pytest.raises(ValueError, match="name"):
            strategy_rules(bad, [1])
    with pytest.raises(ValueError, match="account"):
        strategy_rules("alpha", [])


def test_a_clients_name_starts_its_reply_stream(capsys: pytest.CaptureFixture[str]) -> None:
    assert OrderClient(name="alpha").reply_stream.startswith("ow:reply:alpha-")
    with pytest.raises(InvalidConfig, match="name"):
        OrderClient(name="alpha-2")
    assert main(["acl", "strategy", "alpha", "--account", "12345678"]) == 0
    assert capsys.readouterr().out.startswith("ACL SETUSER alpha reset on resetchannels")
    assert main(["acl", "strategy", "bad-name", "--account", "1"]) == 2
