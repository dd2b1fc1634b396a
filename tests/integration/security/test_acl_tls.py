"""Who may do what, by Redis's own ACLs, over TLS: a redis-server that speaks only TLS
(a throwaway CA made with openssl here) and knows only the users ``order-worker acl``
writes rules for. Workers and the CLI run as their own users; a strategy's user works for
its own account and is refused (NOPERM) everything else tried here.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
import redis
import redis.asyncio as aioredis
import redis.exceptions

from ow_core.keys import Keys
from producer import OrderClient, QueueRefused
from tests.faults.harness import FAST
from worker.local.pytest_plugin import DEMO_ACCOUNT, BrokerSim
from worker.local.stack import Process, RedisServer, start_simulator, start_worker, worker_env
from worker.ops.acl import service_rules, strategy_rules

OTHER_ACCOUNT = 87654321
PASSWORD = "s3cret-for-tests"  # noqa: S105 (a throwaway server's)
KEYS = Keys()


def make_certificates(where: Path) -> Path:
    """A CA and a certificate for 127.0.0.1 signed by it (ca.crt, redis.crt, redis.key)."""
    where.mkdir(parents=True, exist_ok=True)
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=where, check=True, capture_output=True)

    openssl("req", "-x509", *key, "-keyout", "ca.key", "-out", "ca.crt", "-days", "1",
            "-subj", "/CN=order-worker test CA")  # fmt: skip
    openssl("req", *key, "-keyout", "redis.key", "-out", "redis.csr", "-subj", "/CN=127.0.0.1")
    (where / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", "redis.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "redis.crt", "-days", "1",
            "-extfile", "san.ext")  # fmt: skip
    return where


@dataclass
class Secured:
    redis: RedisServer
    broker: BrokerSim
    workers: list[Process]

    def url(self, user: str) -> str:
        return self.redis.url_for(user, PASSWORD)


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    logs = tmp_path_factory.mktemp("secured")
    users = ["--user", "admin", "on", f">{PASSWORD}", "~*", "&*", "+@all",
             "--user", "default", "off"]  # fmt: skip
    server = RedisServer(
        logs, tls_dir=make_certificates(logs / "tls"), admin=("admin", PASSWORD), args=users
    ).start()
    admin = cast(Any, redis.Redis.from_url(server.url))
    rules: dict[str, list[str]] = {
        "worker": service_rules(),
        "operator": service_rules(),
        "alpha": strategy_rules("alpha", [DEMO_ACCOUNT]),
        "beta": strategy_rules("beta", [OTHER_ACCOUNT]),
    }
    for user, its in rules.items():
        admin.execute_command("ACL", "SETUSER", user, *its, f">{PASSWORD}")
    admin.close()
    process, url = start_simulator(logs, ["--no-rate-limit", "--seed", "3"])
    started = Secured(server, BrokerSim(url, process), [])
    try:
        env = {**FAST, "PROJECTX_ACCOUNTS": str(DEMO_ACCOUNT)}
        started.workers.append(
            start_worker(logs, worker_env(started.url("worker"), url, "secure-1", env))
        )
        yield started
    finally:
        for worker in started.workers:
            worker.kill()
        process.stop()
        server.cleanup()


@pytest.fixture
async def alpha(secured: Secured) -> AsyncIterator[OrderClient]:
    async with OrderClient(secured.url("alpha"), account_id=DEMO_ACCOUNT, name="alpha") as client:
        yield client


async def test_a_strategy_works_for_its_own_account_over_tls(
    secured: Secured, alpha: OrderClient
) -> None:
    assert secured.url("alpha").startswith("rediss://")
    placed = await alpha.place_order("MNQ", "BUY", 1, order_type="limit", limit_price=15000.0)
    assert placed.status == "accepted"
    assert placed.order_id is not None
    assert (await alpha.modify_order(placed.order_id, price=15000.25)).status == "accepted"
    assert (await alpha.cancel_order(placed.order_id)).status == "accepted"
    assert await alpha.result(placed.request_id) == placed
    assert alpha.reply_stream.startswith("ow:reply:alpha-")
    await alpha.positions()  # its account's mirror: readable


async def test_a_strategy_is_refused_what_is_not_its_own(
    secured: Secured, alpha: OrderClient
) -> None:
    async with OrderClient(secured.url("beta"), account_id=OTHER_ACCOUNT, name="beta") as beta:
        mine = aioredis.Redis.from_url(secured.url("alpha"))
        try:
            refused = {
                "read another client's replies": mine.xread({beta.reply_stream: "0"}),
                "write into another client's replies": mine.xadd(beta.reply_stream, {"r": "x"}),
                "forge a result": mine.set(KEYS.result("someone"), "{}"),
                "set the kill switch": mine.set(KEYS.halt(), "{}"),
                "read another account's events": mine.xrevrange(KEYS.events(OTHER_ACCOUNT)),
                "write its own account's mirror": mine.hset(
                    KEYS.mirror_positions(DEMO_ACCOUNT), "x", "y"
                ),
                "delete the intents stream": mine.delete(KEYS.intents),
                "list the keys": mine.scan(0),
                "read the intents": mine.xrange(KEYS.intents),
                "flush the database": mine.flushdb(),
            }
            allowed = []
            for what, command in refused.items():
                try:
                    await command
                except redis.exceptions.NoPermissionError:
                    continue
                allowed.append(what)
            assert allowed == []
        finally:
            await mine.aclose()
        # A follow-up of another account's order: its queue is not the strategy's.
        with pytest.raises(QueueRefused, match="NOPERM"):
            await alpha.cancel_order(1, account_id=OTHER_ACCOUNT)


def test_the_operator_runs_the_cli_and_nothing_dangerous(secured: Secured) -> None:
    env = {"REDIS_URL": secured.url("operator"), "PATH": "/usr/bin:/bin"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "worker", *args],
            capture_output=True, text=True, timeout=60, env=env, check=False,
        )  # fmt: skip

    status = cli("status", "--json")
    assert status.returncode == 0, status.stderr
    assert [w["name"] for w in json.loads(status.stdout)["workers"]] == ["secure-1"]
    assert cli("halt", "--reason", "drill").returncode == 0
    assert cli("resume").returncode == 0
    operator = redis.Redis.from_url(secured.url("operator"))
    try:
        for dangerous in (("FLUSHALL",), ("CONFIG", "GET", "dir"), ("KEYS", "*")):
            with pytest.raises(redis.exceptions.NoPermissionError):
                cast(Any, operator).execute_command(*dangerous)
    finally:
        operator.close()


async def test_nothing_is_reachable_in_clear_or_without_a_password(secured: Secured) -> None:
    clear = redis.Redis(host="127.0.0.1", port=secured.redis.port, socket_timeout=2)
    with pytest.raises(redis.exceptions.ConnectionError):
        await asyncio.to_thread(clear.ping)
    clear.close()
    anonymous = redis.Redis.from_url(secured.redis.url_for(), socket_timeout=2)
    with pytest.raises(redis.exceptions.AuthenticationError):
        anonymous.ping()
    anonymous.close()


def test_the_workers_user_was_never_refused(secured: Secured) -> None:
    # Last: by now the worker has run intents, its listener and its housekeeping.
    admin = cast(Any, redis.Redis.from_url(secured.redis.url, decode_responses=True))
    try:
        denied = admin.acl_log(count=1000)
    finally:
        admin.close()
    by_user = {entry["username"] for entry in denied}
    assert "worker" not in by_user
    assert "alpha" in by_user  # the refusals above are logged
