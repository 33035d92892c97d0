"""Outcomes: what running one task decided. The worker decides, the broker applies.

Each outcome maps to exactly one atomic broker script, so a task is never both
pending and scheduled for retry, or neither.
"""

from __future__ import annotations

import dataclasses
import enum
import time
from collections.abc import Mapping

from strego.envelope import TaskMessage
from strego.ids import new_task_id

__all__ = [
    "Cancelled",
    "Dead",
    "DeadReason",
    "Outcome",
    "Parked",
    "Released",
    "Retry",
    "Succeeded",
    "unreadable_entry",
]


class DeadReason(enum.StrEnum):
    EXHAUSTED = "exhausted"  # max_retry used up
    SKIP_RETRY = "skip_retry"  # the handler raised SkipRetry
    VALIDATION = "validation"  # the payload failed the handler's type
    UNDECODABLE = "undecodable"  # the serializer could not read the payload
    MALFORMED = "malformed"  # the stream entry is not a strego task
    UNKNOWN_TYPE = "unknown_type"  # no handler registered for the type
    UNKNOWN_SERIALIZER = "unknown_serializer"
    POISON = "poison"  # delivered max_deliveries times without an outcome
    LOST = "lost"  # the entry or its body was deleted while pending or due
    RESULT_TOO_LARGE = "result_too_large"  # the return value is over result_max_bytes
    UNSERIALIZABLE_RESULT = "unserializable_result"  # the serializer cannot encode it


@dataclasses.dataclass(frozen=True, slots=True)
class Succeeded:
    """The handler returned. ``result`` is its encoded return value (see
    strego.results), kept for ``result_ttl_s`` by the same script that acknowledges
    the task; None when it returned None or results are not kept."""

    task_id: str
    explicit_id: bool = False  # leaves a "processed" marker for processed_ttl
    duration_s: float = 0.0
    result: bytes | None = None
    result_ttl_s: float = 0.0


@dataclasses.dataclass(frozen=True, slots=True)
class Retry:
    message: TaskMessage  # with retry_count incremented and last_error set
    delay_s: float
    duration_s: float
    counted: bool = True  # False: not a failed attempt (no handler for the type yet)


@dataclasses.dataclass(frozen=True, slots=True)
class Dead:
    message: TaskMessage  # with dead_reason, last_error and traceback set
    reason: DeadReason
    duration_s: float = 0.0


@dataclasses.dataclass(frozen=True, slots=True)
class Cancelled:
    task_id: str
    explicit_id: bool = False
    duration_s: float = 0.0


@dataclasses.dataclass(frozen=True, slots=True)
class Released:
    """Given back without an outcome of its own.

    ``counted=False``: a stopping worker did not start it, or cut it off; it goes back
    to its queue at once and this delivery does not count towards ``max_deliveries``.
    ``counted=True``: the worker hit an internal error around it; it is handed over for
    any worker to reclaim, and the delivery counts (so a task that keeps breaking
    workers ends as poison).
    """

    task_id: str
    counted: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class Parked:
    """Held back by a global limit (strego.limits): back to its queue's scheduled set,
    due in ``delay_s``. Not a retry (retry_count unchanged), not a failure; ``blob`` is
    the body as delivered, put back unchanged."""

    task_id: str
    blob: bytes
    delay_s: float
    limit: str  # the limiter's name, for the DEBUG log


Outcome = Succeeded | Retry | Dead | Cancelled | Released | Parked


def unreadable_entry(
    queue: str,
    band: int,
    entry_id: str,
    fields: Mapping[bytes, bytes],
    reason: DeadReason,
    error: str,
) -> Dead:
    """Dead-letter a stream entry that is not a task we can read, keeping its raw bytes.

    Its id names the band and entry (the same entry id exists in every band stream)
    plus a random suffix (a stream recreated after data loss reuses ids), so no two
    garbage entries ever share a dead letter.
    """
    raw = fields.get(b"d")
    if raw is None:  # not even our field layout: keep every field, length-prefixed
        raw = b"".join(b"%d:%s=%d:%s;" % (len(k), k, len(v), v) for k, v in fields.items())
    message = TaskMessage(
        id=f"malformed-{band}-{entry_id}-{new_task_id()[-6:]}",
        type="?",
        queue=queue,
        payload=raw,
        serializer="raw",
        max_retry=0,
        created_ms=int(time.time() * 1000),
        last_error=error,
        dead_reason=reason.value,
        failed_ms=int(time.time() * 1000),
    )
    return Dead(message, reason)
