"""Handler registration: signatures are checked once; payloads decode from type hints."""

from __future__ import annotations

import dataclasses
from typing import Any

import pydantic
import pytest
from typing_extensions import TypedDict  # pydantic needs this one on Python 3.11

import strego
from strego.envelope import TaskMessage
from strego.handlers import DecodeError, build_handler
from strego.serializers import SerializerRegistry


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Model(pydantic.BaseModel):
    name: str


class Typed(TypedDict):
    n: int


def message(payload: bytes, serializer: str = "json") -> TaskMessage:
    return TaskMessage(id="i", type="t", queue="q", payload=payload, serializer=serializer)


REGISTRY = SerializerRegistry()


async def h_task(task: strego.Task) -> None: ...
async def h_task_unannotated(task) -> None: ...  # type: ignore[no-untyped-def]
async def h_payload(payload: Point) -> None: ...
async def h_both(payload: Model, task: strego.Task) -> None: ...
def h_sync(payload: Typed) -> None: ...
async def h_bytes(payload: bytes) -> None: ...
async def h_any(data: Any) -> None: ...


@pytest.mark.parametrize(
    ("fn", "wants_payload", "wants_task", "is_async"),
    [
        (h_task, False, True, True),
        (h_task_unannotated, False, True, True),
        (h_payload, True, False, True),
        (h_both, True, True, True),
        (h_sync, True, False, False),
    ],
)
def test_signatures(fn: Any, wants_payload: bool, wants_task: bool, is_async: bool) -> None:
    """(task), (payload: T) and (payload: T, task) are recognised."""
    handler = build_handler("t", fn)
    assert (handler.wants_payload, handler.wants_task, handler.is_async) == (
        wants_payload,
        wants_task,
        is_async,
    )


def test_bad_signature_rejected_at_registration() -> None:
    """A handler with three parameters is refused when registered."""

    async def three(a: int, b: int, c: int) -> None: ...

    with pytest.raises(TypeError, match="3 positional"):
        build_handler("t", three)


def test_decodes_by_annotation() -> None:
    """Dataclass, model, TypedDict, bytes and Any payloads decode as annotated."""
    assert build_handler("t", h_payload).decode(message(b'{"x":1,"y":2}'), REGISTRY) == Point(1, 2)
    assert build_handler("t", h_both).decode(message(b'{"name":"n"}'), REGISTRY) == Model(name="n")
    assert build_handler("t", h_sync).decode(message(b'{"n":3}'), REGISTRY) == {"n": 3}
    assert build_handler("t", h_bytes).decode(message(b"\x00raw"), REGISTRY) == b"\x00raw"
    assert build_handler("t", h_any).decode(message(b"[1,2]"), REGISTRY) == [1, 2]


def test_msgpack_payload_validates() -> None:
    """Non-JSON serializers decode first, then validate against the type."""
    packed = strego.MsgpackSerializer().dumps({"x": 1, "y": 2})
    handler = build_handler("t", h_payload)
    assert handler.decode(message(packed, "msgpack"), REGISTRY) == Point(1, 2)


def test_validation_failure_is_a_decode_error() -> None:
    """A payload failing its type is a 'validation' decode error (dead-lettered)."""
    with pytest.raises(DecodeError) as info:
        build_handler("t", h_payload).decode(message(b'{"x":"nope"}'), REGISTRY)
    assert info.value.reason == "validation"


def test_unknown_serializer_is_a_decode_error() -> None:
    """An unknown serializer name is reported, not a crash."""
    with pytest.raises(DecodeError) as info:
        build_handler("t", h_payload).decode(message(b"{}", "protobuf"), REGISTRY)
    assert info.value.reason == "unknown_serializer"


def test_duplicate_registration_rejected() -> None:
    """Registering a second handler for a type is an error, not a silent override."""
    broker = strego.RedisBroker("redis://127.0.0.1:1/0")
    server = strego.Server(broker)
    server.handle("t", h_task)
    with pytest.raises(ValueError, match="already registered"):
        server.handle("t", h_task)
