"""The whole strego exception hierarchy.

::

    StregoError                       root: catch this to catch everything strego raises
    ├── ConfigurationError(ValueError) an option is invalid (raised at construction)
    ├── BrokerUnavailableError        Redis could not be reached after bounded retries
    ├── DuplicateTaskError            enqueue: the unique key is held by another task
    ├── TaskNotFoundError             no task (or no result) with this id: unknown or expired
    ├── PeriodicNotFoundError(LookupError) no schedule of this name in this queue
    ├── QueueInUseError               an admin call would pull a queue from under workers
    ├── TaskTimeoutError              recorded when an attempt ran past its timeout
    ├── TaskFailedError               result(): the task was dead-lettered (.reason, .error)
    ├── TaskCancelledError            result(): the task was cancelled (.reason)
    ├── ResultTimeoutError(TimeoutError) result(): not finished within ``timeout``
    ├── SchemaError                   the history store's schema is missing or too new
    └── HandlerSignal                 raised *by handlers* to steer the outcome
        ├── SkipRetry                 dead-letter now: retrying cannot help
        └── RetryAfter                retry after this many seconds (not capped)

Handler signals are exceptions because that is the only way a handler can stop
mid-way and say why; the worker turns them into explicit outcome values at once.
"""

from __future__ import annotations

from datetime import timedelta

__all__ = [
    "BrokerUnavailableError",
    "ConfigurationError",
    "DuplicateTaskError",
    "HandlerSignal",
    "PeriodicNotFoundError",
    "QueueInUseError",
    "ResultTimeoutError",
    "RetryAfter",
    "SchemaError",
    "SkipRetry",
    "StregoError",
    "TaskCancelledError",
    "TaskFailedError",
    "TaskNotFoundError",
    "TaskTimeoutError",
]


class StregoError(Exception):
    """Root of every exception strego raises."""


class ConfigurationError(StregoError, ValueError):
    """An option is invalid. Raised when the object is built, never later in a worker."""


class BrokerUnavailableError(StregoError):
    """Redis could not be reached; the operation was retried with backoff and gave up."""

    def __init__(self, operation: str, attempts: int, cause: BaseException | None = None) -> None:
        self.operation = operation
        self.attempts = attempts
        detail = f": {cause}" if cause else ""
        super().__init__(
            f"Redis unavailable during {operation} after {attempts} attempts{detail}; "
            "check the Redis URL and that the server is up"
        )


class DuplicateTaskError(StregoError):
    """The task's unique key is held; ``task_id`` names the task that holds it."""

    def __init__(self, task_id: str, *, queue: str = "", unique_key: str = "") -> None:
        self.task_id = task_id
        self.queue = queue
        self.unique_key = unique_key
        super().__init__(f"unique key {unique_key!r} in queue {queue!r} is held by task {task_id}")


class TaskNotFoundError(StregoError):
    """No task with this id is known to Redis (finished long ago, or never existed).

    ``Client.result`` raises it at once for an unknown id and for a result that expired
    (``result_ttl``): never a wait for something that cannot arrive.
    """

    def __init__(self, task_id: str, queue: str | None = None) -> None:
        self.task_id = task_id
        self.queue = queue
        where = f" in queue {queue!r}" if queue else ""
        super().__init__(f"task {task_id} not found{where}")


class PeriodicNotFoundError(StregoError, LookupError):
    """No periodic schedule of this name in this queue (deleted, or never declared)."""

    def __init__(self, name: str, queue: str) -> None:
        self.name = name
        self.queue = queue
        super().__init__(f"no periodic schedule {name!r} in queue {queue!r}")


class QueueInUseError(StregoError):
    """The queue cannot be deleted now: live workers serve it or tasks are running."""

    def __init__(self, queue: str, reason: str) -> None:
        self.queue = queue
        self.reason = reason
        super().__init__(f"queue {queue!r} is in use: {reason}")


class TaskTimeoutError(StregoError):
    """An attempt ran longer than the task's ``timeout``."""

    def __init__(self, task_id: str, timeout_s: float) -> None:
        self.task_id = task_id
        self.timeout_s = timeout_s
        super().__init__(f"task {task_id} timed out after {timeout_s:g}s")


class TaskFailedError(StregoError):
    """The awaited task was dead-lettered: it has no result.

    ``reason`` is the dead-letter reason (``exhausted``, ``skip_retry``, ``validation``,
    ``result_too_large``, ...); ``error`` the last error it recorded.
    """

    def __init__(self, task_id: str, reason: str, error: str | None = None) -> None:
        self.task_id = task_id
        self.reason = reason
        self.error = error
        detail = f": {error}" if error else ""
        super().__init__(f"task {task_id} failed ({reason}){detail}")


class TaskCancelledError(StregoError):
    """The awaited task was cancelled; ``reason`` is ``cancelled`` or ``upstream_failed``."""

    def __init__(self, task_id: str, reason: str = "cancelled") -> None:
        self.task_id = task_id
        self.reason = reason
        super().__init__(f"task {task_id} was cancelled ({reason})")


class ResultTimeoutError(StregoError, TimeoutError):
    """The awaited task did not finish within ``timeout``; it may still finish later."""

    def __init__(self, task_id: str, timeout_s: float) -> None:
        self.task_id = task_id
        self.timeout_s = timeout_s
        super().__init__(f"task {task_id} did not finish within {timeout_s:g}s")


class SchemaError(StregoError):
    """The history store's schema is missing or newer than this strego understands."""


class HandlerSignal(StregoError):
    """Base of the exceptions a handler raises on purpose to choose its outcome."""


class SkipRetry(HandlerSignal):
    """Raise in a handler to send the task straight to dead letters."""

    def __init__(self, reason: str = "handler raised SkipRetry") -> None:
        self.reason = reason
        super().__init__(reason)


class RetryAfter(HandlerSignal):
    """Raise in a handler to retry after ``delay`` (seconds or timedelta, not capped)."""

    def __init__(self, delay: float | timedelta, reason: str = "") -> None:
        seconds = delay.total_seconds() if isinstance(delay, timedelta) else float(delay)
        if seconds < 0:
            raise ConfigurationError(f"RetryAfter delay must be >= 0, got {seconds}")
        self.delay_s = seconds
        self.reason = reason or f"retry requested after {seconds:g}s"
        super().__init__(self.reason)
