"""One worker's ``/metrics``: SPEC §8's series, rendered from its :class:`WorkerStats`.

Nothing is recorded through prometheus_client on the task path: a scrape reads the
in-process collector (worker/stats.py) and the lease table, so a worker pays for
Prometheus only when it is scraped. The registry holds only strego's series (no
process or GC collectors): labels are queues and task types, never task ids.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from strego.worker.stats import OUTCOMES, Histogram, WorkerStats

__all__ = ["WorkerCollector", "render", "worker_registry"]

Source = Callable[[], tuple[WorkerStats, Mapping[str, int]] | None]


class WorkerCollector(Collector):
    """Reads ``source()`` (the stats and running handlers per queue) at each scrape."""

    def __init__(self, source: Source) -> None:
        self._source = source

    def collect(self) -> Iterable[Metric]:
        found = self._source()
        if found is None:  # not started yet: the series appear with the first start
            return []
        stats, running = found
        return [
            _tasks(stats),
            _durations(stats),
            _waits(stats),
            _running(stats, running),
        ]


def _tasks(stats: WorkerStats) -> Metric:
    family = CounterMetricFamily(
        "strego_tasks",
        "Task outcomes this worker recorded (completed, retried, dead, cancelled).",
        labels=["queue", "type", "outcome"],
    )
    for counts in stats.by_type():
        for outcome, value in zip(OUTCOMES, counts.outcomes, strict=True):
            family.add_metric([counts.queue, counts.type, outcome], value)
    return family


def _durations(stats: WorkerStats) -> Metric:
    family = HistogramMetricFamily(
        "strego_task_duration_seconds",
        "How long handlers ran, per attempt.",
        labels=["queue", "type"],
    )
    for counts in stats.by_type():
        histogram = counts.durations
        family.add_metric([counts.queue, counts.type], _buckets(histogram), histogram.total)
    return family


def _waits(stats: WorkerStats) -> Metric:
    family = HistogramMetricFamily(
        "strego_task_wait_seconds",
        "How long tasks waited from due (enqueued, scheduled time, retry time) to start.",
        labels=["queue"],
    )
    for queue, histogram in stats.waits.items():
        family.add_metric([queue], _buckets(histogram), histogram.total)
    return family


def _running(stats: WorkerStats, running: Mapping[str, int]) -> Metric:
    family = GaugeMetricFamily(
        "strego_tasks_running", "Handlers running now on this worker.", labels=["queue"]
    )
    for queue in stats.queues:
        family.add_metric([queue], running.get(queue, 0))
    return family


def _buckets(histogram: Histogram) -> list[tuple[str, float]]:
    """Cumulative ``le`` buckets, ``+Inf`` last (Prometheus' histogram layout)."""
    out, seen = [], 0
    for bound, count in zip((*histogram.bounds, float("inf")), histogram.counts, strict=True):
        seen += count
        out.append(("+Inf" if bound == float("inf") else repr(float(bound)), float(seen)))
    return out


def worker_registry(source: Source) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(WorkerCollector(source))
    return registry


def render(registry: CollectorRegistry, accept: str) -> tuple[bytes, str]:
    """The exposition body and its content type (OpenMetrics when the scraper asks)."""
    encoder, content_type = choose_encoder(accept)
    return encoder(registry), content_type
