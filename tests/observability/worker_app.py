"""The worker the observability tests run as a real process: ``strego worker
tests.observability.worker_app:build_server``, configured by environment variables.

Handlers with known outcomes: ``ok`` completes, ``flaky`` fails its first two
attempts then completes, ``boom`` always fails, ``log`` writes a log line. With
``STREGO_OBS_SPANS`` set, spans go to that file as JSON lines (OpenTelemetry SDK).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence

import strego

__all__ = ["build_server"]

log = logging.getLogger("tests.observability")


def build_server() -> strego.Server:
    middleware: list[strego.Middleware] = []
    spans = os.environ.get("STREGO_OBS_SPANS")
    if spans:
        middleware.append(_tracing(spans))
    broker = strego.RedisBroker(
        os.environ["STREGO_OBS_REDIS"], prefix=os.environ["STREGO_OBS_PREFIX"], group="obs"
    )
    server = strego.Server(
        broker, queues=["default", "other"], retry_base=0.05, retry_max=0.1, middleware=middleware
    )

    async def ok(task: strego.Task) -> None:
        return None

    async def flaky(task: strego.Task) -> None:
        if task.retry_count < 2:
            raise RuntimeError(f"flaky attempt {task.retry_count + 1}")

    async def boom(task: strego.Task) -> None:
        raise ValueError("boom")

    def sync_log(task: strego.Task) -> None:  # a thread: the span must follow it there
        log.info("handled %s", task.id)

    server.handle("ok", ok)
    server.handle("flaky", flaky)
    server.handle("boom", boom)
    server.handle("log", sync_log)
    return server


def _tracing(path: str) -> strego.Middleware:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import (
        SimpleSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    from strego.otel import TracingMiddleware

    class JsonLinesExporter(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            with open(path, "a") as out:
                for span in spans:
                    out.write(json.dumps(json.loads(span.to_json())) + "\n")
            return SpanExportResult.SUCCESS

    provider = TracerProvider(resource=Resource.create({"service.name": "obs-worker"}))
    provider.add_span_processor(SimpleSpanProcessor(JsonLinesExporter()))
    return TracingMiddleware(tracer_provider=provider)
