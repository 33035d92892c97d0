"""Middleware around enqueue and around handler runs: order, exceptions, headers,
enqueue_many still one send, and nothing in the way when none is installed."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

import strego
from strego.errors import ConfigurationError
from strego.middleware import EnqueueNext, ProcessNext
from tests.conftest import wait_until
from tests.integration.conftest import ServerFactory


class Recorder(strego.Middleware):
    """Appends ``name:enter``/``name:exit`` (or ``name:error:<type>``) to ``log``."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log

    async def enqueue(self, task: strego.Task, call_next: EnqueueNext) -> strego.TaskInfo:
        self.log.append(f"{self.name}:enqueue:{task.type}")
        return await call_next(task)

    async def process(self, task: strego.Task, call_next: ProcessNext) -> Any:
        self.log.append(f"{self.name}:enter")
        try:
            result = await call_next(task)
        except BaseException as exc:
            self.log.append(f"{self.name}:error:{type(exc).__name__}")
            raise
        self.log.append(f"{self.name}:exit:{result}")
        return result


async def test_declaration_order_and_results(
    broker: strego.RedisBroker, make_server: ServerFactory, inspector: strego.Inspector
) -> None:
    """The first middleware is outermost on both sides; the handler's return value
    flows back out through them."""
    log: list[str] = []
    done = asyncio.Event()

    async def handler(task: strego.Task) -> str:
        log.append("handler")
        done.set()
        return "value"

    async with strego.Client(broker, middleware=[Recorder("a", log), Recorder("b", log)]) as c:
        await c.enqueue(strego.Task("t"))
    assert log == ["a:enqueue:t", "b:enqueue:t"]
    log.clear()
    await make_server({"t": handler}, middleware=[Recorder("a", log), Recorder("b", log)])
    await asyncio.wait_for(done.wait(), 10)
    await wait_until(lambda: len(log) == 5)
    assert log == ["a:enter", "b:enter", "handler", "b:exit:value", "a:exit:value"]


async def test_exceptions_flow_through_and_can_be_replaced(
    broker: strego.RedisBroker, make_server: ServerFactory, inspector: strego.Inspector
) -> None:
    """A handler's exception reaches every middleware (inner first); a middleware may
    replace it, and the worker decides the outcome from what comes out."""
    log: list[str] = []

    class SkipOnValueError(strego.Middleware):
        async def process(self, task: strego.Task, call_next: ProcessNext) -> Any:
            try:
                return await call_next(task)
            except ValueError as exc:
                raise strego.SkipRetry(f"replaced: {exc}") from exc

    def handler(task: strego.Task) -> None:  # a sync handler: through its thread
        raise ValueError("bad")

    await make_server({"t": handler}, middleware=[Recorder("outer", log), SkipOnValueError()])
    async with strego.Client(broker) as client:
        info = await client.enqueue(strego.Task("t", max_retry=5))
    await wait_until(lambda: _state(inspector, info.id, strego.TaskState.DEAD))
    record = await inspector.get_task(info.id)
    assert record is not None and record.last_error == "replaced: bad"
    assert record.retry_count == 0  # SkipRetry: straight to dead, no retries
    assert log == ["outer:enter", "outer:error:SkipRetry"]


async def test_timeout_raises_through_middleware(
    broker: strego.RedisBroker, make_server: ServerFactory, inspector: strego.Inspector
) -> None:
    """A timed-out attempt is a TaskTimeoutError inside the middleware, async and sync."""
    log: list[str] = []
    release = threading.Event()

    async def slow_async(task: strego.Task) -> None:
        await asyncio.sleep(30)

    def slow_sync(task: strego.Task) -> None:
        release.wait(30)

    await make_server(
        {"a": slow_async, "s": slow_sync}, middleware=[Recorder("m", log)], concurrency=2
    )
    async with strego.Client(broker) as client:
        ids = [(await client.enqueue(strego.Task(t, timeout=0.2, max_retry=0))).id for t in "as"]
    for task_id in ids:
        await wait_until(lambda i=task_id: _state(inspector, i, strego.TaskState.DEAD))
    release.set()
    assert log.count("m:error:TaskTimeoutError") == 2


