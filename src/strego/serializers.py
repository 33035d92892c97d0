"""Payload serializers: the protocol, JSON (default), raw bytes and msgpack.

A serializer's ``name`` travels with every task, so a worker picks the matching
``loads`` whatever the producer used. Pickle is deliberately absent: a task queue
must never execute what it reads from the network.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

import pydantic_core

__all__ = [
    "JSON",
    "RAW",
    "JsonSerializer",
    "MsgpackSerializer",
    "RawSerializer",
    "Serializer",
    "SerializerRegistry",
]


@runtime_checkable
class Serializer(Protocol):
    """Turns payloads into bytes and back. ``name`` must be stable across deploys."""

    @property
    def name(self) -> str: ...

    def dumps(self, obj: Any) -> bytes: ...

    def loads(self, data: bytes) -> Any: ...


class JsonSerializer:
    """JSON through pydantic-core: dataclasses, models, datetimes and UUIDs just work."""

    name = "json"

    def dumps(self, obj: Any) -> bytes:
        try:
            return pydantic_core.to_json(obj)
        except pydantic_core.PydanticSerializationError as exc:
            raise TypeError(f"payload is not JSON serializable: {exc}") from exc

    def loads(self, data: bytes) -> Any:
        return pydantic_core.from_json(data)


class RawSerializer:
    """Bytes in, the same bytes out: for payloads that already are bytes."""

    name = "raw"

    def dumps(self, obj: Any) -> bytes:
        if not isinstance(obj, bytes | bytearray | memoryview):
            raise TypeError(f"the raw serializer takes bytes, got {type(obj).__name__}")
        return bytes(obj)

    def loads(self, data: bytes) -> Any:
        return data


class MsgpackSerializer:
    """msgpack (the ``strego[msgpack]`` extra): compact and fast, not human readable."""

    name = "msgpack"

    def __init__(self) -> None:
        try:
            import msgpack
        except ImportError as exc:  # pragma: no cover - depends on the extra
            raise ImportError("install strego[msgpack] to use MsgpackSerializer") from exc
        self._msgpack = msgpack

    def dumps(self, obj: Any) -> bytes:
        # Models and dataclasses go through pydantic first, as for JSON.
        plain = pydantic_core.to_jsonable_python(obj, bytes_mode="utf8")
        try:
            packed: bytes = self._msgpack.packb(plain, use_bin_type=True)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"payload is not msgpack serializable: {exc}") from exc
        return packed

    def loads(self, data: bytes) -> Any:
        return self._msgpack.unpackb(data, raw=False)


JSON = JsonSerializer()
RAW = RawSerializer()


def _builtin() -> dict[str, Serializer]:
    found: dict[str, Serializer] = {JSON.name: JSON, RAW.name: RAW}
    with contextlib.suppress(ImportError):  # msgpack is an optional extra
        found["msgpack"] = MsgpackSerializer()
    return found


class SerializerRegistry:
    """Name → serializer, for the worker side. Built-ins plus the ones a Server is given."""

    def __init__(self, extra: Iterable[Serializer] = ()) -> None:
        self._by_name: dict[str, Serializer] = _builtin()
        for serializer in extra:
            if not isinstance(serializer, Serializer):
                raise TypeError(f"{serializer!r} lacks name/dumps/loads")
            self._by_name[serializer.name] = serializer

    def get(self, name: str) -> Serializer | None:
        return self._by_name.get(name)

    @property
    def names(self) -> Mapping[str, Serializer]:
        return dict(self._by_name)
