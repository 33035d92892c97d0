"""Garbage in the streams, bad payloads, bad options, huge entries: the worker survives.

Entries are XADDed straight into the queue's band streams (bypassing the client), so
they can be anything a buggy or hostile producer could write. Each must end in dead
letters with a reason (or, when it happens to be a valid task, complete), and good
tasks between them must still run.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pydantic_core
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import strego
from strego.broker.redis.keys import QueueKeys
from strego.embedded import EmbeddedRedis
from strego.envelope import MalformedTaskError, decode
from tests.faults.harness import Fleet, WorkerProcess, wait_all_done, wait_ready
from tests.faults.loop_thread import LoopThread

pytestmark = pytest.mark.faults

QUEUE = "default"
KNOWN_SERIALIZERS = {"json", "raw", "msgpack"}

# -- what a garbage entry can be ---------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=5,
)
# Per header field, values decode() must reject.
not_text = st.none() | st.booleans() | st.integers() | st.lists(st.integers()) | st.just("")
not_count = st.text(max_size=5) | st.integers(max_value=-1) | st.lists(st.integers()) | st.none()
BAD_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "id": not_text,
    "t": not_text,
    "q": not_text,
    "ca": st.text(min_size=1, max_size=5).filter(lambda s: not s.strip().isdigit())
    | st.sampled_from([math.inf, -math.inf, math.nan, 1e400]),
    "mr": not_count,
    "rc": not_count,
    "pr": not_count,
    "to": st.sampled_from([0, -1, "5", [], math.inf, math.nan, 1e20, 1e300]),
    "s": st.integers() | st.lists(st.text()),
    "l": st.just({"a": 1}) | st.just([1]) | st.just("labels"),
}
# Fields a header may carry with odd but acceptable values.
ODD_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "ca": st.integers() | st.floats(allow_nan=False, allow_infinity=False),
    "e": json_values,
    "tb": json_values,
    "dr": json_values,
    "fa": json_values,
    "uk": st.text(min_size=1, max_size=20),
    "l": st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
}
payloads = st.sampled_from([b"{}", b"[1]", b'"x"', b"null", b"{", b""]) | st.binary(max_size=40)


@dataclasses.dataclass
class Garbage:
    fields: dict[bytes, bytes]
    band: int
    header_id: str | None  # the dead letter's id when the header is readable


@st.composite
def garbage(draw: st.DrawFn) -> Garbage:
    band = draw(st.integers(0, 10))
    kinds = ["no_d", "no_newline", "bad_header", "bad_field", "bad_field", "bad_field", "odd"]
    kind = draw(st.sampled_from(kinds))
    if kind == "no_d":
        keys = st.binary(min_size=1, max_size=8).filter(lambda k: k != b"d")
        return Garbage(draw(st.dictionaries(keys, st.binary(max_size=30), min_size=1)), band, None)
    if kind == "no_newline":
        blob = draw(st.binary(max_size=60).filter(lambda b: b"\n" not in b))
        return Garbage({b"d": blob}, band, None)
    if kind == "bad_header":
        head = draw(st.binary(max_size=40).filter(lambda b: b"\n" not in b))
        return Garbage({b"d": head + b"\n" + draw(payloads)}, band, None)
    task_id = f"g-{uuid.uuid4().hex}"
    header: dict[str, Any] = {
        "id": task_id,
        "t": draw(st.sampled_from(["work", "nope"])),
        "q": QUEUE,
    }
    header["s"] = draw(st.sampled_from(["json", "json", "raw", "pickle", "yaml", ""]))
    table = BAD_FIELDS if kind == "bad_field" else ODD_FIELDS
    for name in draw(st.lists(st.sampled_from(sorted(table)), min_size=1, max_size=3)):
        header[name] = draw(table[name])
    # json, not pydantic_core: NaN/Infinity constants on every pydantic release we support
    raw = json.dumps(header, allow_nan=True).encode() + b"\n" + draw(payloads)
    return Garbage({b"d": raw}, band, task_id)


def expected_dead_id(item: Garbage, entry_id: str) -> str:
    """The id the entry will be known by: its own if its header is readable."""
    blob = item.fields.get(b"d")
    try:
        if blob is None:
            raise MalformedTaskError("no d")
        message = decode(blob)
    except MalformedTaskError:
        return f"malformed-{item.band}-{entry_id}-"  # + a random suffix: see Probe.final
    return message.id


# -- fixtures ------------------------------------------------------------------------------


@pytest.fixture
def worker(fleet: Fleet, fault_redis: EmbeddedRedis, prefix: str) -> Iterator[WorkerProcess]:
    """One worker for every example: it must survive them all.

    Entries XADDed behind strego's back publish no wake-up, so a short ``block``
    makes the idle worker look again soon.
    """
    fleet.base = dataclasses.replace(fleet.base, concurrency=4, fsync=False, block=0.2)
    worker = fleet.spawn("garbage")
    with LoopThread() as loop:
        loop.run(wait_ready(fault_redis.url, prefix, ["garbage"]))
    yield worker
    assert worker.alive(), "the worker died\n" + worker.output()


@pytest.fixture
def probe(fault_redis: EmbeddedRedis, prefix: str) -> Iterator[Probe]:
    with LoopThread() as loop:
        probe = Probe(fault_redis.url, prefix, loop)
        yield probe
        probe.close()


class Probe:
    """Sync access (for hypothesis) to Redis, the client and the inspector."""

    def __init__(self, url: str, prefix: str, loop: LoopThread) -> None:
        self.redis: Any = redis.Redis.from_url(url)  # Any: replies are bytes at runtime
        self.keys = QueueKeys(prefix, QUEUE)
        self.loop = loop
        self.broker = strego.RedisBroker(url, prefix=prefix, group="faults")
        self.inspector = strego.Inspector(self.broker)
        self.client = strego.Client(self.broker)

    def xadd(self, item: Garbage) -> str:
        entry_id = self.redis.xadd(self.keys.stream(item.band), dict(item.fields))
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)

    def enqueue(self, task: strego.Task) -> str:
        return self.loop.run(self.client.enqueue(task)).id

    def final(self, task_id: str, timeout_s: float = 15) -> strego.TaskRecord:
        """Wait until the task is dead or completed; return its record."""
        deadline = time.monotonic() + timeout_s
        prefix = task_id if task_id.endswith("-") else None
        while True:
            if prefix is not None:  # a malformed entry's dead letter: find its full id
                found = [
                    member.decode()
                    for member, _ in self.redis.zscan_iter(self.keys.dead, f"{prefix}*")
                ]
                task_id = found[0] if found else prefix
            record = self.loop.run(self.inspector.get_task(task_id, QUEUE))
            if record is not None and record.state in ("dead", "completed"):
                return record
            assert time.monotonic() < deadline, f"{task_id} stuck: {record}"
            time.sleep(0.02)

    def close(self) -> None:
        self.loop.run(self.broker.aclose())
        self.redis.close()


# -- tests --------------------------------------------------------------------------------


@pytest.mark.timeout(240)
@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=st.lists(garbage(), min_size=1, max_size=6))
def test_garbage_entries_go_to_dead_letters(
    batch: list[Garbage], worker: WorkerProcess, fleet: Fleet, probe: Probe
) -> None:
    """Any stream entry ends dead-lettered with a reason (or completed); good tasks still run."""
    half = len(batch) // 2
    entries = [(item, probe.xadd(item)) for item in batch[:half]]
    good = probe.enqueue(strego.Task("work", {}))
    entries += [(item, probe.xadd(item)) for item in batch[half:]]
    probe.loop.run(wait_all_done(fleet.reader(), [good], timeout_s=15, fleet=fleet, poll_s=0.02))
    for item, entry_id in entries:
        record = probe.final(expected_dead_id(item, entry_id))
        if record.state == "dead":
            assert record.dead_reason, record
            assert record.last_error, record
    assert worker.alive(), worker.output()


@pytest.mark.timeout(60)
async def test_error_inside_the_worker_does_not_strand_a_task(
    fleet: Fleet, fault_redis: EmbeddedRedis, prefix: str
) -> None:
    """A task whose run raises inside the worker (here: its retry policy) is not stranded:
    it is redelivered, and dead-lettered as poison after max_deliveries."""
    fleet.base = dataclasses.replace(
        fleet.base, claim_stale_after=0.5, claim_check_interval=0.25, max_deliveries=3
    )
    worker = fleet.spawn("w0")
    await wait_ready(fault_redis.url, prefix, ["w0"])
    async with (
        strego.RedisBroker(fault_redis.url, prefix=prefix, group="faults") as broker,
        strego.Client(broker) as client,
    ):
        info = await client.enqueue(strego.Task("broken_policy", {}))
        inspector = strego.Inspector(broker)
        deadline = time.monotonic() + 20
        while (record := await inspector.get_task(info.id)) is None or record.state != "dead":
            assert time.monotonic() < deadline, f"stranded: {record}\n{worker.output()}"
            await asyncio.sleep(0.1)
    reader = fleet.reader()
    reader.poll()
    assert record.dead_reason == "poison", record
    assert reader.done[info.id] == 3, "run once per delivery, up to max_deliveries"
    assert worker.alive()


MB = 1024 * 1024


@pytest.mark.timeout(90)
async def test_ten_megabyte_entries(fleet: Fleet, fault_redis: EmbeddedRedis, prefix: str) -> None:
    """10 MB garbage is dead-lettered with its bytes kept; a 10 MB good task completes."""
    fleet.base = dataclasses.replace(fleet.base, block=0.2)
    worker = fleet.spawn("w0")
    await wait_ready(fault_redis.url, prefix, ["w0"])
    keys = QueueKeys(prefix, QUEUE)
    junk = bytes(range(256)).replace(b"\n", b"") * (10 * MB // 255)
    header = pydantic_core.to_json({"id": "big-undecodable", "t": "work", "q": QUEUE})
    async with (
        strego.RedisBroker(fault_redis.url, prefix=prefix, group="faults") as broker,
        strego.Client(broker) as client,
    ):
        raw = await broker.redis.xadd(keys.stream(0), {b"d": junk})
        await broker.redis.xadd(keys.stream(0), {b"d": header + b"\n" + junk})
        big = bytes(10 * MB)
        good = await client.enqueue(strego.Task("blob", big, labels={"size": str(len(big))}))
        await wait_all_done(fleet.reader(), [good.id], timeout_s=60, fleet=fleet)
        inspector = strego.Inspector(broker)
        deadline = time.monotonic() + 30
        while len(dead := await inspector.dead_letters(QUEUE)) < 2:
            assert time.monotonic() < deadline, dead
            await asyncio.sleep(0.1)
        record = await inspector.get_task(good.id)
    reasons = {r.id: r.dead_reason for r in dead}
    (malformed,) = [i for i in reasons if i.startswith(f"malformed-0-{raw.decode()}-")]
    assert reasons.pop(malformed) == "malformed"
    assert reasons.pop("big-undecodable") in ("validation", "undecodable")  # not JSON
    assert all(len(r.payload_bytes) >= len(junk) for r in dead), "raw bytes are kept"
    assert record is not None and record.state == "completed"
    assert worker.alive(), worker.output()


# -- options are validated when a Task is built ---------------------------------------------

OPTION_NAMES = [
    "id", "queue", "max_retry", "timeout", "process_in", "process_at", "priority",
    "unique_key", "unique_ttl", "labels", "serializer",
]  # fmt: skip
anything = (
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats()
    | st.text(max_size=5)
    | st.timedeltas()
    | st.datetimes(timezones=st.none() | st.timezones())
    | st.lists(st.integers(), max_size=2)
    | st.dictionaries(st.text(max_size=3), st.text(max_size=3) | st.integers(), max_size=2)
    | st.builds(object)
)


@pytest.mark.timeout(120)
@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    task_type=st.text(max_size=5) | st.none() | st.integers(),
    payload=anything | st.binary(max_size=10) | st.complex_numbers(),
    options=st.dictionaries(st.sampled_from(OPTION_NAMES), anything, max_size=4),
)
def test_task_options_fail_at_construction_or_never(
    task_type: Any, payload: Any, options: dict[str, Any], probe: Probe
) -> None:
    """Task(...) raises ValueError/TypeError for bad options; a Task it builds enqueues."""
    try:
        task = strego.Task(task_type, payload, **options)
    except (ValueError, TypeError):
        return
    try:
        info = probe.loop.run(probe.client.enqueue(task))
    except strego.DuplicateTaskError:
        # Examples share one queue: a unique key drawn twice (say "0") is still held by
        # the earlier example's task. That is the option working, not a failure.
        assert task.unique_key is not None
        return
    assert info.id == task.id


@pytest.mark.parametrize(
    ("args", "options"),
    [
        (("",), {}),
        (("t",), {"priority": 11}),
        (("t",), {"priority": -1}),
        (("t",), {"priority": True}),
        (("t",), {"max_retry": -1}),
        (("t",), {"process_in": -1}),
        (("t",), {"process_in": math.nan}),
        (("t",), {"timeout": 0}),
        (("t",), {"timeout": math.inf}),
        (("t",), {"timeout": 1e20}),
        (("t",), {"process_at": datetime(2030, 1, 1)}),  # naive
        (("t",), {"process_in": 1, "process_at": datetime.now().astimezone()}),
        (("t",), {"labels": {"a": 1}}),
        (("t",), {"queue": "a{b}"}),
        (("t",), {"unique_ttl": timedelta(seconds=-1)}),
        (("t", object()), {}),
        (("t", {"nested": object()}), {}),
        (("t", [b"\xff"]), {}),  # not UTF-8: JSON cannot carry it
    ],
)
@pytest.mark.timeout(10)
def test_invalid_task_options_raise_at_construction(
    args: tuple[Any, ...], options: dict[str, Any]
) -> None:
    """Each invalid option raises ValueError or TypeError from Task(...) itself."""
    with pytest.raises((ValueError, TypeError)):
        strego.Task(*args, **options)
