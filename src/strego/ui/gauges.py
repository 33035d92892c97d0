"""The UI's /metrics families, from one :class:`ClusterGauges` read (prometheus_client
is the ``[prometheus]`` extra: this module is imported only when it is installed)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from strego.records import ClusterGauges

__all__ = ["STATES", "exposition"]

STATES = ("pending", "active", "scheduled", "retry", "dead")


class _Snapshot(Collector):
    def __init__(self, gauges: ClusterGauges) -> None:
        self._gauges = gauges

    def collect(self) -> Iterable[Metric]:
        tasks = GaugeMetricFamily(
            "strego_queue_tasks", "Tasks in each queue by state, now.", labels=["queue", "state"]
        )
        oldest = GaugeMetricFamily(
            "strego_queue_oldest_pending_seconds",
            "How long the oldest task not yet delivered has waited (0: none waiting).",
            labels=["queue"],
        )
        for queue in self._gauges.queues:
            for state in STATES:
                tasks.add_metric([queue.name, state], getattr(queue, state))
            oldest.add_metric([queue.name], queue.oldest_pending_s or 0.0)
        workers = GaugeMetricFamily("strego_workers", "Live workers (recent heartbeat).")
        workers.add_metric([], self._gauges.workers)
        return [tasks, oldest, workers]


def exposition(gauges: ClusterGauges, accept: str) -> tuple[bytes, str]:
    """The body and content type (OpenMetrics when the scraper asks for it)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(gauges))
    encoder, content_type = choose_encoder(accept)
    return encoder(registry), content_type
