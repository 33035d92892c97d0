"""Running one task: decode, call the handler, turn what happened into an Outcome.

Nothing here talks to Redis. Exceptions from handlers never escape: every way a
handler can end maps to one explicit outcome value.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import functools
import logging
import os
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor
from datetime import UTC, datetime, timedelta
from typing import Any

from strego.broker.base import Delivery
from strego.envelope import MalformedTaskError, TaskMessage, decode
from strego.errors import RetryAfter, SkipRetry, TaskTimeoutError
from strego.handlers import DecodeError, Handler, HandlerRegistry
from strego.middleware import Hook, compose
from strego.outcome import (
    Cancelled,
    Dead,
    DeadReason,
    Outcome,
    Retry,
    Succeeded,
    unreadable_entry,
)
from strego.results import ResultEncodeError, decode_result, encode_result
from strego.retry import RetryPolicy
from strego.serializers import JSON, SerializerRegistry
from strego.task import Task
from strego.worker.leases import Lease
from strego.worker.workflows import UpstreamLoader

__all__ = ["Attempt", "ResultLimits", "Runner"]

log = logging.getLogger("strego")


@dataclasses.dataclass(slots=True)
class Attempt:
    """The result of running one delivery.

    ``holdover`` is set when a sync handler timed out: its outcome is recorded now,
    but its thread cannot be killed, so the slot stays taken until it returns.
    """

    outcome: Outcome
    message: TaskMessage | None
    holdover: Awaitable[Any] | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ResultLimits:
    """How results are kept: the default ``result_ttl`` and the size cap."""

    ttl_s: float = 3600.0
    max_bytes: int = 1_048_576


class Runner:
    def __init__(
        self,
        handlers: HandlerRegistry,
        serializers: SerializerRegistry,
        retry_policy: RetryPolicy,
        max_deliveries: int,
        executor: Executor,
        unknown_type_grace_s: float,
        hooks: Sequence[Hook[Any]] = (),
        results: ResultLimits | None = None,
        upstream: UpstreamLoader | None = None,
    ) -> None:
        self._handlers = handlers
        self._serializers = serializers
        self._retry_policy = retry_policy
        self._max_deliveries = max_deliveries
        self._executor = executor
        self._unknown_type_grace_s = unknown_type_grace_s
        self._hooks = tuple(hooks)  # Middleware.process hooks; none: the direct path
        self._results = results or ResultLimits()
        self._upstream = upstream  # a workflow member's dependencies' results

    def prepare(self, delivery: Delivery) -> tuple[TaskMessage, Handler, Any] | Attempt:
        """Decode the entry and find its handler, or say why it must be dead-lettered."""
        blob = delivery.blob
        try:
            if blob is None:
                raise MalformedTaskError("stream entry has no 'd' field")
            message = decode(blob)
        except MalformedTaskError as exc:
            dead = unreadable_entry(
                delivery.queue,
                delivery.band,
                delivery.entry_id,
                delivery.fields,
                DeadReason.MALFORMED,
                str(exc),
            )
            return Attempt(dead, None)
        if delivery.deliveries > self._max_deliveries:
            error = f"delivered {delivery.deliveries} times without an outcome (max_deliveries)"
            return Attempt(_dead(message, DeadReason.POISON, error), message)
        handler = self._handlers.get(message.type)
        if handler is None:
            return Attempt(self._unknown_type(message), message)
        try:
            payload = handler.decode(message, self._serializers)
        except DecodeError as exc:
            return Attempt(_dead(message, DeadReason(exc.reason), exc.detail), message)
        return message, handler, payload

    def _unknown_type(self, message: TaskMessage) -> Outcome:
        """No handler here for this type. A rolling deploy (producers ahead of some
        workers) or two apps sharing a queue must not kill each other's tasks: wait
        for a worker that knows it, with backoff, for ``unknown_type_grace`` since the
        task was created (not counted as attempts), then dead-letter it."""
        age_s = max(0.0, time.time() - message.created_ms / 1000)
        if age_s >= self._unknown_type_grace_s:
            error = (
                f"no worker had a handler for task type {message.type!r} within "
                f"{self._unknown_type_grace_s:g}s (unknown_type_grace)"
            )
            return _dead(message, DeadReason.UNKNOWN_TYPE, error)
        error = (
            f"no handler for task type {message.type!r} on this worker: waiting for a "
            f"worker that has one (dead letter after {self._unknown_type_grace_s:g}s)"
        )
        delay = min(60.0, max(1.0, age_s / 4), self._unknown_type_grace_s - age_s)
        return Retry(message.evolve(last_error=error), delay, 0.0, counted=False)

    async def execute(
        self, message: TaskMessage, handler: Handler, payload: Any, lease: Lease
    ) -> Attempt:
        """Run the handler of a prepared task and decide its outcome.

        Every way a handler can end is an outcome, BaseExceptions included: a handler
        raising CancelledError, GeneratorExit, KeyboardInterrupt or SystemExit fails its
        task (they left it active forever, or killed the worker). Only a cancellation of
        this worker's own making propagates: shutdown, or a superseded delivery.
        """
        started = time.monotonic()
        deadline = None
        if message.timeout_s is not None:
            deadline = datetime.now(UTC) + timedelta(seconds=message.timeout_s)
        task = Task.received(message, payload, deadline)
        held: list[Awaitable[Any]] = []  # a timed-out sync handler's thread (middleware)
        try:
            if message.upstream_count and self._upstream is not None:
                # Read before the handler starts; a failure to read is a failed attempt.
                upstream = await self._upstream(message)
                task = Task.received(message, payload, deadline, self._decode_all(upstream))
            if self._hooks:
                terminal = self._terminal(handler, message.timeout_s, held)
                value = await compose(self._hooks, terminal)(task)
            elif handler.is_async:
                value = await self._run_async(handler, payload, task, message.timeout_s)
            else:
                value = await self._run_sync(handler, payload, task, message.timeout_s)
                if isinstance(value, _Holdover):
                    failure = self._failure(message, handler, task, value.error, started)
                    return Attempt(failure, message, value.thread)
        except asyncio.CancelledError as exc:
            current = asyncio.current_task()
            if current is None or not current.cancelling():
                # Raised by the handler itself, not a cancellation of this task.
                return Attempt(self._failure(message, handler, task, exc, started), message)
            if not lease.cancel_requested or lease.superseded:
                raise  # shutdown or a superseded delivery: the engine decides
            current.uncancel()
            return Attempt(Cancelled(message.id, message.explicit_id, _since(started)), message)
        except SkipRetry as exc:
            dead = _dead(
                message, DeadReason.SKIP_RETRY, exc.reason, exc, duration_s=_since(started)
            )
            return Attempt(dead, message)
        except BaseException as exc:  # every way a handler can end: see the docstring
            failure = self._failure(message, handler, task, exc, started)
            return Attempt(failure, message, held[0] if held else None)
        return Attempt(self._succeeded(message, handler, value, started), message)

    def _decode_all(self, stored: list[bytes | None]) -> list[Any]:
        return [None if s is None else decode_result(s, self._serializers) for s in stored]

    def _succeeded(
        self, message: TaskMessage, handler: Handler, value: Any, started: float
    ) -> Succeeded | Dead:
        """The outcome of a handler that returned ``value``: its result encoded for the
        ack script, or a dead letter when it cannot be kept (too large, unencodable)."""
        ttl_s = message.result_ttl_s if message.result_ttl_s is not None else self._results.ttl_s
        if value is None or ttl_s <= 0:  # nothing to keep: the ack costs what it did
            return Succeeded(message.id, message.explicit_id, _since(started))
        serializer = self._serializers.get(message.serializer) or JSON
        try:
            stored = encode_result(
                value, serializer, handler.result_adapter, self._results.max_bytes
            )
        except ResultEncodeError as exc:
            reason = DeadReason(exc.reason)
            return _dead(message, reason, exc.detail, exc.__cause__, duration_s=_since(started))
        return Succeeded(message.id, message.explicit_id, _since(started), stored, ttl_s)

    def _terminal(
        self, handler: Handler, timeout_s: float | None, held: list[Awaitable[Any]]
    ) -> Callable[[Task], Awaitable[Any]]:
        """The end of the middleware chain: the handler, given the task the last
        middleware passed on; its timeout raises through the middleware."""

        async def run(task: Task) -> Any:
            if handler.is_async:
                return await self._run_async(handler, task.payload, task, timeout_s)
            # Middleware set context (the current span): the handler's thread sees it.
            context = contextvars.copy_context()
            value = await self._run_sync(handler, task.payload, task, timeout_s, context)
            if isinstance(value, _Holdover):
                held.append(value.thread)
                raise value.error
            return value

        return run

    async def _run_async(
        self, handler: Handler, payload: Any, task: Task, timeout_s: float | None
    ) -> Any:
        call = handler.call(payload, task)
        if timeout_s is None:
            return await call
        try:
            async with asyncio.timeout(timeout_s) as scope:
                return await call
        except TimeoutError as exc:
            if scope.expired():
                raise TaskTimeoutError(task.id, timeout_s) from exc
            raise

    async def _run_sync(
        self,
        handler: Handler,
        payload: Any,
        task: Task,
        timeout_s: float | None,
        context: contextvars.Context | None = None,
    ) -> Any:
        """The handler's return value, or a :class:`_Holdover` when it timed out."""
        loop = asyncio.get_running_loop()
        call = functools.partial(handler.call, payload, task)
        if context is not None:
            call = functools.partial(context.run, call)
        future = loop.run_in_executor(self._executor, call)
        if timeout_s is None:
            return await future
        done, _ = await asyncio.wait({future}, timeout=timeout_s)
        if done:
            return future.result()
        # A thread cannot be interrupted: record the timeout now, keep the slot until
        # the thread returns (the caller awaits the holdover before freeing it).
        return _Holdover(TaskTimeoutError(task.id, timeout_s), future)

    def _failure(
        self,
        message: TaskMessage,
        handler: Handler,
        task: Task,
        exc: BaseException,
        started: float,
    ) -> Outcome:
        error = _describe(exc)
        tb = format_traceback(exc)
        if message.retry_count >= message.max_retry:
            return _dead(message, DeadReason.EXHAUSTED, error, exc, duration_s=_since(started))
        retry_number = message.retry_count + 1
        if isinstance(exc, RetryAfter):
            delay = exc.delay_s
        elif handler.retry_policy is not None:
            delay = max(0.0, float(handler.retry_policy(task, retry_number, exc)))
        else:
            delay = self._retry_policy.delay(retry_number)
        retried = message.evolve(retry_count=retry_number, last_error=error, traceback=tb)
        return Retry(retried, delay, _since(started))


@dataclasses.dataclass(frozen=True, slots=True)
class _Holdover:
    """A sync handler that timed out: its error now, its thread still to be awaited."""

    error: TaskTimeoutError
    thread: Awaitable[Any]


_WORKER_DIR = os.path.dirname(os.path.abspath(__file__))


def format_traceback(exc: BaseException) -> str:
    """The traceback from the handler down: strego's own calling frames are noise."""
    tb = exc.__traceback__
    while (
        tb is not None
        and tb.tb_next is not None
        and (tb.tb_frame.f_code.co_filename.startswith(_WORKER_DIR))
    ):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _dead(
    message: TaskMessage,
    reason: DeadReason,
    error: str,
    exc: BaseException | None = None,
    *,
    duration_s: float = 0.0,
) -> Dead:
    tb = format_traceback(exc) if exc is not None else message.traceback
    dead = message.evolve(
        last_error=error,
        traceback=tb,
        dead_reason=reason.value,
        failed_ms=int(time.time() * 1000),
    )
    return Dead(dead, reason, duration_s)


def _since(started: float) -> float:
    return time.monotonic() - started
