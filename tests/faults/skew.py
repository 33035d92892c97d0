"""Shift one process's wall clock, to test producer/worker clock skew.

Patches ``time.time`` / ``time.time_ns`` (ULIDs, ``*_ms`` stamps) and the ``datetime`` that strego's
modules use for ``datetime.now`` (task ``created_at``, deadlines, history events).
Monotonic clocks are left alone: skew is about wall clocks disagreeing between
machines, and Redis's own clock (TIME) is what strego uses for due times.
"""

from __future__ import annotations

import datetime as _dt
import importlib
import time
from typing import Any

__all__ = ["skew_clock"]

_MODULES = (
    "strego.task",
    "strego.client",
    "strego.ids",
    "strego.worker.engine",
    "strego.worker.runner",
    "strego.worker.outcomes",
)


class _AnyDatetime(type):
    """Keeps ``isinstance(x, module.datetime)`` true for ordinary datetimes once a
    module's ``datetime`` is the skewed subclass (strego validates process_at so)."""

    def __instancecheck__(cls, obj: object) -> bool:
        return isinstance(obj, _dt.datetime)


def skew_clock(seconds: float) -> type[_dt.datetime]:
    """Make this process's wall clock run ``seconds`` ahead (negative: behind).

    Returns the skewed ``datetime`` class, for the caller's own ``now()``.
    """
    real_time, real_time_ns = time.time, time.time_ns
    shift = _dt.timedelta(seconds=seconds)

    def skewed_time() -> float:
        return real_time() + seconds

    class SkewedDatetime(_dt.datetime, metaclass=_AnyDatetime):
        @classmethod
        def now(cls, tz: _dt.tzinfo | None = None) -> Any:
            return _dt.datetime.now(tz) + shift

        @classmethod
        def utcnow(cls) -> Any:
            return _dt.datetime.now(_dt.UTC).replace(tzinfo=None) + shift

    def skewed_time_ns() -> int:
        return real_time_ns() + int(seconds * 1e9)

    time.time = skewed_time
    time.time_ns = skewed_time_ns
    for name in _MODULES:
        module = importlib.import_module(name)
        if getattr(module, "datetime", None) is _dt.datetime:
            module.datetime = SkewedDatetime  # type: ignore[attr-defined]
    return SkewedDatetime
