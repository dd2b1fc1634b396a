"""A local Redis Cluster: three primaries with one replica each, on free loopback ports.

Real ``redis-server --cluster-enabled yes`` processes joined by ``redis-cli --cluster
create``. A node's cluster bus listens on its port + 10000, which must be free and below
65536, so the ports are probed in a low range (7000-9999), not taken from the ephemeral
range the rest of the local stack uses. A short node timeout makes a killed primary's
replica take over within a few seconds.
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, cast

import redis

from worker.local.stack import RedisServer, StackError, wait_until

_LOW: Final = 7000
_HIGH: Final = 9999
_BUS_OFFSET: Final = 10_000
_NODES: Final = 6


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cluster_ports(count: int = _NODES) -> list[int]:
    """``count`` ports in 7000-9999 whose cluster bus ports (+10000) are free too."""
    candidates = list(range(_LOW, _HIGH + 1))
    random.shuffle(candidates)  # helpers running at once rarely probe the same ports
    found = [p for p in candidates[:2000] if _free(p) and _free(p + _BUS_OFFSET)][:count]
    if len(found) < count:
        raise StackError(f"no {count} free port pairs (port, port + 10000) in 7000-9999")
    return found


@dataclass
class LocalCluster:
    """Six nodes: three primaries, each with a replica."""

    log_dir: Path
    node_timeout_ms: int = 2000
    nodes: list[RedisServer] = field(default_factory=list)

    def start(self, timeout: float = 30.0) -> LocalCluster:
        """Start the nodes, join them, and return once every node says the cluster is ok."""
        cli = shutil.which("redis-cli")
        if cli is None:
            raise StackError("redis-cli not found: install redis-tools (Debian: redis-server)")
        for port in cluster_ports():
            options = ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                       "--cluster-node-timeout", str(self.node_timeout_ms)]  # fmt: skip
            self.nodes.append(RedisServer(self.log_dir, port=port, args=options).start())
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        joined = subprocess.run(
            [cli, "--cluster", "create", *addresses, "--cluster-replicas", "1", "--cluster-yes"],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if joined.returncode != 0:
            raise StackError(f"redis-cli --cluster create failed:\n{joined.stdout[-2000:]}")
        wait_until(self.healthy, "redis cluster", timeout)
        return self

    @property
    def url(self) -> str:
        """A URL naming one node (a cluster client finds the others from it)."""
        return self.nodes[0].url

    def healthy(self) -> bool:
        """Whether every live node sees all slots served (``cluster_state:ok``)."""
        return all(
            b"cluster_state:ok" in _ask(node.port, "CLUSTER", "INFO")
            for node in self.nodes
            if node.process is not None and node.process.alive
        )

    def primary_of(self, key: str) -> RedisServer:
        """The node serving ``key``'s slot now."""
        slot = int(_ask(self._live().port, "CLUSTER", "KEYSLOT", key))
        for node, served in self._primaries():
            if any(low <= slot <= high for low, high in served):
                return node
        raise StackError(f"no primary serves slot {slot}")

    def primaries(self) -> list[RedisServer]:
        """The nodes that are primaries now."""
        return [node for node, _ in self._primaries()]

    def _live(self) -> RedisServer:
        return next(n for n in self.nodes if n.process is not None and n.process.alive)

    def _primaries(self) -> list[tuple[RedisServer, list[tuple[int, int]]]]:
        """Each primary not failed, with the slot ranges it serves (``CLUSTER NODES``)."""
        found = []
        for line in _ask(self._live().port, "CLUSTER", "NODES").decode().splitlines():
            fields = line.split()
            if "master" not in fields[2] or "fail" in fields[2]:
                continue
            port = int(fields[1].split("@")[0].rsplit(":", 1)[1])
            served = []
            for item in fields[8:]:
                low, _, high = item.partition("-")
                if low.isdigit():  # not a slot being migrated, "[slot->-id]"
                    served.append((int(low), int(high or low)))
            found.append((next(n for n in self.nodes if n.port == port), served))
        return found

    def node_id(self, node: RedisServer) -> str:
        """A node's cluster ID."""
        return _ask(node.port, "CLUSTER", "MYID").decode()

    def move_slot_of(self, key: str, to: RedisServer) -> None:
        """Reshard: move ``key``'s slot, with its keys, to the primary ``to``, the way
        ``redis-cli --cluster reshard`` moves each slot."""
        source = self.primary_of(key)
        slot = int(_ask(source.port, "CLUSTER", "KEYSLOT", key))
        source_id, target_id = self.node_id(source), self.node_id(to)
        _ask(to.port, "CLUSTER", "SETSLOT", str(slot), "IMPORTING", source_id)
        _ask(source.port, "CLUSTER", "SETSLOT", str(slot), "MIGRATING", target_id)
        while keys := _keys_in(source.port, slot):
            _ask(source.port, "MIGRATE", "127.0.0.1", str(to.port), "", "0", "5000",
                 "KEYS", *keys)  # fmt: skip
        for node in self.primaries():
            _ask(node.port, "CLUSTER", "SETSLOT", str(slot), "NODE", target_id)
        wait_until(self.healthy, "resharded cluster", 10)

    def wait_failover(self, key: str, old: RedisServer, timeout: float = 30.0) -> RedisServer:
        """Wait until a node other than ``old`` serves ``key`` and the cluster is ok."""
        wait_until(
            lambda: self.primary_of(key) is not old and self.healthy(), "cluster failover", timeout
        )
        return self.primary_of(key)

    def stop(self) -> None:
        """Stop every node and delete their data."""
        for node in self.nodes:
            node.cleanup()


def _ask(port: int, *command: str) -> bytes:
    """One command to one node, its answer as bytes (``OK`` for a simple reply)."""
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=5)
    try:
        answer = cast(Any, client).execute_command(*command)  # redis-py leaves it unannotated
    finally:
        client.close()
    return answer if isinstance(answer, bytes) else str(answer).encode()


def _keys_in(port: int, slot: int) -> list[str]:
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=5)
    try:
        found: list[bytes] = cast(Any, client).execute_command(
            "CLUSTER", "GETKEYSINSLOT", str(slot), "100"
        )
    finally:
        client.close()
    return [key.decode() for key in found]
