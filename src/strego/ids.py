"""Task ids: ULIDs (26 chars, Crockford base32), sortable by creation time."""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Every 10-bit value as its two base32 characters: 13 lookups per id instead of 26
# (new_task_id runs once per enqueued task; the single-enqueue path is measured).
_PAIRS = tuple(a + b for a in _ALPHABET for b in _ALPHABET)
_SHIFTS = tuple(range(120, -1, -10))


def new_task_id() -> str:
    """A ULID: 48 bits of milliseconds then 80 random bits, so ids sort by creation."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    return "".join([_PAIRS[(value >> shift) & 1023] for shift in _SHIFTS])
