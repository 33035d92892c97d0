"""Task results: a handler's return value, kept with a TTL, awaited without polling."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pydantic
import pytest

import strego
from strego.serializers import MsgpackSerializer
from tests.conftest import wait_until
from tests.integration.conftest import ServerFactory
from tests.integration.probes import redis_broker, state_is


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Base(pydantic.BaseModel):
    name: str


class Wider(Base):
    secret: str


class Report(pydantic.BaseModel):
    title: str
    pages: int


async def test_round_trip_of_each_kind(client: strego.Client, make_server: ServerFactory) -> None:
    """JSON, msgpack, bytes, a pydantic model and a dataclass come back as returned."""

    async def echo(payload: Any) -> Any:
        return payload

    async def report(payload: dict[str, Any]) -> Report:
        return Report(title=payload["t"], pages=3)

    def point(payload: list[int]) -> Point:  # a sync handler, in a thread
        return Point(*payload)

    async def raw(payload: bytes) -> bytes:
        return payload[::-1]

    await make_server({"echo": echo, "report": report, "point": point, "raw": raw})
    msgpack = MsgpackSerializer()
    value = {"a": [1, 2.5, None, "é"], "big": 2**62}
    json_task = await client.enqueue(strego.Task("echo", value))
    packed = await client.enqueue(strego.Task("echo", value, serializer=msgpack))
    blob = bytes(range(256))
    raw_task = await client.enqueue(strego.Task("raw", blob))
    model_task = await client.enqueue(strego.Task("report", {"t": "Q3"}))
    point_task = await client.enqueue(strego.Task("point", [3, 4]))

    assert await client.result(json_task.id, timeout=10) == value
    assert await client.result(packed.id, timeout=10) == value
    assert await client.result(raw_task.id, timeout=10) == blob[::-1]
    assert await client.result(model_task.id, timeout=10) == {"title": "Q3", "pages": 3}
    assert await client.result(model_task.id, type=Report) == Report(title="Q3", pages=3)
    assert await client.result(point_task.id, timeout=10) == {"x": 3, "y": 4}
    assert await client.result(point_task.id, type=Point) == Point(3, 4)
    stored = await redis_broker(client).redis.get(
        redis_broker(client).keys("default").result(packed.id)
    )
    assert stored.startswith(b"msgpack\n")


async def test_type_validation(client: strego.Client, make_server: ServerFactory) -> None:
    """``type=`` validates the value; a value that does not fit raises ValidationError."""

    async def numbers(payload: Any) -> list[str]:
        return ["1", "2"]

    async def nothing(payload: Any) -> None:
        return None

    await make_server({"numbers": numbers, "nothing": nothing})
    info = await client.enqueue(strego.Task("numbers"))
    assert await client.result(info.id, timeout=10, type=list[int]) == [1, 2]
    with pytest.raises(pydantic.ValidationError):
        await client.result(info.id, type=dict[str, int])
    empty = await client.enqueue(strego.Task("nothing"))
    assert await client.result(empty.id, timeout=10) is None
    assert await client.result(empty.id, type=int | None) is None
    with pytest.raises(pydantic.ValidationError):
        await client.result(empty.id, type=int)


async def test_return_annotation_shapes_the_result(
    client: strego.Client, make_server: ServerFactory
) -> None:
    """The handler's return annotation decides the shape written (and validates it)."""

    async def declared(payload: Any) -> Base:
        return Wider(name="n", secret="s")  # written as a Base: no secret

    async def wrong(payload: Any) -> int:
        return "not a number"  # type: ignore[return-value]

    await make_server({"declared": declared, "wrong": wrong})
    ok = await client.enqueue(strego.Task("declared"))
    assert await client.result(ok.id, timeout=10) == {"name": "n"}
    bad = await client.enqueue(strego.Task("wrong"))
    with pytest.raises(strego.TaskFailedError) as failed:
        await client.result(bad.id, timeout=10)
    assert failed.value.reason == "unserializable_result"


async def test_failed_and_cancelled(client: strego.Client, make_server: ServerFactory) -> None:
    """A dead task raises TaskFailedError with its reason; a cancelled one, Cancelled."""
    started = asyncio.Event()

    async def boom(payload: Any) -> int:
        raise ValueError("no luck")

    async def skip(payload: Any) -> int:
        raise strego.SkipRetry("bad input")

    async def slow(payload: Any) -> int:
        started.set()
        await asyncio.sleep(60)
        return 1

    await make_server({"boom": boom, "skip": skip, "slow": slow})
    dead = await client.enqueue(strego.Task("boom", max_retry=0))
    skipped = await client.enqueue(strego.Task("skip"))
    running = await client.enqueue(strego.Task("slow"))
    scheduled = await client.enqueue(strego.Task("slow", process_in=3600))

    with pytest.raises(strego.TaskFailedError) as failed:
        await client.result(dead.id, timeout=10)
    assert (failed.value.reason, failed.value.error) == ("exhausted", "ValueError: no luck")
    with pytest.raises(strego.TaskFailedError) as failed:
        await client.result(skipped.id, timeout=10)
    assert failed.value.reason == "skip_retry"

    await asyncio.wait_for(started.wait(), 10)
    waiting = asyncio.create_task(client.result(running.id, timeout=10))
    later = asyncio.create_task(client.result(scheduled.id, timeout=10))
    await asyncio.sleep(0)
    assert await client.cancel(running.id)
    assert await client.cancel(scheduled.id)
    for task in (waiting, later):
        with pytest.raises(strego.TaskCancelledError) as cancelled:
            await task
        assert cancelled.value.reason == "cancelled"


