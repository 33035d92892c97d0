"""Task, TaskInfo and TaskState: what producers build and handlers receive.

Every option is validated here, at construction, so a bad task fails in the
producer's stack trace and never later inside a worker.
"""

from __future__ import annotations

import dataclasses
import enum
import re
import time
import unicodedata
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from strego.durations import Duration, optional_seconds, to_seconds
from strego.envelope import (
    MAX_HEADER_LENGTH,
    MAX_HEADERS,
    MAX_RETRY,
    TaskMessage,
    valid_headers,
)
from strego.errors import ConfigurationError
from strego.ids import new_task_id
from strego.serializers import JSON, RAW, Serializer

__all__ = ["MAX_RETRY", "Task", "TaskInfo", "TaskState", "validate_queue_name"]

MAX_PRIORITY = 10
MAX_NAME_LENGTH = 200
_QUEUE_NAME = re.compile(r"^[^\s{}]{1,200}$")
# Control (NUL included), format (bidi overrides, zero-width), surrogate and line/paragraph
# separator characters: invisible or reordering in the UI and logs, and PostgreSQL's
# text columns refuse NUL (history stripped it, merging "id\x00x" with "idx").
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
# Path segments a browser normalises away: a queue or task id named so could not be
# linked to. (The UI also encodes them; refusing them keeps every tool simple.)
_DOT_SEGMENTS = frozenset({".", ".."})


class TaskState(enum.StrEnum):
    PENDING = "pending"
    SCHEDULED = "scheduled"
    ACTIVE = "active"
    COMPLETED = "completed"
    RETRY = "retry"
    DEAD = "dead"
    CANCELLED = "cancelled"


@dataclasses.dataclass(frozen=True, slots=True)
class TaskInfo:
    """What enqueue returns: where the task went and when it will run."""

    id: str
    queue: str
    state: TaskState
    process_at: datetime | None = None


def validate_queue_name(queue: object) -> str:
    # Braces would break the Redis Cluster hash tag that keeps a queue in one slot.
    if (
        not isinstance(queue, str)
        or not _QUEUE_NAME.match(queue)
        or queue in _DOT_SEGMENTS
        or _has_forbidden_character(queue)
    ):
        raise ConfigurationError(
            "queue must be 1-200 characters without whitespace, braces or control "
            f"characters, and not '.' or '..'; got {queue!r}"
        )
    return queue


def _has_forbidden_character(text: str) -> bool:
    if text.isascii():  # the common case, without a category lookup per character
        return not text.isprintable()  # ASCII's only forbidden ones are controls (Cc)
    return any(unicodedata.category(char) in _FORBIDDEN_CATEGORIES for char in text)


def _validate_type(task_type: object) -> str:
    if (
        not isinstance(task_type, str)
        or not task_type.strip()
        or len(task_type) > MAX_NAME_LENGTH
        or _has_forbidden_character(task_type)
    ):
        raise ConfigurationError(
            f"task type must be a non-empty string of at most {MAX_NAME_LENGTH} characters "
            f"without control characters, got {task_type!r}"
        )
    return task_type