async def test_headers_travel_in_the_envelope(
    broker: strego.RedisBroker, make_server: ServerFactory, inspector: strego.Inspector
) -> None:
    """A producer middleware's headers reach the worker's middleware and the handler's
    task, survive a retry, and are not labels."""
    seen: list[tuple[dict[str, str], dict[str, str], int]] = []

    class Stamp(strego.Middleware):
        async def enqueue(self, task: strego.Task, call_next: EnqueueNext) -> strego.TaskInfo:
            return await call_next(task.with_headers({"x-origin": "producer"}))

    async def handler(task: strego.Task) -> None:
        seen.append((task.headers, task.labels, task.retry_count))
        if task.retry_count == 0:
            raise RuntimeError("once")

    await make_server({"t": handler})
    async with strego.Client(broker, middleware=[Stamp()]) as client:
        original = strego.Task("t", labels={"k": "v"})
        info = await client.enqueue(original)
    assert original.headers == {}  # with_headers copies
    await wait_until(lambda: _state(inspector, info.id, strego.TaskState.COMPLETED))
    assert seen == [({"x-origin": "producer"}, {"k": "v"}, n) for n in (0, 1)]


async def test_enqueue_many_is_still_one_send(
    broker: strego.RedisBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With middleware, enqueue_many sends every task that reaches the end in one
    broker call; a duplicate raises inside its own chain and lands in its slot."""
    log: list[str] = []
    calls: list[int] = []
    original = broker.enqueue

    async def counting(requests: Any) -> Any:
        calls.append(len(requests))
        return await original(requests)

    monkeypatch.setattr(broker, "enqueue", counting)
    async with strego.Client(broker, middleware=[Recorder("m", log)]) as client:
        tasks = [strego.Task("t", unique_key="u"), strego.Task("t", unique_key="u")]
        tasks += [strego.Task("t") for _ in range(8)]
        results = await client.enqueue_many(tasks)
    assert calls == [10]
    assert isinstance(results[1], strego.DuplicateTaskError)
    assert all(isinstance(r, strego.TaskInfo) for i, r in enumerate(results) if i != 1)
    assert log == ["m:enqueue:t"] * 10


async def test_enqueue_many_a_middleware_may_skip_or_fail_one(broker: strego.RedisBroker) -> None:
    """A chain that never calls call_next does not hold up the others; an error a
    middleware raises surfaces after the rest were sent."""

    class Picky(strego.Middleware):
        async def enqueue(self, task: strego.Task, call_next: EnqueueNext) -> strego.TaskInfo:
            if task.type == "refuse":
                raise PermissionError("refused")
            return await call_next(task)

    async with strego.Client(broker, middleware=[Picky()]) as client:
        with pytest.raises(PermissionError):
            await client.enqueue_many([strego.Task("ok"), strego.Task("refuse")])
        sent = await strego.Inspector(broker).queue_info("default")
    assert sent.pending == 1


def test_bad_middleware_is_refused_at_construction(broker: strego.RedisBroker) -> None:
    class SyncHook:
        def enqueue(self, task: Any, call_next: Any) -> Any: ...

        async def process(self, task: Any, call_next: Any) -> Any: ...

    with pytest.raises(ConfigurationError, match="async def enqueue"):
        strego.Client(broker, middleware=[SyncHook()])  # type: ignore[list-item]
    with pytest.raises(ConfigurationError, match=r"list of strego\.Middleware"):
        strego.Server(broker, middleware=strego.Middleware())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="headers must map str to str"):
        strego.Task("t").with_headers({"k": 1})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="at most 16"):
        strego.Task("t").with_headers({str(i): "v" for i in range(17)})


def test_no_middleware_keeps_the_direct_paths(broker: strego.RedisBroker) -> None:
    """Nothing is composed when no middleware (or none overriding a hook) is given."""
    client = strego.Client(broker)
    assert client._through_hooks is None
    server = strego.Server(broker)
    assert server._make_runner(None)._hooks == ()  # type: ignore[arg-type]
    process_only = strego.Client(broker, middleware=[_ProcessOnly()])
    assert process_only._through_hooks is None  # an enqueue it does not override: skipped


class _ProcessOnly(strego.Middleware):
    async def process(self, task: strego.Task, call_next: ProcessNext) -> Any:
        return await call_next(task)


async def _state(inspector: strego.Inspector, task_id: str, state: strego.TaskState) -> bool:
    record = await inspector.get_task(task_id)
    return record is not None and record.state == state


async def test_the_documented_logging_middleware(
    broker: strego.RedisBroker, make_server: ServerFactory, inspector: strego.Inspector
) -> None:
    """docs/observability.md's per-task structured logging: a sync handler's lines (in
    its thread) carry the task's fields; each attempt ends with one line."""
    import contextvars
    import logging
    import time

    current_task: contextvars.ContextVar[dict[str, object] | None] = contextvars.ContextVar(
        "current_task", default=None
    )
    log = logging.getLogger("myapp.tasks")

    class TaskContextFilter(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            record.__dict__.update(current_task.get() or {})
            return True

    class TaskLogging(strego.Middleware):
        async def process(self, task: strego.Task, call_next: ProcessNext) -> Any:
            fields = {
                "task_id": task.id,
                "task_type": task.type,
                "queue": task.queue,
                "attempt": task.retry_count + 1,
            }
            token = current_task.set(fields)
            started = time.perf_counter()
            try:
                result = await call_next(task)
            except Exception:
                took = round((time.perf_counter() - started) * 1000, 1)
                log.warning("task attempt failed", exc_info=True, extra={"duration_ms": took})
                raise
            else:
                took = round((time.perf_counter() - started) * 1000, 1)
                log.info("task done", extra={"duration_ms": took})
                return result
            finally:
                current_task.reset(token)

    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign,assignment]
    handler.addFilter(TaskContextFilter())
    log.addHandler(handler)
    log.setLevel(logging.INFO)

    def work(task: strego.Task) -> None:
        log.info("working")
        if task.retry_count == 0:
            raise RuntimeError("first attempt fails")

    try:
        await make_server({"t": work}, middleware=[TaskLogging()])
        async with strego.Client(broker) as client:
            info = await client.enqueue(strego.Task("t"))
        await wait_until(lambda: _state(inspector, info.id, strego.TaskState.COMPLETED))
        await wait_until(lambda: len(records) == 4)
    finally:
        log.removeHandler(handler)
    lines = [
        (r.getMessage(), r.__dict__.get("task_id"), r.__dict__.get("attempt")) for r in records
    ]
    assert lines == [
        ("working", info.id, 1),
        ("task attempt failed", info.id, 1),
        ("working", info.id, 2),
        ("task done", info.id, 2),
    ]
    assert all(isinstance(r.__dict__["duration_ms"], float) for r in records[1::2])


async def test_sync_client_and_reconfigure_take_middleware(
    redis_url: str, prefix: str, broker: strego.RedisBroker
) -> None:
    log: list[str] = []
    with strego.SyncClient(redis_url, prefix=prefix, middleware=[Recorder("s", log)]) as sync:
        await asyncio.to_thread(sync.enqueue, strego.Task("t"))
    assert log == ["s:enqueue:t"]
    server = strego.Server(broker)
    with pytest.raises(ConfigurationError, match="async def"):
        server.reconfigure(middleware=[object()])
    server.reconfigure(middleware=[Recorder("r", log)])
    assert len(server._make_runner(None)._hooks) == 1  # type: ignore[arg-type]
