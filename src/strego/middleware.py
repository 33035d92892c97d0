"""Middleware: code that runs around every enqueue and around every handler run.

``Client(middleware=[a, b])`` runs ``a.enqueue(task, call_next)``, whose ``call_next``
runs ``b.enqueue``, whose ``call_next`` enqueues; ``Server(middleware=[a, b])`` does the
same with ``process`` around each handler run (each attempt). Declaration order is
outermost first. Exceptions flow through: a handler's error reaches ``b`` then ``a``
(each may catch, report, re-raise or replace it) before the worker decides the outcome.

With no middleware installed nothing here runs: the client and the worker keep their
direct paths (measured in ``benchmarks/observability.py``). Only hooks a middleware
overrides are chained, so a tracing-only or enqueue-only middleware costs nothing on
the other path.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

from strego.errors import ConfigurationError
from strego.task import Task, TaskInfo

__all__ = [
    "EnqueueNext",
    "Hook",
    "Middleware",
    "ProcessNext",
    "check_middleware",
    "compose",
    "enqueue_hooks",
    "process_hooks",
    "run_batch",
]

EnqueueNext = Callable[[Task], Awaitable[TaskInfo]]
ProcessNext = Callable[[Task], Awaitable[Any]]
T = TypeVar("T")
Hook = Callable[[Task, Callable[[Task], Awaitable[T]]], Awaitable[T]]


class Middleware:
    """Subclass and override either hook; the defaults pass the task on unchanged.

    ``enqueue`` runs in the producer around each task sent (``enqueue`` and every task
    of ``enqueue_many``) and returns the :class:`TaskInfo`. ``process`` runs in the
    worker around each attempt's handler call and returns what the handler returned.
    Pass ``call_next`` a different task to change what is sent or run (for example
    ``task.with_headers({...})`` to carry context to the worker).
    """

    async def enqueue(self, task: Task, call_next: EnqueueNext) -> TaskInfo:
        return await call_next(task)

    async def process(self, task: Task, call_next: ProcessNext) -> Any:
        return await call_next(task)


def check_middleware(middleware: Iterable[Middleware]) -> tuple[Middleware, ...]:
    """Validate ``middleware=`` at construction: a list of objects with async hooks."""
    if isinstance(middleware, Middleware) or not isinstance(middleware, Iterable):
        raise ConfigurationError(
            f"middleware must be a list of strego.Middleware, got {type(middleware).__name__}"
        )
    found = tuple(middleware)
    for item in found:
        for hook in ("enqueue", "process"):
            method = getattr(item, hook, None)
            if not inspect.iscoroutinefunction(method):
                raise ConfigurationError(
                    f"middleware {item!r} needs an async def {hook}(self, task, call_next) "
                    "(subclass strego.Middleware to inherit the pass-through default)"
                )
    return found


def _overrides(item: Middleware, hook: str) -> bool:
    default = getattr(Middleware, hook)
    return getattr(type(item), hook, None) is not default


def enqueue_hooks(middleware: Sequence[Middleware]) -> tuple[Hook[TaskInfo], ...]:
    """The ``enqueue`` hooks that do something, outermost first."""
    return tuple(m.enqueue for m in middleware if _overrides(m, "enqueue"))


def process_hooks(middleware: Sequence[Middleware]) -> tuple[Hook[Any], ...]:
    """The ``process`` hooks that do something, outermost first."""
    return tuple(m.process for m in middleware if _overrides(m, "process"))


def compose(
    hooks: Sequence[Hook[T]], terminal: Callable[[Task], Awaitable[T]]
) -> Callable[[Task], Awaitable[T]]:
    """One callable that runs ``hooks[0]``, whose ``call_next`` runs ``hooks[1]``...,
    the last one's runs ``terminal``."""
    call = terminal
    for hook in reversed(hooks):
        call = _link(hook, call)
    return call


def _link(
    hook: Hook[T], call_next: Callable[[Task], Awaitable[T]]
) -> Callable[[Task], Awaitable[T]]:
    async def call(task: Task) -> T:
        return await hook(task, call_next)

    return call


async def run_batch(
    tasks: Sequence[Task],
    hooks: Sequence[Hook[TaskInfo]],
    send: Callable[[list[Task]], Awaitable[list[TaskInfo | BaseException]]],
) -> list[TaskInfo | BaseException]:
    """Each task through the enqueue hooks, the ones that reach the end sent together.

    ``enqueue_many`` stays one pipelined send with middleware installed: every task's
    chain runs concurrently, and once each has either reached the end or finished
    without it (a middleware that skipped or raised), the tasks that arrived are sent
    in one call and each chain resumes with its own result. A result that is an
    exception (a duplicate) is raised inside that task's chain, as for ``enqueue``.
    """
    batch = _Batch(len(tasks), send)

    async def one(index: int, task: Task) -> TaskInfo:
        async def terminal(sent: Task) -> TaskInfo:
            return await batch.arrive(index, sent)

        try:
            return await compose(hooks, terminal)(task)
        finally:
            batch.leave(index)

    outcomes = await asyncio.gather(
        *(one(i, t) for i, t in enumerate(tasks)), return_exceptions=True
    )
    return list(outcomes)


class _Batch:
    """Collects the tasks whose chains reached the send, sends them once."""

    def __init__(
        self,
        size: int,
        send: Callable[[list[Task]], Awaitable[list[TaskInfo | BaseException]]],
    ) -> None:
        self._size = size
        self._send = send
        self._arrived: dict[int, Task] = {}
        self._left: set[int] = set()
        self._results: dict[int, asyncio.Future[TaskInfo]] = {}
        self._sending: asyncio.Task[None] | None = None

    async def arrive(self, index: int, task: Task) -> TaskInfo:
        if index in self._arrived:
            raise RuntimeError("a middleware called call_next twice for one task")
        self._arrived[index] = task
        self._results[index] = asyncio.get_running_loop().create_future()
        self._maybe_send()
        return await self._results[index]

    def leave(self, index: int) -> None:
        self._left.add(index)
        self._maybe_send()

    def _maybe_send(self) -> None:
        done = len(self._arrived.keys() | self._left)
        if self._sending is None and done == self._size and self._arrived:
            self._sending = asyncio.create_task(self._flush())

    async def _flush(self) -> None:
        order = sorted(self._arrived)
        try:
            results = await self._send([self._arrived[i] for i in order])
        except BaseException as exc:  # the send failed: every waiting chain sees it
            for index in order:
                self._results[index].set_exception(exc)
            return
        for index, result in zip(order, results, strict=True):
            if isinstance(result, BaseException):
                self._results[index].set_exception(result)
            else:
                self._results[index].set_result(result)
