"""Jinja filters: numbers, sizes, durations and times as people read them.

Every filter returns plain text; autoescaping still applies to what they return.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from strego.records import DURATION_BOUNDS_MS
from strego.ui.payload import preview

__all__ = ["FILTERS", "ago", "bound_ms", "duration", "number", "size", "timestamp"]

DASH = "\u2013"  # shown for "no value"


def number(value: int | float | None) -> str:
    """1234567 → "1,234,567"."""
    if value is None:
        return DASH
    return f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"


def size(value: int | None) -> str:
    """Bytes in B/KiB/MiB/GiB."""
    if value is None:
        return DASH
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} GiB"  # pragma: no cover - the loop always returns


def duration(seconds: float | None) -> str:
    """Seconds as "0.42 ms", "3.1 ms", "850 ms", "12.3 s", "4m 05s", "3h 12m", "2d 4h".

    Fast handlers run in well under a millisecond: those keep significant digits
    rather than all reading "0 ms"."""
    if seconds is None:
        return DASH
    if seconds == 0:
        return "0 s"
    if seconds < 0.01:
        ms = seconds * 1000
        return f"{ms:.2f} ms" if ms < 1 else f"{ms:.1f} ms"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h"


def bound_ms(value: int | None) -> str:
    """A histogram bucket bound as "≤ 20 ms" / "≤ 2.0 s"; past the last one "> 60 s"."""
    if value is None:
        return DASH
    if value > DURATION_BOUNDS_MS[-1]:
        return f"> {duration(DURATION_BOUNDS_MS[-1] / 1000)}"
    return f"≤ {value} ms" if value < 1000 else f"≤ {duration(value / 1000)}"


def ago(when: datetime | None, now: datetime | None = None) -> str:
    """A past time as "5s ago", a future one as "in 3m"."""
    if when is None:
        return DASH
    delta = ((now or datetime.now(UTC)) - when).total_seconds()
    if abs(delta) < 1:
        return "just now"
    text = duration(abs(delta)) if abs(delta) >= 60 else f"{abs(delta):.0f}s"
    return f"{text} ago" if delta > 0 else f"in {text}"


def timestamp(when: datetime | None) -> str:
    """Absolute UTC time, second precision (the browser shows local time on hover)."""
    if when is None:
        return DASH
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def iso(when: datetime | None) -> str:
    return "" if when is None else when.astimezone(UTC).isoformat()


REASONS = {
    "exhausted": "every retry was used up",
    "skip_retry": "the handler raised SkipRetry",
    "validation": "the payload did not match the handler's type",
    "undecodable": "the serializer could not read the payload",
    "malformed": "the stream entry is not a strego task",
    "unknown_type": "no handler is registered for this task type",
    "unknown_serializer": "the task names a serializer this worker does not have",
    "poison": "delivered too many times without finishing (it keeps killing workers)",
    "lost": "the entry vanished from Redis while a worker held it",
    "limit_key": "the key function of a global limit failed on this task",
}


def reason_help(reason: str | None) -> str:
    """What a dead reason code means, in words."""
    return REASONS.get(reason or "", "")


def task_preview(record: Any) -> str:
    """Payload summary of a TaskRecord (list rows)."""
    return preview(record.payload, record.payload_bytes)


FILTERS: dict[str, Callable[..., Any]] = {
    "preview": task_preview,
    "reason_help": reason_help,
    "number": number,
    "size": size,
    "duration": duration,
    "bound_ms": bound_ms,
    "ago": ago,
    "timestamp": timestamp,
    "iso": iso,
}
