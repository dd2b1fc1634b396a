"""The order worker service.

``arq worker.WorkerSettings`` runs a worker configured from the environment, like
``order-worker run``. The settings are read when arq asks for them, not at import.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "WorkerSettings":
        from worker.app import worker_settings
        from worker.settings import Settings

        settings = Settings.from_env()
        settings.require_credentials()
        return worker_settings(settings)
    raise AttributeError(f"module 'worker' has no attribute {name!r}")
