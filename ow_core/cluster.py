"""The hot path's commands on a Redis Cluster, through redis-py's own cluster client.

redis-py's ``RedisCluster`` routes each command to the primary serving its keys' slot,
follows ``MOVED`` and ``ASK`` through a resharding, and finds the new primary after a
failover; it refuses, before sending, a command whose keys lie in two slots. Scripts are
run here as ``FastLane.run`` runs them: by SHA and, on ``NOSCRIPT``, by their source, on
the node serving their keys, which then keeps the script. A node that restarted, or a
slot that moved to a node that never ran the script, costs one ``EVAL``. (redis-py's
``register_script`` has had NOSCRIPT gaps on the async cluster client; 5.3's passed the
same restart and resharding in a check here, but nothing depends on it.)

``ClusterLane`` has the methods of ``ow_core.fastlane.FastLane`` (``execute``, ``run``,
``close``). It is the groundwork of Redis Cluster support: the key layout is not yet
partitioned so that one intent's keys share a slot (see the README, "Redis Cluster").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import redis.exceptions
from redis.asyncio.cluster import RedisCluster

from ow_core.fastlane import Arg, Script


class ClusterLane:
    """Commands and scripts on a Redis Cluster named by any one node's URL."""

    def __init__(self, url: str, *, timeout: float = 5.0, connect_timeout: float = 2.0) -> None:
        self._cluster = RedisCluster.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=connect_timeout
        )

    async def execute(self, *args: Arg) -> Any:
        """One command, on the node serving its keys."""
        return await cast(Any, self._cluster).execute_command(*args)

    async def run(self, script: Script, keys: Sequence[Arg], args: Sequence[Arg]) -> Any:
        """EVALSHA on the node serving ``keys``, loading the script there if it lacks it."""
        try:
            return await self.execute("EVALSHA", script.sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            return await self.execute("EVAL", script.source, len(keys), *keys, *args)

    async def close(self) -> None:
        """Close every connection to the cluster."""
        await self._cluster.aclose()
