"""Small asyncio helpers shared by the producer and the worker."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Any


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any]], *, step: float = 0.05) -> None:
    """Cancel tasks and wait until they have really stopped.

    One ``cancel()`` is not always enough on Python 3.11: redis-py checks a pooled
    connection inside ``asyncio.timeout(0)``, and a cancel that lands in that window is
    absorbed (measured here: a reader blocked in XREAD kept looping after its cancel).
    So cancel again until each task is done.
    """
    every = list(tasks)
    pending = {task for task in every if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=step)
    for task in every:
        # Retrieve outcomes so asyncio does not log "exception was never retrieved".
        with contextlib.suppress(asyncio.CancelledError, Exception):
            task.result()
