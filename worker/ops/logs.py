"""Logging for worker processes: readable lines on a terminal, JSON lines otherwise, and
one line per intent outcome with its request ID, order ID, status and timings.

Secrets are redacted by construction: nothing here logs a request, a header or a
settings object, and the ones that could hold a secret (the API key, the token) have
reprs that hide it.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any, Final

from producer.contract import OrderResult
from worker.observe import Observer

_TOKENS: Final = re.compile(r"(access_token=|Bearer )[^&\s'\"]+")
_RESERVED: Final = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
outcomes = logging.getLogger("worker.outcome")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update({k: v for k, v in record.__dict__.items() if k not in _RESERVED})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class RedactTokens(logging.Filter):
    """Masks the session token wherever a hub URL carries it (``access_token=...``): the
    SignalR and WebSocket libraries log the URLs they connect to."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if "access_token=" in text or "Bearer " in text:
            record.msg = redact(text)
            record.args = ()
        return True


def redact(text: str) -> str:
    """``text`` with every token in it masked."""
    return _TOKENS.sub(lambda m: f"{m.group(1)}***", text)


def configure(level: str = "INFO", *, json_lines: bool | None = None) -> None:
    """Log to stderr: JSON lines when it is not a terminal (or when asked), else text."""
    as_json = not sys.stderr.isatty() if json_lines is None else json_lines
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactTokens())
    handler.setFormatter(
        JsonFormatter()
        if as_json
        else logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    )
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # Their INFO lines are the connection's every state change (and URLs): ours say what
    # matters, once.
    for chatty in ("pysignalr", "websockets"):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    # Every record would otherwise ask the OS for the process and thread IDs: measurable
    # on the hot path (one outcome line per intent), and the formats here never show them.
    logging.logProcesses = False
    logging.logThreads = False
    logging.logMultiprocessing = False


class LogObserver(Observer):
    """One log line per intent outcome (and per dead letter)."""

    def intent_finished(self, result: OrderResult) -> None:
        if not outcomes.isEnabledFor(logging.INFO):
            return
        outcomes.info(
            "%s %s %s order=%s code=%s attempts=%d queued=%.1fms broker=%.1fms",
            result.kind,
            result.request_id,
            result.status,
            result.order_id,
            result.error_code,
            result.attempts,
            result.queued_ms,
            result.broker_ms,
            extra={
                "request_id": result.request_id,
                "kind": result.kind,
                "status": result.status,
                "order_id": result.order_id,
                "error_code": result.error_code,
                "attempts": result.attempts,
                "queued_ms": result.queued_ms,
                "broker_ms": result.broker_ms,
                "worker_ms": result.worker_ms,
            },
        )

    def dead_lettered(self, reason: str) -> None:
        outcomes.warning("dead-lettered: %s", reason, extra={"dead_letter": reason})
