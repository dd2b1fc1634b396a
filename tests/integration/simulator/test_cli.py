"""`python -m simulator` as a subprocess: start-up line, serving, clean shutdown, flag errors."""

import asyncio
import re
import signal
import subprocess
import sys

import aiohttp
import pytest

LISTENING = re.compile(r"^order-sim listening on (http://127\.0\.0\.1:(\d+))$")


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "simulator", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


async def test_serves_on_a_free_port_and_exits_cleanly_on_sigterm() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "simulator",
        "--port",
        "0",
        "--seed",
        "3",
        "--accounts",
        "111,222",
        "--api-key",
        "k",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), timeout=15)).decode().strip()
        match = LISTENING.match(line)
        assert match, line
        base = match.group(1)
        assert int(match.group(2)) > 0
        async with aiohttp.ClientSession(base) as session:
            async with session.get("/api/Status/ping") as pong:
                assert await pong.json() == "pong"
            login = {"userName": "x", "apiKey": "k"}
            async with session.post("/api/Auth/loginKey", json=login) as response:
                token = (await response.json())["token"]
            headers = {"Authorization": f"Bearer {token}"}
            search = {"onlyActiveAccounts": True}
            async with session.post(
                "/api/Account/search", json=search, headers=headers
            ) as response:
                assert [a["id"] for a in (await response.json())["accounts"]] == [111, 222]
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), timeout=10) == 0
        assert await process.stdout.read() == b""  # exactly one line on stdout
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def test_help_exits_0() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for flag in (
        "--port",
        "--rate-limit",
        "--no-rate-limit",
        "--commit-then-fail-rate",
        "--tag-unique",
        "--max-fill-size",
        "--random-walk-ms",
        "--daily-loss-limit",
    ):
        assert flag in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["--error-rate", "2"], "Expected `float` <= 1.0 - at --error-rate"),
        (["--stall-ms", "-1"], "Expected `float` >= 0.0 - at --stall-ms"),
        (["--rate-limit", "200"], "expected REQUESTS/SECONDS such as 200/60"),
        (["--rate-limit", "200/60", "--no-rate-limit"], "not allowed with argument"),
        (["--port", "70000"], "port must be 0-65535"),
        (["--accounts", "1,x"], "expected comma-separated account IDs"),
        (["--tag-unique", "sometimes"], "invalid choice: 'sometimes'"),
        (["--max-fill-size", "0"], "must be 1 or more, got 0"),
        (["--spread-ticks", "0"], "must be 1 or more, got 0"),
        (["--fee-per-contract", "x"], "expected an amount in dollars, got 'x'"),
        (["--daily-loss-limit", "-5"], "must be 0 or more, got -5"),
        (["--daily-loss-limit", "0"], "must be more than 0"),
        (["--stop-through-market", "maybe"], "invalid choice: 'maybe'"),
        (["--random-walk-ms", "-1"], "must be 0 or more, got -1"),
    ],
)
def test_bad_flags_exit_2(args: list[str], message: str) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stdout == ""
