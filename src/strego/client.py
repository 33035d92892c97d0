"""Client and SyncClient: enqueue, enqueue_many, cancel, result.

Neither closes a broker it was given: the broker's owner calls ``broker.aclose()``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar, overload

import pydantic
from redis.asyncio import Redis, RedisCluster

from strego.broker.base import EnqueueRequest, EnqueueResult, ProducerBroker
from strego.broker.redis import RedisBroker
from strego.durations import Duration, optional_seconds, to_seconds
from strego.errors import (
    BrokerUnavailableError,
    ConfigurationError,
    DuplicateTaskError,
    TaskCancelledError,
    TaskFailedError,
)
from strego.events import TaskEvent
from strego.middleware import Middleware, check_middleware, compose, enqueue_hooks, run_batch
from strego.results import Finished, decode_result
from strego.serializers import Serializer, SerializerRegistry
from strego.store.base import NullHistory, TaskHistory
from strego.task import Task, TaskInfo, TaskState
from strego.workflows import WorkflowInfo
from strego.workflows.canvas import Flow
from strego.workflows.producer import (
    WORKFLOW_ID_PREFIX,
    WorkflowProducer,
    enqueue_flow,
    workflow_result,
)

__all__ = ["Client", "SyncClient"]

T = TypeVar("T")


class Client:
    """Enqueues tasks and awaits their results. An async context manager; cheap to create.

    ``broker``: any :class:`~strego.broker.base.ProducerBroker` (a ``RedisBroker``).
    ``serializers``: custom serializers (beyond JSON, raw and msgpack) that results may
    be encoded with, so :meth:`result` can decode them.
    """

    def __init__(
        self,
        broker: ProducerBroker,
        *,
        store: TaskHistory | None = None,
        wait_replicas: int = 0,
        wait_timeout: Duration = 5.0,
        middleware: Iterable[Middleware] = (),
        serializers: Iterable[Serializer] = (),
    ) -> None:
        if (
            isinstance(wait_replicas, bool)
            or not isinstance(wait_replicas, int)
            or wait_replicas < 0
        ):
            raise ConfigurationError(
                f"wait_replicas must be an integer >= 0, got {wait_replicas!r}"
            )
        self.broker = broker
        self.serializers = SerializerRegistry(serializers)
        self.history: TaskHistory = store if store is not None else NullHistory()
        self._wait_replicas = wait_replicas
        self._wait_timeout_s = to_seconds(wait_timeout, "wait_timeout", allow_zero=False)
        self._history_started = store is None
        # Building a creation event costs a few microseconds per task: only do it when
        # a store will record it (the single-enqueue path is measured in benchmarks/).
        self._records_history = store is not None
        self.middleware = check_middleware(middleware)
        self._hooks = enqueue_hooks(self.middleware)
        # Built once; None keeps enqueue on its direct path (no middleware, no cost).
        self._through_hooks = compose(self._hooks, self._enqueue_one) if self._hooks else None

    @overload
    async def enqueue(self, task: Task) -> TaskInfo: ...
    @overload
    async def enqueue(self, task: Flow) -> WorkflowInfo: ...

    async def enqueue(self, task: Task | Flow) -> TaskInfo | WorkflowInfo:
        """Enqueue one task, or a workflow (``strego.chain/group/chord``): then a
        :class:`WorkflowInfo`. Raises DuplicateTaskError if its unique key is held."""
        if isinstance(task, Flow):
            return await self._enqueue_flow(task)
        if self._through_hooks is not None:
            _check_tasks([task])
            return await self._through_hooks(task)
        (result,) = await self._enqueue([task])  # the direct path, as _enqueue_one
        if isinstance(result, DuplicateTaskError):
            raise result
        return result

    async def _enqueue_one(self, task: Task) -> TaskInfo:
        (result,) = await self._enqueue([task])
        if isinstance(result, DuplicateTaskError):
            raise result
        return result

    async def enqueue_many(
        self, tasks: Sequence[Task | Flow]
    ) -> list[TaskInfo | WorkflowInfo | DuplicateTaskError]:
        """Enqueue many tasks, pipelined; a held unique key gives an error in its slot.
        Flows among them are enqueued one by one, each returning a WorkflowInfo.

        With middleware, each task goes through it and those that reach the end are
        still sent in one pipelined call; an error a middleware raises for one task
        (other than a duplicate) is raised after the others were sent.
        """
        flows = {i: t for i, t in enumerate(tasks) if isinstance(t, Flow)}
        plain = [t for t in tasks if not isinstance(t, Flow)]
        done = await self._enqueue_tasks(plain)
        out: list[TaskInfo | WorkflowInfo | DuplicateTaskError] = list(done)
        for i, flow in flows.items():
            out.insert(i, await self._enqueue_flow(flow))
        return out

    async def _enqueue_flow(self, flow: Flow) -> WorkflowInfo:
        info = await enqueue_flow(self._workflows(), flow)
        await self._ensure_history()
        if self._records_history:  # every member, created now (most of them held)
            for task in flow.tasks():
                result = EnqueueResult(task.id, task.queue, TaskState.PENDING)
                self.history.record(_created(task, result, info.id))
        return info

    def _workflows(self) -> WorkflowProducer:
        if not isinstance(self.broker, RedisBroker):
            raise ConfigurationError("workflows need a RedisBroker")
        return self.broker

    async def _enqueue_tasks(self, tasks: Sequence[Task]) -> list[TaskInfo | DuplicateTaskError]:
        if not self._hooks:
            return await self._enqueue(list(tasks))
        _check_tasks(tasks)
        results = await run_batch(list(tasks), self._hooks, self._enqueue_batch)
        out: list[TaskInfo | DuplicateTaskError] = []
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, DuplicateTaskError):
                raise result
            out.append(result)
        return out

    async def _enqueue_batch(self, tasks: list[Task]) -> list[TaskInfo | BaseException]:
        return list(await self._enqueue(tasks))

    async def _enqueue(self, tasks: list[Task]) -> list[TaskInfo | DuplicateTaskError]:
        _check_tasks(tasks)
        requests = [
            EnqueueRequest(t.to_message(), t.delay_s, t.process_at, t.unique_ttl) for t in tasks
        ]
        results = await self.broker.enqueue(requests)
        await self._replicate()
        await self._ensure_history()
        out: list[TaskInfo | DuplicateTaskError] = []
        for task, result in zip(tasks, results, strict=True):
            if result.state is None:
                out.append(
                    DuplicateTaskError(
                        result.duplicate_of or "",
                        queue=task.queue,
                        unique_key=task.unique_key or "",
                    )
                )
                continue
            out.append(TaskInfo(result.task_id, result.queue, result.state, result.process_at))
            if self._records_history and result.created:
                self.history.record(_created(task, result))
        return out

    async def _replicate(self) -> None:
        if self._wait_replicas:
            acked = await self.broker.wait_replicas(self._wait_replicas, self._wait_timeout_s)
            if acked < self._wait_replicas:
                raise BrokerUnavailableError(
                    f"WAIT for {self._wait_replicas} replicas (only {acked} acknowledged)", 1
                )

    async def _ensure_history(self) -> None:
        if not self._history_started:
            self._history_started = True
            await self.history.start()

    async def cancel(self, task_id: str, queue: str | None = None) -> bool:
        """Cancel a pending, scheduled, retrying or running task. False if unknown/finished."""
        return await self.broker.cancel(task_id, queue)

    async def result(
        self, task_id: str, *, timeout: Duration | None = None, type: Any = None
    ) -> Any:
        """The task's result, waiting for it to finish (pushed by Redis, not polled).

        Returns the handler's return value (None if it returned None), validated as
        ``type`` when given (a pydantic model, dataclass, ``list[int]``...). Raises
        :class:`TaskFailedError` (dead-lettered), :class:`TaskCancelledError`,
        :class:`TaskNotFoundError` at once for an unknown id or an expired result, and
        :class:`ResultTimeoutError` when it has not finished within ``timeout``
        seconds (None: wait as long as it takes).
        """
        if not isinstance(task_id, str) or not task_id:
            raise ConfigurationError(f"task_id must be a non-empty string, got {task_id!r}")
        timeout_s = optional_seconds(timeout, "timeout")
        # A workflow's result (SPEC 9); an explicit task id with this prefix still
        # works: no workflow by that id falls through to the task.
        if task_id.startswith(WORKFLOW_ID_PREFIX) and isinstance(self.broker, RedisBroker):
            meta = await self.broker.find_workflow(task_id)
            if meta is not None:
                return await workflow_result(
                    self.broker, task_id, meta, self._one_result, timeout_s, type
                )
        finished = await self.broker.wait_result(task_id, timeout_s)
        return self._value(finished, type)

    async def _one_result(self, task_id: str, timeout_s: float | None) -> Any:
        return self._value(await self.broker.wait_result(task_id, timeout_s), None)

    def _value(self, finished: Finished, type_: Any) -> Any:
        if finished.state is TaskState.DEAD:
            raise TaskFailedError(finished.task_id, finished.reason or "unknown", finished.error)
        if finished.state is TaskState.CANCELLED:
            raise TaskCancelledError(finished.task_id, finished.reason or "cancelled")
        if finished.stored is None:
            return None if type_ is None else _validate_none(type_)
        return decode_result(finished.stored, self.serializers, type_)

    async def aclose(self) -> None:
        """Flush and close the history store, if this client started it."""
        if self._history_started and not isinstance(self.history, NullHistory):
            await self.history.aclose()

    async def __aenter__(self) -> Client:
        await self._ensure_history()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def _check_tasks(tasks: Sequence[object]) -> None:
    for task in tasks:
        if not isinstance(task, Task):
            raise TypeError(f"enqueue takes strego.Task objects, got {type(task).__name__}")


def _validate_none(type_: Any) -> Any:
    """A None result checked against ``type`` like any other (``int`` refuses it)."""
    return pydantic.TypeAdapter(type_).validate_python(None)


def _created(task: Task, result: EnqueueResult, workflow_id: str | None = None) -> TaskEvent:
    return TaskEvent(
        task_id=task.id,
        queue=task.queue,
        type=task.type,
        state=result.state or TaskState.PENDING,
        at=datetime.now(UTC),
        max_retry=task.max_retry,
        priority=task.priority,
        labels=task.labels,
        payload=task.payload_bytes,
        serializer=task.serializer.name,
        created_at=task.created_at,
        process_at=result.process_at,
        workflow_id=workflow_id,
    )


class SyncClient:
    """The Client for synchronous code (Django, Flask, scripts).

    Runs a private event loop in a daemon thread, so it works from any thread and
    inside frameworks that already run their own loop. Construction is pure: the
    thread starts on the first call (or ``with``), and ``close()`` stops it.
    """

    def __init__(
        self,
        url_or_client: str | Redis | RedisCluster,
        *,
        store: TaskHistory | None = None,
        wait_replicas: int = 0,
        middleware: Iterable[Middleware] = (),
        serializers: Iterable[Serializer] = (),
        **broker_options: Any,
    ) -> None:
        self._broker = RedisBroker(url_or_client, **broker_options)
        self._client = Client(
            self._broker,
            store=store,
            wait_replicas=wait_replicas,
            middleware=middleware,
            serializers=serializers,
        )
        self._lock = threading.Lock()  # callers may share one SyncClient across threads
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    @property
    def broker(self) -> RedisBroker:
        return self._broker

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        """The private loop, started on first use."""
        with self._lock:
            if self._closed:
                raise RuntimeError("SyncClient is closed")
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, daemon=True, name="strego-sync-client"
                )
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        try:
            loop = self._running_loop()
        except RuntimeError:
            coro.close()
            raise
        return asyncio.run_coroutine_threadsafe(coro, loop).result()

    @overload
    def enqueue(self, task: Task) -> TaskInfo: ...
    @overload
    def enqueue(self, task: Flow) -> WorkflowInfo: ...

    def enqueue(self, task: Task | Flow) -> TaskInfo | WorkflowInfo:
        if isinstance(task, Flow):
            return self._call(self._client.enqueue(task))
        return self._call(self._client.enqueue(task))

    def enqueue_many(
        self, tasks: Sequence[Task | Flow]
    ) -> list[TaskInfo | WorkflowInfo | DuplicateTaskError]:
        return self._call(self._client.enqueue_many(tasks))

    def cancel(self, task_id: str, queue: str | None = None) -> bool:
        return self._call(self._client.cancel(task_id, queue))

    def result(self, task_id: str, *, timeout: Duration | None = None, type: Any = None) -> Any:
        """:meth:`Client.result`, blocking the calling thread (not the private loop)."""
        return self._call(self._client.result(task_id, timeout=timeout, type=type))

    @property
    def started(self) -> bool:
        """Whether the private loop's thread is running (after a first call or ``with``)."""
        return self._loop is not None and not self._closed

    def close(self) -> None:
        """Close the client's connections and stop its thread; idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return  # never started: no connection was opened
        asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.close()

    async def _shutdown(self) -> None:
        await self._client.aclose()
        await self._broker.aclose()

    def __enter__(self) -> SyncClient:
        self._running_loop()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
