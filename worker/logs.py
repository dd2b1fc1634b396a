"""Logging set-up for worker processes (one place, so the format is the same everywhere)."""

from __future__ import annotations

import logging
import sys


def configure(level: str = "INFO") -> None:
    """Readable lines on stderr; arq's own loggers at the same level."""
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        force=True,
    )
