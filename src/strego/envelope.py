"""The wire format of a task in Redis: one opaque blob, a JSON header line + payload.

``{"id": ..., "t": "email:send", ...}\\n<payload bytes>``. JSON escapes newlines, so
the first newline always ends the header; the payload after it is stored untouched
(JSON payloads stay human readable in Redis). Lua scripts never look inside.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from typing import Any

import pydantic_core

__all__ = [
    "MAX_HEADERS",
    "MAX_HEADER_LENGTH",
    "MAX_RETRY",
    "MalformedTaskError",
    "TaskMessage",
    "decode",
    "encode",
    "valid_headers",
]

#: The most retries a task may ask for. Every layer must hold it (and retry_count, which
#: never exceeds it): PostgreSQL's ``integer`` history columns stop at 2**31 - 1, and a
#: row they refuse left the task's history stuck at "active".
MAX_RETRY = 1_000_000_000

#: Transport headers (``TaskMessage.headers``: W3C trace context and the like) are
#: bounded, so a middleware cannot grow every waiting task without limit.
MAX_HEADERS = 16
MAX_HEADER_LENGTH = 4096  # characters of one header value (W3C tracestate: at most 512)

_TRACEBACK_LIMIT = 8 * 1024
_MAX_TIMEOUT_S = 100 * 365.25 * 86400  # durations.MAX_SECONDS (not imported: layering)
_MAX_EPOCH_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, the last datetime


class MalformedTaskError(ValueError):
    """A blob in Redis is not a task this strego can read (kept and dead-lettered)."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TaskMessage:
    """Everything a worker needs to run a task, as stored in Redis."""

    id: str
    type: str
    queue: str
    payload: bytes
    serializer: str = "json"
    max_retry: int = 3
    timeout_s: float | None = None
    priority: int = 0
    unique_key: str | None = None
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    created_ms: int = 0
    retry_count: int = 0
    explicit_id: bool = False
    last_error: str | None = None
    traceback: str | None = None
    dead_reason: str | None = None
    failed_ms: int | None = None
    # Set by middleware at enqueue, read by middleware in the worker (the W3C trace
    # context ``traceparent``/``tracestate``): not labels, which are the user's.
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    result_ttl_s: float | None = None  # None: the worker's default (Server(result_ttl=...))
    # The workflow this task belongs to (strego.workflows): its graph lives in Redis,
    # so the envelope carries only this id, whatever the fan-in.
    workflow_id: str | None = None
    upstream_count: int = 0  # its direct dependencies in the workflow (0: none to read)

    def evolve(self, **changes: Any) -> TaskMessage:
        return dataclasses.replace(self, **changes)


# (attribute, header key, default) — defaults are left out of the header to keep
# every waiting task small in Redis memory.
_OPTIONAL: tuple[tuple[str, str, Any], ...] = (
    ("serializer", "s", "json"),
    ("max_retry", "mr", 3),
    ("timeout_s", "to", None),
    ("priority", "pr", 0),
    ("unique_key", "uk", None),
    ("retry_count", "rc", 0),
    ("explicit_id", "x", False),
    ("last_error", "e", None),
    ("traceback", "tb", None),
    ("dead_reason", "dr", None),
    ("failed_ms", "fa", None),
    ("result_ttl_s", "rt", None),
    ("workflow_id", "wf", None),
    ("upstream_count", "un", 0),
)


_BY_KEY = {key: attr for attr, key, _default in _OPTIONAL}
_BY_ATTR = {attr: key for attr, key, _default in _OPTIONAL}


def encode(message: TaskMessage) -> bytes:
    header: dict[str, Any] = {
        "id": message.id,
        "t": message.type,
        "q": message.queue,
        "ca": message.created_ms,
    }
    for attr, key, default in _OPTIONAL:
        value = getattr(message, attr)
        if value != default:
            header[key] = value
    if message.labels:
        header["l"] = dict(message.labels)
    if message.headers:
        header["h"] = dict(message.headers)
    if message.traceback and len(message.traceback) > _TRACEBACK_LIMIT:
        header["tb"] = "…" + message.traceback[-_TRACEBACK_LIMIT:]
    return pydantic_core.to_json(header) + b"\n" + message.payload


