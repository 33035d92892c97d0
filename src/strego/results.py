"""Task results: a handler's return value as stored in Redis, and how it reads back.

A stored result is ``<serializer name>\\n<bytes>``: the serializer travels with the
value (as with payloads), so any client decodes it whatever the worker used. Lua never
looks inside. ``Finished`` is what a waiter learns about a task that ended.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import pydantic

from strego.errors import ConfigurationError
from strego.serializers import JSON, RAW, Serializer, SerializerRegistry
from strego.task import TaskState

__all__ = [
    "Finished",
    "ResultEncodeError",
    "decode_result",
    "encode_result",
    "split_stored",
]

_SEP = b"\n"


class ResultEncodeError(Exception):
    """The return value cannot be kept: ``reason`` is the dead-letter reason."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(detail)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Finished:
    """How an awaited task ended, as Redis recorded it.

    ``stored`` is the encoded result (None: the handler returned None, or the result
    is not kept); ``reason`` and ``error`` describe a dead or cancelled task.
    """

    task_id: str
    state: TaskState  # completed, dead or cancelled
    stored: bytes | None = None
    reason: str | None = None
    error: str | None = None


def encode_result(
    value: Any,
    serializer: Serializer,
    adapter: pydantic.TypeAdapter[Any] | None,
    max_bytes: int,
) -> bytes:
    """Encode a handler's return value with the task's serializer.

    ``adapter`` (from the handler's return annotation) validates the value first, so a
    model, dataclass or TypedDict is written in its declared shape. Bytes are kept as
    they are (the raw serializer), whatever the task's serializer; a raw-payload task
    that returns anything else has it written as JSON.
    Raises :class:`ResultEncodeError` (``unserializable_result``/``result_too_large``).
    """
    try:
        if adapter is not None:
            value = adapter.validate_python(value)
        if isinstance(value, bytes | bytearray | memoryview):
            serializer, data = RAW, bytes(value)
        else:
            serializer = JSON if serializer is RAW else serializer
            if adapter is None:
                data = serializer.dumps(value)
            elif serializer is JSON:
                data = adapter.dump_json(value)
            else:  # the declared shape, as plain Python, for the serializer
                data = serializer.dumps(adapter.dump_python(value))
    except Exception as exc:  # a serializer's dumps may raise anything
        raise ResultEncodeError(
            "unserializable_result",
            f"the return value cannot be encoded with {serializer.name!r}: "
            f"{type(exc).__name__}: {exc}",
        ) from exc
    if not isinstance(data, bytes):  # a custom serializer breaking its protocol
        raise ResultEncodeError(
            "unserializable_result",
            f"serializer {serializer.name!r} returned {type(data).__name__}, not bytes",
        )
    if len(data) > max_bytes:
        raise ResultEncodeError(
            "result_too_large",
            f"the return value is {len(data)} bytes encoded, over result_max_bytes ({max_bytes})",
        )
    return serializer.name.encode() + _SEP + data


def split_stored(stored: bytes) -> tuple[str, bytes]:
    """(serializer name, encoded value) of a stored result."""
    name, sep, data = stored.partition(_SEP)
    if not sep:
        raise ValueError("a stored result has no serializer line")
    return name.decode(errors="replace"), data


def decode_result(stored: bytes, serializers: SerializerRegistry, type_: Any | None = None) -> Any:
    """The value of a stored result, validated as ``type_`` when given.

    Raises :class:`pydantic.ValidationError` when the value does not fit ``type_``, and
    :class:`ConfigurationError` when its serializer is unknown here.
    """
    name, data = split_stored(stored)
    serializer = serializers.get(name)
    if serializer is None:
        raise ConfigurationError(
            f"the result was encoded with serializer {name!r}, which this client does not "
            "know: pass it to Client(..., serializers=[...])"
        )
    if type_ is None:
        return serializer.loads(data)
    try:
        adapter = _adapter(type_)
    except TypeError:  # an unhashable type (cannot be cached): build one for this call
        adapter = pydantic.TypeAdapter(type_)
    if serializer is JSON:
        return adapter.validate_json(data)
    return adapter.validate_python(serializer.loads(data))


@functools.lru_cache(maxsize=256)
def _adapter(type_: Any) -> pydantic.TypeAdapter[Any]:
    return pydantic.TypeAdapter(type_)
