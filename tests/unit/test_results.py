"""Encoding results: the task's serializer, the return annotation, the size cap."""

from __future__ import annotations

import dataclasses
from typing import Any

import pydantic
import pytest

from strego.handlers import build_handler
from strego.results import ResultEncodeError, decode_result, encode_result, split_stored
from strego.serializers import JSON, RAW, MsgpackSerializer, SerializerRegistry


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Shape(pydantic.BaseModel):
    name: str


class Circle(Shape):
    radius: float


def test_stored_form_names_its_serializer() -> None:
    """A stored result is '<serializer>\\n<bytes>', decoded by whoever knows the name."""
    stored = encode_result({"a": 1}, JSON, None, 100)
    assert stored == b'json\n{"a":1}'
    assert split_stored(stored) == ("json", b'{"a":1}')
    packed = encode_result({"a": 1}, MsgpackSerializer(), None, 100)
    assert decode_result(packed, SerializerRegistry()) == {"a": 1}


def test_bytes_are_kept_raw_and_raw_tasks_fall_back_to_json() -> None:
    """Bytes stay bytes whatever the serializer; a raw task returning a dict is JSON."""
    assert encode_result(b"\x00\xff", JSON, None, 100) == b"raw\n\x00\xff"
    assert encode_result({"k": "v"}, RAW, None, 100) == b'json\n{"k":"v"}'


def test_return_annotation_shapes_and_checks() -> None:
    """The handler's return annotation writes the declared shape and refuses a mismatch."""

    def handler(payload: Any) -> Shape:
        return Circle(name="c", radius=1.0)

    adapter = build_handler("h", handler).result_adapter
    assert adapter is not None
    assert encode_result(Circle(name="c", radius=1.0), JSON, adapter, 100) == b'json\n{"name":"c"}'
    with pytest.raises(ResultEncodeError) as bad:
        encode_result(42, JSON, adapter, 100)
    assert bad.value.reason == "unserializable_result"


def test_no_adapter_for_silent_annotations() -> None:
    """None, Any, bytes and missing annotations give no adapter (nothing to enforce)."""

    def none(payload: Any) -> None: ...
    def anything(payload: Any) -> Any: ...
    def raw(payload: Any) -> bytes:
        return b""

    def bare(payload):  # type: ignore[no-untyped-def]
        ...

    for fn in (none, anything, raw, bare):
        assert build_handler("h", fn).result_adapter is None


def test_too_large_and_unencodable() -> None:
    """Over max_bytes → result_too_large; a value the serializer refuses → unserializable."""
    with pytest.raises(ResultEncodeError) as big:
        encode_result("x" * 200, JSON, None, 100)
    assert big.value.reason == "result_too_large"
    with pytest.raises(ResultEncodeError) as odd:
        encode_result(object(), JSON, None, 100)
    assert odd.value.reason == "unserializable_result"


def test_decode_validates_as_type() -> None:
    """``type_`` validates (and converts) the decoded value."""
    stored = encode_result(Point(1, 2), JSON, None, 100)
    assert decode_result(stored, SerializerRegistry(), Point) == Point(1, 2)
    with pytest.raises(pydantic.ValidationError):
        decode_result(stored, SerializerRegistry(), list[int])
