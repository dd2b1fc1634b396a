"""On a real local Redis Cluster (three primaries, one replica each, started here): a
script runs on the node serving its keys, and keeps running through a restart of that
node, a resharding of its slot and a failover of its primary; keys in two slots are
refused before anything is sent.

One cluster for the module (it takes a few seconds to form); the tests change it in turn
(restart, reshard, failover), each leaving it whole.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import redis.exceptions

from ow_core.cluster import ClusterLane
from ow_core.fastlane import Script
from worker.local.cluster import LocalCluster
from worker.local.stack import wait_until

# Every key of one account shares its hash tag: one slot, one node.
RESULT = "ow:acct:{12345678}:result:r1"
COUNT = "ow:acct:{12345678}:count"
STORE = Script("redis.call('SET', KEYS[1], ARGV[1]) return redis.call('INCR', KEYS[2])")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    started = LocalCluster(tmp_path_factory.mktemp("cluster")).start()
    try:
        yield started
    finally:
        started.stop()


async def store(lane: ClusterLane, value: str) -> int:
    """Run the script, riding out the seconds in which a failover leaves its slot unserved."""
    for _ in range(100):
        try:
            return int(await lane.run(STORE, [RESULT, COUNT], [value]))
        except (redis.exceptions.ConnectionError, redis.exceptions.ClusterDownError):
            await asyncio.sleep(0.1)
    raise AssertionError("the script never ran")


async def test_a_script_survives_a_restart_of_its_node(cluster: LocalCluster) -> None:
    lane = ClusterLane(cluster.url)
    first = await store(lane, "a")
    node = cluster.primary_of(RESULT)
    node.stop()  # no persistence: its scripts (and data) are gone when it is back
    node.start()
    await asyncio.to_thread(wait_until, cluster.healthy, "restarted cluster", 30)
    assert first >= 1
    assert await store(lane, "b") >= 1  # NOSCRIPT, then EVAL
    assert await lane.execute("GET", RESULT) == b"b"
    await lane.close()


async def test_a_script_follows_its_slot_to_another_primary(cluster: LocalCluster) -> None:
    lane = ClusterLane(cluster.url)
    count = await store(lane, "c")
    source = cluster.primary_of(RESULT)
    target = next(node for node in cluster.primaries() if node is not source)
    await asyncio.to_thread(cluster.move_slot_of, RESULT, target)
    assert cluster.primary_of(RESULT) is target
    # The keys moved with the slot; the script is new to that node (NOSCRIPT, then EVAL).
    assert await store(lane, "d") == count + 1
    assert await lane.execute("GET", RESULT) == b"d"
    await lane.close()


async def test_a_script_runs_on_the_replica_promoted_after_its_primary_died(
    cluster: LocalCluster,
) -> None:
    lane = ClusterLane(cluster.url)
    await store(lane, "e")
    old = cluster.primary_of(RESULT)
    old.kill()
    await asyncio.to_thread(cluster.wait_failover, RESULT, old)
    assert await store(lane, "f") >= 1
    assert await lane.execute("GET", RESULT) == b"f"
    await lane.close()


async def test_keys_of_two_slots_are_refused_before_anything_is_sent(
    cluster: LocalCluster,
) -> None:
    lane = ClusterLane(cluster.url)
    with pytest.raises(redis.exceptions.RedisClusterException, match="same key slot"):
        await lane.run(STORE, ["ow:acct:{1}:result:r", "ow:acct:{2}:count"], ["x"])
    await lane.close()
