"""Logging setup for the CLI: text or JSON lines, structured fields from ``extra``.

The library itself only logs to the ``strego`` logger and never configures logging.
Both formats pass every line through ``redact``: a URL with a password that reaches a
log message or a traceback (redis-py and psycopg quote them) is masked.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from strego.redaction import redact

__all__ = ["configure_logging"]

# Fields strego puts in ``extra``; anything else in a record's __dict__ is stdlib noise.
_FIELDS = ("task_id", "task_type", "queue", "attempt", "duration_ms", "worker", "operation")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in _FIELDS:
            if field in record.__dict__:
                entry[field] = record.__dict__[field]
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, default=str))


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = " ".join(f"{f}={record.__dict__[f]}" for f in _FIELDS if f in record.__dict__)
        return redact(f"{line} [{extras}]" if extras else line)


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
