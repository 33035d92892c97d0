"""Backoff: exponential, capped, jittered within its bounds."""

from __future__ import annotations

import random

import pytest

from strego.errors import ConfigurationError
from strego.retry import Jitter, RetryPolicy, backoff_delay


def test_bounded_jitter_within_bounds() -> None:
    """Bounded jitter is never shorter than the schedule and at most 20 % longer."""
    rng = random.Random(1)
    for n in range(1, 15):
        schedule = min(600.0, 1.0 * 2 ** (n - 1))
        for _ in range(200):
            delay = backoff_delay(n, base_s=1.0, max_s=600.0, rng=rng)
            assert schedule <= delay <= schedule * 1.2


def test_full_jitter_and_none() -> None:
    """Full jitter spreads over 0..schedule; no jitter is the schedule itself."""
    rng = random.Random(2)
    delays = [
        backoff_delay(4, base_s=1, max_s=100, jitter=Jitter.FULL, rng=rng) for _ in range(500)
    ]
    assert min(delays) >= 0 and max(delays) <= 8
    assert max(delays) - min(delays) > 4  # actually spread
    assert backoff_delay(4, base_s=1, max_s=100, jitter=Jitter.NONE) == 8


def test_jitter_spreads_a_burst() -> None:
    """A burst of failures does not come back in lockstep."""
    delays = {round(backoff_delay(3, base_s=1, max_s=60), 6) for _ in range(100)}
    assert len(delays) > 50


def test_huge_attempt_numbers_do_not_overflow() -> None:
    """Attempt 5000 is simply capped at retry_max."""
    assert backoff_delay(5000, base_s=1, max_s=30, jitter=Jitter.NONE) == 30


def test_policy_validation() -> None:
    """retry_max below retry_base, or an unknown jitter mode, fails at construction."""
    with pytest.raises(ConfigurationError):
        RetryPolicy.build(10, 5, "bounded")
    with pytest.raises(ConfigurationError):
        RetryPolicy.build(1, 5, "sometimes")