def decode(blob: bytes) -> TaskMessage:
    """Parse a blob; raise :class:`MalformedTaskError` saying what is wrong."""
    cut = blob.find(b"\n")
    if cut < 0:
        raise MalformedTaskError("no header line (expected JSON header, newline, payload)")
    try:
        header = pydantic_core.from_json(blob[:cut])
    except ValueError as exc:
        raise MalformedTaskError(f"header is not JSON: {exc}") from exc
    if not isinstance(header, dict):
        raise MalformedTaskError("header is not a JSON object")
    try:
        fields: dict[str, Any] = {
            "id": _text(header, "id"),
            "type": _text(header, "t"),
            "queue": _text(header, "q"),
            "created_ms": int(header.get("ca", 0)),
            "payload": blob[cut + 1 :],
        }
        # Only what the header carries: defaults are left out of it (most tasks carry
        # none), and a default needs no check (the decode of every delivery is hot).
        present = [_BY_KEY[key] for key in header if key in _BY_KEY]
        for attr in present:
            fields[attr] = header[_BY_ATTR[attr]]
        if "l" in header:
            labels = header["l"]
            if not isinstance(labels, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
            ):
                raise MalformedTaskError("labels must map str to str")
            fields["labels"] = labels
        if "h" in header:
            headers = header["h"]
            if not valid_headers(headers):
                raise MalformedTaskError(
                    f"headers must map str to str (at most {MAX_HEADERS}, values of at most "
                    f"{MAX_HEADER_LENGTH} characters)"
                )
            fields["headers"] = headers
        message = TaskMessage(**fields)
    # OverflowError: JSON allows Infinity, and int(Infinity) raises it. Anything that
    # escapes as another type left the entry pending forever instead of dead-lettered.
    except (TypeError, ValueError, OverflowError) as exc:
        raise MalformedTaskError(f"bad header field: {exc}") from exc
    _check_types(message, present)
    return message


def valid_headers(headers: object) -> bool:
    """Transport headers as the envelope carries them: a small str → str mapping."""
    return (
        isinstance(headers, dict)
        and len(headers) <= MAX_HEADERS
        and all(
            isinstance(k, str)
            and isinstance(v, str)
            and len(k) <= 256
            and len(v) <= MAX_HEADER_LENGTH
            for k, v in headers.items()
        )
    )


def _text(header: Mapping[str, Any], key: str) -> str:
    value = header.get(key)
    if not isinstance(value, str) or not value:
        raise MalformedTaskError(f"header field {key!r} missing or not a string")
    return value


def _check_types(message: TaskMessage, present: Collection[str]) -> None:
    """Check the fields the header set (``present``; the rest hold their defaults)."""
    if "serializer" in present and not isinstance(message.serializer, str):
        raise MalformedTaskError("serializer name must be a string")
    for name in ("max_retry", "retry_count", "priority", "upstream_count"):
        if name not in present:
            continue
        value = getattr(message, name)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_RETRY:
            raise MalformedTaskError(f"{name} must be an integer 0-{MAX_RETRY}")
    # NaN, Infinity and huge timeouts passed a plain "> 0" check and then broke the
    # worker's deadline arithmetic, leaving the entry stuck (found by tests/faults).
    if message.timeout_s is not None and (
        not isinstance(message.timeout_s, int | float)
        or not 0 < message.timeout_s <= _MAX_TIMEOUT_S
    ):
        raise MalformedTaskError("timeout must be a positive number of seconds (at most 100 years)")
    if message.result_ttl_s is not None and (
        not isinstance(message.result_ttl_s, int | float)
        or isinstance(message.result_ttl_s, bool)
        or not 0 <= message.result_ttl_s <= _MAX_TIMEOUT_S
    ):
        raise MalformedTaskError("result_ttl must be a number of seconds >= 0 (at most 100 years)")
    # Times past year 9999 made the worker's Task.received and Inspector.get_task raise
    # (the entry stuck pending; its dead letter unreadable), and non-text error fields
    # break whoever shows them: such headers are malformed (found by tests/faults).
    if not _is_epoch_ms(message.created_ms):
        raise MalformedTaskError("created_ms must be epoch milliseconds before year 10000")
    if message.failed_ms is not None and not _is_epoch_ms(message.failed_ms):
        raise MalformedTaskError("failed_ms must be epoch milliseconds before year 10000")
    for name in ("unique_key", "last_error", "traceback", "dead_reason", "workflow_id"):
        if name in present and not isinstance(getattr(message, name), str | None):
            raise MalformedTaskError(f"{name} must be a string")
    if "explicit_id" in present and not isinstance(message.explicit_id, bool):
        raise MalformedTaskError("explicit id flag must be a boolean")


def _is_epoch_ms(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_EPOCH_MS
