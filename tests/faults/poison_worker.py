"""A worker with a deliberate defect, for the poison-entry scenario.

It runs the real worker, except that executing an intent tagged ``poison`` either kills
the process (``POISON_MODE=crash``) or raises (``POISON_MODE=raise``): an entry that
crashes execution every time it is delivered.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from worker.attempt import Attempt
from worker.executor import Executor
from worker.ledger.protocol import Go
from worker.ops.cli import main

_run = Executor._run


async def _poisoned_run(self: Executor, attempt: Attempt, claim: Go) -> Any:
    if getattr(attempt.intent, "custom_tag", None) == "poison":
        if os.environ.get("POISON_MODE") == "crash":
            os._exit(13)
        raise RuntimeError("this intent always crashes its worker")
    return await _run(self, attempt, claim)


Executor._run = _poisoned_run  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(main(["run"]))
