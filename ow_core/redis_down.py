"""The one definition of "Redis is unreachable", for every loop that rides out an outage.

A lost or refused connection, a timeout, an OS-level socket error; and, under uvloop, the
``RuntimeError`` it raises for a write to a transport closed under it ("the handler is
closed", where asyncio raises OSError; redis-py passes it through unconverted). Any other
RuntimeError is a bug, not an outage: it must surface with its traceback rather than be
retried for ever.

    try:
        ...
    except REDIS_ERRORS as error:
        if not is_redis_down(error):
            raise
        ...  # back off and try again
"""

from __future__ import annotations

from typing import Final

import redis.exceptions

# What an outage can raise; ``is_redis_down`` tells an outage from a bug among them.
REDIS_ERRORS: Final = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    OSError,
    RuntimeError,
)
_CLOSED_TRANSPORT: Final = "handler is closed"


def is_redis_down(error: BaseException) -> bool:
    """Whether an error means Redis cannot be reached right now."""
    if isinstance(error, RuntimeError):
        return _CLOSED_TRANSPORT in str(error)
    return isinstance(error, REDIS_ERRORS)