class Task:
    """A unit of work: a type naming its handler, a payload, and delivery options."""

    __slots__ = (
        "_created_ms",
        "_deadline",
        "_delay_s",
        "_explicit_id",
        "_headers",
        "_id",
        "_labels",
        "_max_retry",
        "_payload",
        "_payload_bytes",
        "_priority",
        "_process_at",
        "_queue",
        "_result_ttl_s",
        "_retry_count",
        "_serializer",
        "_timeout_s",
        "_type",
        "_unique_key",
        "_unique_ttl_s",
        "_upstream_results",
        "_workflow_id",
    )

    def __init__(
        self,
        type: str,
        payload: Any = None,
        *,
        id: str | None = None,
        queue: str = "default",
        max_retry: int = 3,
        timeout: Duration | None = None,
        process_in: Duration | None = None,
        process_at: datetime | None = None,
        priority: int = 0,
        unique_key: str | None = None,
        unique_ttl: Duration = 3600,
        labels: Mapping[str, str] | None = None,
        serializer: Serializer | None = None,
        result_ttl: Duration | None = None,
    ) -> None:
        self._type = _validate_type(type)
        self._explicit_id = id is not None
        self._id = _validate_id(id) if id is not None else new_task_id()
        self._queue = validate_queue_name(queue)
        self._max_retry = _bounded_int(max_retry, "max_retry", MAX_RETRY)
        self._timeout_s = optional_seconds(timeout, "timeout", allow_zero=False)
        self._delay_s, self._process_at = _schedule(process_in, process_at)
        self._priority = _priority(priority)
        self._unique_key = _optional_text(unique_key, "unique_key")
        self._unique_ttl_s = to_seconds(unique_ttl, "unique_ttl", allow_zero=False)
        if self._unique_ttl_s < 0.001:  # Redis holds the key in whole milliseconds
            raise ValueError(f"unique_ttl must be at least 1 ms, got {unique_ttl!r}")
        self._labels = _labels(labels)
        self._result_ttl_s = _result_ttl(result_ttl)
        self._serializer = _pick_serializer(serializer, payload)
        self._payload = payload
        self._payload_bytes = self._serializer.dumps(payload)
        self._retry_count = 0
        self._created_ms = time.time_ns() // 1_000_000
        self._deadline: datetime | None = None
        self._headers: Mapping[str, str] = _NO_HEADERS
        self._workflow_id: str | None = None
        self._upstream_results: list[Any] = []

    @classmethod
    def received(
        cls,
        message: TaskMessage,
        payload: Any,
        deadline: datetime | None,
        upstream_results: list[Any] | None = None,
    ) -> Task:
        """Build the read-only view a handler gets from a message taken off a stream."""
        task = cls.__new__(cls)
        task._type = message.type
        task._id = message.id
        task._explicit_id = message.explicit_id
        task._queue = message.queue
        task._max_retry = message.max_retry
        task._timeout_s = message.timeout_s
        task._delay_s = None
        task._process_at = None
        task._priority = message.priority
        task._unique_key = message.unique_key
        task._unique_ttl_s = 0.0
        task._labels = dict(message.labels)
        task._result_ttl_s = message.result_ttl_s
        task._serializer = JSON
        task._payload = payload
        task._payload_bytes = message.payload
        task._retry_count = message.retry_count
        task._created_ms = message.created_ms
        task._deadline = deadline
        task._headers = message.headers
        task._workflow_id = message.workflow_id
        task._upstream_results = upstream_results if upstream_results is not None else []
        return task

    def with_headers(self, headers: Mapping[str, str]) -> Task:
        """This task with transport ``headers`` added (a copy; this one is unchanged).

        For middleware: headers travel in the task's envelope, not its labels, and a
        worker's middleware reads them back from :attr:`headers` (tracing middleware
        carries the W3C trace context this way). Bounded: at most 16, str → str.
        """
        merged = {**self._headers, **headers}
        if not valid_headers(merged):
            raise ValueError(
                f"headers must map str to str: at most {MAX_HEADERS}, names of at most 256 "
                f"and values of at most {MAX_HEADER_LENGTH} characters; got {headers!r}"
            )
        clone = Task.__new__(Task)
        for name in Task.__slots__:
            setattr(clone, name, getattr(self, name))
        clone._headers = merged
        return clone

    def to_message(self) -> TaskMessage:
        return TaskMessage(
            id=self._id,
            type=self._type,
            queue=self._queue,
            payload=self._payload_bytes,
            serializer=self._serializer.name,
            max_retry=self._max_retry,
            timeout_s=self._timeout_s,
            priority=self._priority,
            unique_key=self._unique_key,
            labels=self._labels,
            created_ms=self._created_ms,
            explicit_id=self._explicit_id,
            headers=self._headers,
            result_ttl_s=self._result_ttl_s,
            workflow_id=self._workflow_id,
        )

    @property
    def id(self) -> str:
        """Sortable task id (ULID unless given at enqueue)."""
        return self._id

    @property
    def type(self) -> str:
        """Names the handler that runs the task."""
        return self._type

    @property
    def queue(self) -> str:
        """The queue the task lives in."""
        return self._queue

    @property
    def payload(self) -> Any:
        """The payload (decoded from the handler's type hint in a worker)."""
        return self._payload

    @property
    def payload_bytes(self) -> bytes:
        """The payload as stored in Redis."""
        return self._payload_bytes

    @property
    def retry_count(self) -> int:
        """0 on the first run, +1 per retry."""
        return self._retry_count

    @property
    def max_retry(self) -> int:
        """Retries allowed after the first run (3 means up to 4 runs)."""
        return self._max_retry

    @property
    def labels(self) -> dict[str, str]:
        """Free-form str→str tags (a copy)."""
        return dict(self._labels)

    @property
    def headers(self) -> dict[str, str]:
        """Transport headers set by middleware (see :meth:`with_headers`), a copy."""
        return dict(self._headers)

    @property
    def created_at(self) -> datetime:
        """When the producer created the task (UTC)."""
        return datetime.fromtimestamp(self._created_ms / 1000, UTC)

    @property
    def deadline(self) -> datetime | None:
        """When the current attempt times out, if it has a timeout."""
        return self._deadline

    @property
    def priority(self) -> int:
        """0-10, higher runs first within a queue."""
        return self._priority

    @property
    def timeout(self) -> float | None:
        """Per-attempt timeout in seconds."""
        return self._timeout_s

    @property
    def unique_key(self) -> str | None:
        """Enqueue-time dedup key, scoped to the queue."""
        return self._unique_key

    @property
    def unique_ttl(self) -> float:
        """How long the unique key is held, in seconds."""
        return self._unique_ttl_s

    @property
    def result_ttl(self) -> float | None:
        """How long the handler's return value is kept, in seconds (None: the worker's
        ``Server(result_ttl=...)``; 0: not kept)."""
        return self._result_ttl_s

    @property
    def explicit_id(self) -> bool:
        """True when the producer chose the id (an idempotency key)."""
        return self._explicit_id

    @property
    def serializer(self) -> Serializer:
        """How the payload was encoded."""
        return self._serializer

    @property
    def delay_s(self) -> float | None:
        """process_in in seconds, if given."""
        return self._delay_s

    @property
    def process_at(self) -> datetime | None:
        """The absolute time the task was scheduled for, if given."""
        return self._process_at

    @property
    def workflow_id(self) -> str | None:
        """The workflow this task belongs to (``strego.chain/group/chord``), if any."""
        return self._workflow_id

    @property
    def upstream_results(self) -> list[Any]:
        """Results of this task's direct dependencies in a workflow, in order (a chain
        step: ``[previous result]``; a chord callback: one per group member; a first
        step or a task outside a workflow: ``[]``)."""
        return self._upstream_results

    def in_workflow(self, workflow_id: str) -> Task:
        """This task as a member of workflow ``workflow_id`` (a copy)."""
        clone = Task.__new__(Task)
        for name in Task.__slots__:
            setattr(clone, name, getattr(self, name))
        clone._workflow_id = workflow_id
        return clone

    def __repr__(self) -> str:
        return f"Task(type={self._type!r}, id={self._id!r}, queue={self._queue!r})"


