"""Producer and consumer spans in one trace, across a real worker process; logs in a
handler carry the span's ids."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import strego
from strego.otel import TracingMiddleware
from tests.conftest import wait_until
from tests.observability.conftest import WorkerProcess


def _spans(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _trace(value: int) -> str:
    return f"0x{value:032x}"  # how the SDK's to_json writes ids


def _span(value: int) -> str:
    return f"0x{value:016x}"


async def test_one_trace_across_a_worker_process(
    start_worker: Callable[..., WorkerProcess], tmp_path: Path, redis_url: str, prefix: str
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    spans_file = tmp_path / "spans.jsonl"
    worker = start_worker(STREGO_OBS_SPANS=str(spans_file))
    await worker.wait_healthy()
    broker = strego.RedisBroker(redis_url, prefix=prefix)
    middleware = [TracingMiddleware(tracer_provider=provider)]
    try:
        async with strego.Client(broker, middleware=middleware) as client:
            flaky = await client.enqueue(strego.Task("flaky", max_retry=3))
            logged = await client.enqueue(strego.Task("log", queue="other"))
        await wait_until(lambda: len(_spans(spans_file)) == 4, timeout=20)
    finally:
        await broker.aclose()
    assert worker.stop() == 0, worker.output()

    producers = {
        dict(s.attributes or {})["messaging.message.id"]: s for s in exporter.get_finished_spans()
    }
    assert set(producers) == {flaky.id, logged.id}
    send = producers[flaky.id]
    assert send.name == "send default" and send.kind is SpanKind.PRODUCER
    assert dict(send.attributes or {}) == {
        "messaging.system": "strego",
        "messaging.operation.type": "send",
        "messaging.operation.name": "send",
        "messaging.destination.name": "default",
        "messaging.message.id": flaky.id,
        "messaging.message.body.size": 4,  # "null"
        "strego.task.type": "flaky",
        "strego.task.retry_count": 0,
    }
    consumers = _spans(spans_file)
    attempts = sorted(
        (s for s in consumers if s["attributes"]["messaging.message.id"] == flaky.id),
        key=lambda s: s["attributes"]["strego.task.retry_count"],
    )
    _check_attempts(attempts, send)
    (log_span,) = (s for s in consumers if s["attributes"]["messaging.message.id"] == logged.id)
    assert log_span["name"] == "process other"
    assert log_span["context"]["trace_id"] == _trace(producers[logged.id].context.trace_id)
    _check_log_line(worker.output(), logged.id, log_span)


def _check_attempts(attempts: list[dict[str, Any]], send: Any) -> None:
    """Three attempts (two failed), each a CONSUMER child of the producer span."""
    assert [a["attributes"]["strego.task.retry_count"] for a in attempts] == [0, 1, 2]
    for attempt in attempts:
        assert attempt["name"] == "process default"
        assert attempt["kind"] == str(SpanKind.CONSUMER)
        assert attempt["context"]["trace_id"] == _trace(send.context.trace_id)
        assert attempt["parent_id"] == _span(send.context.span_id)
        assert attempt["attributes"]["messaging.operation.type"] == "process"
        assert attempt["attributes"]["messaging.system"] == "strego"
        assert attempt["attributes"]["strego.task.type"] == "flaky"
    assert len({a["context"]["span_id"] for a in attempts}) == 3  # separate attempts
    for failed in attempts[:2]:
        assert failed["status"]["status_code"] == StatusCode.ERROR.name
        (event,) = failed["events"]
        assert event["name"] == "exception"
        assert event["attributes"]["exception.type"] == "RuntimeError"
        assert "flaky attempt" in event["attributes"]["exception.message"]
    assert attempts[2]["status"]["status_code"] == StatusCode.UNSET.name
    assert attempts[2]["events"] == []


def _check_log_line(output: str, task_id: str, span: dict[str, Any]) -> None:
    """The sync handler's log line (in its thread) names its consumer span."""
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    (line,) = (entry for entry in lines if entry["message"] == f"handled {task_id}")
    assert "0x" + line["trace_id"] == span["context"]["trace_id"]
    assert "0x" + line["span_id"] == span["context"]["span_id"]
    outside = [entry for entry in lines if "started on queues" in entry["message"]]
    assert outside and "trace_id" not in outside[0]  # no span: no ids


async def test_without_an_sdk_nothing_is_added(broker: strego.RedisBroker) -> None:
    """The API alone (no SDK: spans do not record) sends the task as it is: no headers."""
    middleware = [TracingMiddleware(tracer_provider=trace.NoOpTracerProvider())]
    async with strego.Client(broker, middleware=middleware) as client:
        info = await client.enqueue(strego.Task("t"))
    (record,) = await strego.Inspector(broker).list_tasks("default", "pending")
    assert record.id == info.id
    (entry,) = await broker.redis.xrange(broker.keys("default").stream(0))
    assert b'"h":' not in entry[1][b"d"]