async def test_unknown_and_expired_raise_at_once(
    client: strego.Client, make_server: ServerFactory
) -> None:
    """An unknown id and an expired result raise TaskNotFoundError at once, never wait."""

    async def value(payload: Any) -> int:
        return 42

    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(strego.TaskNotFoundError):
        await client.result("no-such-task")  # no timeout: it must not wait
    await make_server({"value": value})
    info = await client.enqueue(strego.Task("value", result_ttl=0.3))
    assert await client.result(info.id, timeout=10) == 42
    key = redis_broker(client).keys("default").result(info.id)
    await wait_until(lambda: _gone(client, key), timeout=5)
    # Its finished record is still in the ring: "completed" must not read as None.
    assert (
        await redis_broker(client).redis.hget(redis_broker(client).keys("default").index, info.id)
    )[:1] == b"c"
    with pytest.raises(strego.TaskNotFoundError):
        await client.result(info.id)
    assert loop.time() - started < 8


async def _gone(client: strego.Client, key: str) -> bool:
    return not await redis_broker(client).redis.exists(key)


async def test_timeout(client: strego.Client, make_server: ServerFactory) -> None:
    """A task that does not finish in time raises ResultTimeoutError (a TimeoutError)."""
    release = asyncio.Event()

    async def slow(payload: Any) -> str:
        await release.wait()
        return "late"

    await make_server({"slow": slow})
    info = await client.enqueue(strego.Task("slow"))
    with pytest.raises(strego.ResultTimeoutError) as timed_out:
        await client.result(info.id, timeout=0.2)
    assert isinstance(timed_out.value, TimeoutError)
    with pytest.raises(strego.ResultTimeoutError):
        await client.result(info.id, timeout=0)  # look once
    release.set()
    assert await client.result(info.id, timeout=10) == "late"
    assert await client.result(info.id, timeout=0) == "late"  # finished: no wait needed


async def test_result_landed_before_the_waiter(
    client: strego.Client, make_server: ServerFactory, inspector: strego.Inspector
) -> None:
    """A waiter that starts after the task finished gets the result at once."""

    async def value(payload: Any) -> dict[str, int]:
        return {"n": 1}

    await make_server({"value": value})
    info = await client.enqueue(strego.Task("value"))
    await wait_until(lambda: state_is(inspector, info.id, "completed"))
    assert await client.result(info.id, timeout=0.5) == {"n": 1}


async def test_result_ttl_zero_and_none_store_no_key(
    client: strego.Client, make_server: ServerFactory
) -> None:
    """result_ttl=0 keeps nothing, a None return stores only the state: no result key."""

    async def value(payload: int | None) -> int | None:
        return payload

    await make_server({"value": value})
    kept = await client.enqueue(strego.Task("value", 5))
    zero = await client.enqueue(strego.Task("value", 5, result_ttl=0))
    none = await client.enqueue(strego.Task("value", None))
    assert await client.result(kept.id, timeout=10) == 5
    assert await client.result(zero.id, timeout=10) is None
    assert await client.result(none.id, timeout=10) is None
    keys = redis_broker(client).keys("default")
    redis = redis_broker(client).redis
    assert await redis.exists(keys.result(kept.id)) == 1
    assert await redis.exists(keys.result(zero.id), keys.result(none.id)) == 0
    ttl_ms = await redis.pttl(keys.result(kept.id))
    assert 3_500_000 < ttl_ms <= 3_600_000  # the server default: one hour


async def test_too_large_dead_letters(client: strego.Client, make_server: ServerFactory) -> None:
    """A result over result_max_bytes dead-letters the task with result_too_large."""

    async def big(payload: Any) -> str:
        return "x" * 2000

    async def odd(payload: Any) -> object:
        return object()

    await make_server({"big": big, "odd": odd}, result_max_bytes=1000)
    info = await client.enqueue(strego.Task("big"))
    with pytest.raises(strego.TaskFailedError) as failed:
        await client.result(info.id, timeout=10)
    assert failed.value.reason == "result_too_large"
    assert "2002 bytes" in (failed.value.error or "")
    info = await client.enqueue(strego.Task("odd"))
    with pytest.raises(strego.TaskFailedError) as failed:
        await client.result(info.id, timeout=10)
    assert failed.value.reason == "unserializable_result"


async def test_explicit_id_run_again_does_not_answer_with_the_old_result(
    client: strego.Client, make_server: ServerFactory
) -> None:
    """An explicit id that runs again (marker expired) never reports its earlier result."""
    answers = iter([1, None])

    async def value(payload: Any) -> int | None:
        return next(answers)

    await make_server({"value": value}, processed_ttl=0.2)
    first = await client.enqueue(strego.Task("value", id="job-1"))
    assert await client.result(first.id, timeout=10) == 1
    keys = redis_broker(client).keys("default")
    await wait_until(lambda: _gone(client, keys.processed("job-1")))
    again = await client.enqueue(strego.Task("value", id="job-1"))
    assert again.state is strego.TaskState.PENDING
    assert await client.result("job-1", timeout=10) is None  # the second run returned None


def test_sync_client(redis_url: str, prefix: str) -> None:
    """SyncClient.result waits in its private loop and raises the same errors."""
    with strego.SyncClient(redis_url, prefix=prefix, group="tests") as sync:
        with pytest.raises(strego.TaskNotFoundError):
            sync.result("nope")
        info = sync.enqueue(strego.Task("never-handled"))
        with pytest.raises(strego.ResultTimeoutError):
            sync.result(info.id, timeout=0.1)