_NO_HEADERS: Mapping[str, str] = {}  # shared, never mutated: most tasks have none


def _validate_id(task_id: object) -> str:
    if (
        not isinstance(task_id, str)
        or not task_id
        or len(task_id) > MAX_NAME_LENGTH
        or task_id in _DOT_SEGMENTS
        or _has_forbidden_character(task_id)
    ):
        raise ConfigurationError(
            f"task id must be a 1-{MAX_NAME_LENGTH} character string without control "
            f"characters, and not '.' or '..'; got {task_id!r}"
        )
    return task_id


def _bounded_int(value: object, name: str, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise ConfigurationError(f"{name} must be an integer 0-{maximum}, got {value!r}")
    return value


def _priority(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_PRIORITY:
        raise ConfigurationError(f"priority must be an integer 0-{MAX_PRIORITY}, got {value!r}")
    return value


def _optional_text(value: object, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"{name} must be a non-empty string, got {value!r}")
    return value


def _labels(labels: object) -> dict[str, str]:
    if labels is None:
        return {}
    if not isinstance(labels, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
    ):
        raise TypeError(f"labels must map str to str, got {labels!r}")
    return dict(labels)


def _schedule(
    process_in: Duration | None, process_at: datetime | None
) -> tuple[float | None, datetime | None]:
    if process_in is not None and process_at is not None:
        raise ConfigurationError("give process_in or process_at, not both")
    if process_at is not None:
        if not isinstance(process_at, datetime):
            raise TypeError(f"process_at must be a datetime, got {process_at!r}")
        if process_at.tzinfo is None or process_at.utcoffset() is None:
            raise ConfigurationError("process_at must be timezone-aware (e.g. tzinfo=UTC)")
    delay = optional_seconds(process_in, "process_in")
    return delay, process_at


def _result_ttl(value: Duration | None) -> float | None:
    seconds = optional_seconds(value, "result_ttl")
    if seconds is not None and 0 < seconds < 0.001:  # Redis expires in whole milliseconds
        raise ConfigurationError(f"result_ttl must be 0 or at least 1 ms, got {value!r}")
    return seconds


def _pick_serializer(serializer: Serializer | None, payload: Any) -> Serializer:
    if serializer is None:
        return RAW if isinstance(payload, bytes | bytearray | memoryview) else JSON
    if not isinstance(serializer, Serializer):
        raise TypeError(f"serializer must have name, dumps and loads, got {serializer!r}")
    return serializer


def as_timedelta(seconds: float | None) -> timedelta | None:
    return None if seconds is None else timedelta(seconds=seconds)
