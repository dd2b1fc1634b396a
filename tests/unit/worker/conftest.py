"""The executor's test world, for every worker unit test that wants it."""

from tests.unit.worker.world import world

__all__ = ["world"]
