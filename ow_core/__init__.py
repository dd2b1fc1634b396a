"""The shared kernel of producer and worker: Redis plumbing both sides need.

Not a strategy's API (that is ``producer``): the pipelined Redis connection of the hot
path (``fastlane``), the one definition of "Redis is unreachable" (``redis_down``), retry
waits with jitter (``backoff``), task cancellation that really stops (``aio``) and the
Redis key names both sides agree on (``keys``).
"""
