"""The Dockerfile and docker-compose.yml, checked without a Docker engine.

No engine runs here, so these read both files and check what a build and ``docker compose
up`` would rely on: the entry points and subcommands they name exist (each is run with
``--help``), the files the image is built from exist, the image runs as a non-root user,
Redis persists, and the worker service can be scaled.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import tomllib
from functools import cache
from pathlib import Path
from typing import Any, cast

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# What the python:3.11-slim image has on its PATH (Debian bookworm-slim's base system plus
# the image's own Python and pip); anything else a RUN needs must be installed first.
IMAGE_COMMANDS = {"pip", "python", "python3", "useradd", "groupadd", "mkdir", "chown", "rm"}


@cache
def compose() -> dict[str, Any]:
    return cast(dict[str, Any], yaml.safe_load((ROOT / "docker-compose.yml").read_text()))


@cache
def scripts() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return cast(dict[str, str], project["project"]["scripts"])


@cache
def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, rest = (pending + line).partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
        pending = ""
    return instructions


def instruction(name: str) -> list[str]:
    return [rest for keyword, rest in dockerfile() if keyword == name]


def exec_form(name: str) -> list[str]:
    """The last ENTRYPOINT or CMD, which must be in exec (JSON) form."""
    [*_, last] = instruction(name)
    value = json.loads(last)
    assert isinstance(value, list), f"{name} must be in exec form: {last}"
    return [str(part) for part in value]


def argv_of(service: dict[str, Any]) -> list[str]:
    """What a service runs: its entrypoint (or the image's) and command (or the image's)."""
    entrypoint = service.get("entrypoint", exec_form("ENTRYPOINT"))
    command = service.get("command", exec_form("CMD"))
    assert isinstance(entrypoint, list), service
    assert isinstance(command, list), service
    return [*entrypoint, *command]


def run_help(argv: list[str]) -> str:
    done = subprocess.run(
        [str(BIN / argv[0]), *argv[1:], "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, (argv, done.stderr)
    return done.stdout


# --- docker-compose.yml --------------------------------------------------------------------


def test_compose_has_redis_simulator_and_worker() -> None:
    services = compose()["services"]
    default = {name for name, service in services.items() if "profiles" not in service}
    assert default == {"redis", "simulator", "worker"}
    assert str(services["redis"]["image"]).startswith("redis:7")
    for name in ("simulator", "worker"):
        assert services[name]["build"] == ".", name


def test_redis_runs_append_only_on_a_volume() -> None:
    redis = compose()["services"]["redis"]
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command
    assert "--appendfsync everysec" in command
    [volume] = redis["volumes"]
    name, target = volume.split(":")
    assert target == "/data"  # the redis image's working directory, where the AOF goes
    assert name in compose()["volumes"]


@pytest.mark.parametrize("name", ["simulator", "worker"])
def test_services_run_real_entry_points_and_subcommands(name: str) -> None:
    argv = argv_of(compose()["services"][name])
    assert argv[0] in scripts(), f"{name} runs {argv[0]}, not a [project.scripts] entry point"
    # Leading words are subcommands (`order-worker run`); each must exist, and so must every
    # flag the service passes.
    words = [w for w in argv[1:] if not w.startswith("-")]
    subcommands = words[:1] if argv[0] == "order-worker" else []
    usage = run_help([argv[0], *subcommands])
    for flag in (w for w in argv[1:] if w.startswith("--")):
        assert flag in usage, f"{name}: {argv[0]} has no {flag}"


def test_worker_points_at_redis_and_the_simulator_with_demo_defaults() -> None:
    services = compose()["services"]
    env = services["worker"]["environment"]
    assert env["REDIS_URL"] == "redis://redis:6379/0"
    simulator = services["simulator"]["command"]
    port = simulator[simulator.index("--port") + 1]
    assert env["PROJECTX_BASE_URL"] == f"${{PROJECTX_BASE_URL:-http://simulator:{port}}}"
    # Bound to every interface of its container, so the worker's container reaches it.
    assert simulator[simulator.index("--host") + 1] == "0.0.0.0"  # noqa: S104
    for variable in ("PROJECTX_USERNAME", "PROJECTX_API_KEY"):
        assert re.fullmatch(rf"\$\{{{variable}:-\S+\}}", env[variable]), env[variable]


def test_the_sentinel_profile_has_a_replica_and_three_sentinels_of_the_workers_master() -> None:
    services = compose()["services"]
    sentinel = {name for name, s in services.items() if "sentinel" in s.get("profiles", ())}
    assert sentinel == {"redis-replica", "sentinel-1", "sentinel-2", "sentinel-3"}
    replica = " ".join(services["redis-replica"]["command"])
    assert "--replicaof redis 6379" in replica
    master = services["worker"]["environment"]["REDIS_SENTINEL_MASTER"]
    for name in ("sentinel-1", "sentinel-2", "sentinel-3"):
        config = " ".join(services[name]["command"])
        assert f"sentinel monitor {master.split(':-')[1].rstrip('}')} redis 6379 2" in config


def test_worker_environment_names_real_settings() -> None:
    env = compose()["services"]["worker"]["environment"]
    settings = (ROOT / "worker" / "settings.py").read_text()
    readme = (ROOT / "README.md").read_text()
    for variable in env:
        assert f'"{variable}"' in settings, f"{variable} is not read by worker/settings.py"
        assert f"`{variable}`" in readme, f"{variable} is not documented in the README"


def test_worker_can_be_scaled() -> None:
    worker = compose()["services"]["worker"]
    # Each replica needs its own consumer name and nothing that only one container can have.
    assert "container_name" not in worker
    assert "WORKER_NAME" not in worker["environment"]
    assert "ports" not in worker
    assert "hostname" not in worker


# --- Dockerfile ----------------------------------------------------------------------------


def test_image_is_python_3_11_slim() -> None:
    [base] = instruction("FROM")
    assert base == "python:3.11-slim"


def test_image_installs_the_package_from_the_files_it_copies() -> None:
    copied = []
    for rest in instruction("COPY"):
        *sources, _target = shlex.split(rest)
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: no such file in the repo"
            copied.append(source)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    # Everything `pip install .` reads: the project file, its readme, and the packages that
    # hold the console scripts.
    needed = {"pyproject.toml", project["readme"]}
    needed |= {target.split(".")[0] for target in scripts().values()}
    needed |= {"producer"}  # the wire contract, imported by the worker
    assert needed <= set(copied), needed - set(copied)
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert not needed & set(ignored)
    assert any(re.search(r"\bpip install \.(\s|$)", rest) for rest in instruction("RUN"))


def test_image_runs_as_a_non_root_user() -> None:
    [*_, user] = instruction("USER")
    name = user.split(":")[0]
    assert name not in ("root", "0")
    created = [rest for rest in instruction("RUN") if "useradd" in rest]
    assert any(f"--uid {name} " in rest or rest.endswith(f" {name}") for rest in created), (
        f"USER {user} is not created by a RUN useradd"
    )


def test_image_starts_order_worker_run() -> None:
    assert exec_form("ENTRYPOINT") == ["order-worker"]
    assert exec_form("CMD") == ["run"]
    assert "order-worker" in scripts()
    run_help(["order-worker", "run"])


def test_every_command_the_image_runs_exists_there() -> None:
    for rest in instruction("RUN"):
        for step in re.split(r"&&|\|\||;", rest):
            command = shlex.split(step)[0]
            assert command in IMAGE_COMMANDS, f"RUN {command}: not in python:3.11-slim"


def test_dockerignore_keeps_the_context_small() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in (".venv", ".git", "benchmarks/results", "**/__pycache__", ".mypy_cache"):
        assert entry in ignored, entry
