"""Durations: the public API takes seconds or ``timedelta``; internals carry units."""

from __future__ import annotations

import math
from datetime import timedelta

from strego.errors import ConfigurationError

Duration = float | int | timedelta

#: The longest duration any option accepts. Longer is surely a mistake, and it
#: overflowed datetime arithmetic inside the worker (a task with timeout=1e20 was
#: accepted by Task() and then stuck pending forever; found by tests/faults).
MAX_SECONDS = 100 * 365.25 * 86400  # 100 years


def to_seconds(value: Duration, name: str, *, allow_zero: bool = True) -> float:
    """Validate a duration option and return it in seconds."""
    if isinstance(value, bool) or not isinstance(value, int | float | timedelta):
        raise ConfigurationError(f"{name} must be seconds or a timedelta, got {value!r}")
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if math.isnan(seconds) or math.isinf(seconds):
        raise ConfigurationError(f"{name} must be finite, got {value!r}")
    if seconds < 0 or (seconds == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigurationError(f"{name} must be {bound}, got {seconds:g}")
    if seconds > MAX_SECONDS:
        raise ConfigurationError(f"{name} must be at most 100 years, got {seconds:g}s")
    return seconds


def optional_seconds(value: Duration | None, name: str, *, allow_zero: bool = True) -> float | None:
    """Like :func:`to_seconds`, letting ``None`` through (meaning "off")."""
    return None if value is None else to_seconds(value, name, allow_zero=allow_zero)
