"""Task construction: every invalid option fails at construction, never in a worker."""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime, timedelta

import pydantic
import pytest

import strego
from strego.envelope import decode, encode


@dataclasses.dataclass
class Email:
    to: str
    subject: str


class Invoice(pydantic.BaseModel):
    number: int
    total: float


def test_defaults() -> None:
    """A task gets a sortable id, the default queue and three retries."""
    task = strego.Task("email:send", {"to": "a"})
    assert len(task.id) == 26
    assert task.queue == "default"
    assert task.max_retry == 3
    assert task.priority == 0
    assert task.payload_bytes == b'{"to":"a"}'
    assert task.serializer.name == "json"


def test_ids_sort_by_creation() -> None:
    """Auto ids are ULIDs: later tasks sort after earlier ones."""
    first = strego.Task("t").id
    time.sleep(0.002)  # ids of one millisecond share a time prefix; their order is random
    assert first < strego.Task("t").id


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"type": ""}, ValueError),
        ({"type": "   "}, ValueError),
        ({"queue": ""}, ValueError),
        ({"queue": "has space"}, ValueError),
        ({"queue": "a{b}"}, ValueError),
        ({"max_retry": -1}, ValueError),
        ({"max_retry": 1.5}, ValueError),
        ({"priority": 11}, ValueError),
        ({"priority": -1}, ValueError),
        ({"priority": True}, ValueError),
        ({"process_in": -1}, ValueError),
        ({"process_in": float("nan")}, ValueError),
        ({"timeout": 0}, ValueError),
        ({"unique_ttl": 0}, ValueError),
        ({"unique_key": ""}, ValueError),
        ({"process_at": datetime(2030, 1, 1)}, ValueError),  # naive
        ({"process_in": 1, "process_at": datetime(2030, 1, 1, tzinfo=UTC)}, ValueError),
        ({"labels": {"a": 1}}, TypeError),
        ({"labels": ["a"]}, TypeError),
        ({"payload": object()}, TypeError),
        ({"payload": {1, 2, object()}}, TypeError),
        ({"serializer": "json"}, TypeError),
        ({"id": ""}, ValueError),
    ],
)
def test_invalid_options_raise(kwargs: dict[str, object], error: type[Exception]) -> None:
    """Each invalid option raises ValueError or TypeError at construction."""
    args = {"type": "t", **kwargs}
    with pytest.raises(error):
        strego.Task(**args)  # type: ignore[arg-type]


def test_durations_accept_timedelta() -> None:
    """Durations take seconds or timedelta; process_in=0 is valid."""
    assert strego.Task("t", process_in=timedelta(minutes=2)).delay_s == 120
    assert strego.Task("t", process_in=0).delay_s == 0
    assert strego.Task("t", timeout=timedelta(seconds=1.5)).timeout == 1.5


def test_payload_kinds_serialize() -> None:
    """Dataclasses, models, datetimes and UUIDs serialize as JSON; bytes stay raw."""
    when = datetime(2026, 1, 2, tzinfo=UTC)
    assert strego.Task("t", Email("a@b.c", "Hi")).payload_bytes == b'{"to":"a@b.c","subject":"Hi"}'
    assert (
        strego.Task("t", Invoice(number=1, total=2.5)).payload_bytes == b'{"number":1,"total":2.5}'
    )
    assert strego.Task("t", {"at": when}).payload_bytes == b'{"at":"2026-01-02T00:00:00Z"}'
    raw = strego.Task("t", b"\x00\xff")
    assert raw.payload_bytes == b"\x00\xff"
    assert raw.serializer.name == "raw"


def test_envelope_round_trip() -> None:
    """The wire format keeps every option and the payload bytes untouched."""
    task = strego.Task(
        "t",
        b"\n\x00{",
        id="my-id",
        queue="q",
        max_retry=5,
        timeout=3,
        priority=7,
        unique_key="u",
        labels={"k": "v"},
    )
    message = decode(encode(task.to_message()))
    assert message == task.to_message()
    assert message.explicit_id is True
    assert message.payload == b"\n\x00{"


def test_task_info_and_state() -> None:
    """TaskState is a StrEnum with lowercase values."""
    dead: str = strego.TaskState.DEAD
    assert dead == "dead"
    assert [s.value for s in strego.TaskState] == [
        "pending",
        "scheduled",
        "active",
        "completed",
        "retry",
        "dead",
        "cancelled",
    ]
