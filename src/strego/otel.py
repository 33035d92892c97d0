"""OpenTelemetry tracing (the ``[otel]`` extra: ``opentelemetry-api`` only).

``TracingMiddleware()`` goes in both ``Client(middleware=[...])`` and
``Server(middleware=[...])``. Enqueue opens a PRODUCER span ``send <queue>`` and
writes the W3C trace context into the task's envelope headers (never its labels);
each attempt in a worker opens a CONSUMER span ``process <queue>`` whose parent is
that producer span, so producer and every attempt (retries included, each its own
span with ``strego.task.retry_count``) form one trace. A failed attempt records its
exception and has status ERROR.

Spans go wherever your ``TracerProvider`` sends them (the SDK and an exporter are
yours to install; without them the API is a no-op). ``TraceContextFilter`` puts
``trace_id``/``span_id`` on log records emitted inside a handler; ``strego worker``
installs it on its log handler.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from strego.middleware import EnqueueNext, Middleware, ProcessNext
from strego.task import Task, TaskInfo

__all__ = ["TraceContextFilter", "TracingMiddleware"]

_SYSTEM = "strego"


class TracingMiddleware(Middleware):
    """Producer and consumer spans in one trace (see the module docstring).

    ``tracer_provider``: default the global one; ``propagator``: default the global
    one (W3C trace context and baggage unless ``OTEL_PROPAGATORS`` says otherwise).
    """

    def __init__(
        self,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        propagator: TextMapPropagator | None = None,
    ) -> None:
        from strego import __version__

        self._tracer = trace.get_tracer("strego", __version__, tracer_provider=tracer_provider)
        self._propagator = propagator

    async def enqueue(self, task: Task, call_next: EnqueueNext) -> TaskInfo:
        with self._tracer.start_as_current_span(
            f"send {task.queue}",
            kind=SpanKind.PRODUCER,
            attributes=_attributes(task, "send"),
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            carrier: dict[str, str] = {}
            self._inject(carrier)
            try:
                return await call_next(task.with_headers(carrier) if carrier else task)
            except BaseException as exc:
                _failed(span, exc)
                raise

    async def process(self, task: Task, call_next: ProcessNext) -> Any:
        with self._tracer.start_as_current_span(
            f"process {task.queue}",
            context=self._extract(task.headers),
            kind=SpanKind.CONSUMER,
            attributes=_attributes(task, "process"),
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                return await call_next(task)
            except BaseException as exc:
                _failed(span, exc)
                raise

    def _inject(self, carrier: dict[str, str]) -> None:
        if self._propagator is not None:
            self._propagator.inject(carrier)
        else:
            propagate.inject(carrier)

    def _extract(self, headers: Mapping[str, str]) -> Any:
        if self._propagator is not None:
            return self._propagator.extract(headers)
        return propagate.extract(headers)


def _attributes(task: Task, operation: str) -> dict[str, str | int]:
    """SPEC §8's attributes plus OpenTelemetry's messaging conventions."""
    return {
        "messaging.system": _SYSTEM,
        "messaging.operation.type": operation,
        "messaging.operation.name": operation,
        "messaging.destination.name": task.queue,
        "messaging.message.id": task.id,
        "messaging.message.body.size": len(task.payload_bytes),
        "strego.task.type": task.type,
        "strego.task.retry_count": task.retry_count,
    }


def _failed(span: Span, exc: BaseException) -> None:
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"[:1024]))


class TraceContextFilter(logging.Filter):
    """Adds ``trace_id`` and ``span_id`` (hex) to records logged inside a span.

    Install it on your handlers (``handler.addFilter(TraceContextFilter())``);
    ``strego worker`` does so for its own. Records outside a span are unchanged.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            record.trace_id = format(context.trace_id, "032x")
            record.span_id = format(context.span_id, "016x")
        return True
