"""Retry backoff: pure functions, no I/O.

The delay before retry ``n`` (1-based) is ``min(retry_max, retry_base * 2**(n-1))``
plus jitter, so a burst of failures does not come back in lockstep.
"""

from __future__ import annotations

import dataclasses
import enum
import random
from collections.abc import Callable
from typing import TYPE_CHECKING

from strego.durations import Duration, to_seconds
from strego.errors import ConfigurationError

if TYPE_CHECKING:
    from strego.task import Task

__all__ = ["Jitter", "RetryPolicy", "RetryPolicyFn", "backoff_delay"]

#: A per-task-type override: (task, retry number, exception) -> delay in seconds.
RetryPolicyFn = Callable[["Task", int, BaseException], float]

_BOUNDED_JITTER = 0.2


class Jitter(enum.StrEnum):
    BOUNDED = "bounded"  # schedule .. schedule * 1.2: never earlier than promised
    FULL = "full"  # 0 .. schedule (AWS "full jitter"): spreads load the most
    NONE = "none"


def backoff_delay(
    retry_number: int,
    *,
    base_s: float,
    max_s: float,
    jitter: Jitter = Jitter.BOUNDED,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before retry ``retry_number`` (1 for the first retry)."""
    if retry_number < 1:
        raise ValueError(f"retry_number starts at 1, got {retry_number}")
    # Cap the exponent: 2**1100 overflows a float long before it matters.
    schedule = min(max_s, base_s * 2.0 ** min(retry_number - 1, 1000))
    draw = (rng or random).random()
    if jitter is Jitter.BOUNDED:
        return schedule * (1.0 + _BOUNDED_JITTER * draw)
    if jitter is Jitter.FULL:
        return schedule * draw
    return schedule


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """The server-wide backoff settings."""

    base_s: float = 1.0
    max_s: float = 600.0
    jitter: Jitter = Jitter.BOUNDED

    @classmethod
    def build(cls, base: Duration, maximum: Duration, jitter: Jitter | str) -> RetryPolicy:
        base_s = to_seconds(base, "retry_base")
        max_s = to_seconds(maximum, "retry_max")
        if max_s < base_s:
            raise ConfigurationError(f"retry_max ({max_s:g}s) must be >= retry_base ({base_s:g}s)")
        try:
            mode = Jitter(jitter)
        except ValueError as exc:
            raise ConfigurationError(f"retry_jitter must be one of {list(Jitter)}") from exc
        return cls(base_s=base_s, max_s=max_s, jitter=mode)

    def delay(self, retry_number: int) -> float:
        return backoff_delay(retry_number, base_s=self.base_s, max_s=self.max_s, jitter=self.jitter)
