"""docs/grafana-dashboard.json asks only for series, labels and label values strego
exports: each query is checked against the worker's and the UI's real exposition."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from strego.outcome import Succeeded
from strego.records import ClusterGauges, QueueGauges
from strego.ui.gauges import exposition
from strego.worker.prometheus import worker_registry
from strego.worker.stats import WorkerStats

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana-dashboard.json"
SELECTOR = re.compile(r"\b(strego_[a-z_]+)\b(\{[^}]*\})?")
MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"')
BY = re.compile(r"\bby\s*\(([^)]*)\)")
LABEL_VALUES = re.compile(r"label_values\(\s*(\w+)\s*,\s*(\w+)\s*\)")


def exported() -> dict[str, dict[str, set[str]]]:
    """Sample name → label name → values seen, from both /metrics outputs."""
    stats = WorkerStats(["default"], lambda t: True)
    stats.finished("default", "t", Succeeded("1", duration_s=0.01), ran=True)
    stats.started("default", "1-0")
    worker = generate_latest(worker_registry(lambda: (stats, {"default": 1}))).decode()
    gauges = ClusterGauges(
        queues=[
            QueueGauges(
                name="default",
                pending=1,
                active=0,
                scheduled=0,
                retry=0,
                dead=0,
                oldest_pending_s=1.0,
            )
        ],
        workers=1,
    )
    ui = exposition(gauges, "")[0].decode()
    found: dict[str, dict[str, set[str]]] = {}
    for text in (worker, ui):
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = found.setdefault(sample.name, {})
                for name, value in sample.labels.items():
                    labels.setdefault(name, set()).add(value)
    return found


def queries(dashboard: dict[str, Any]) -> list[str]:
    found = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        query = variable["query"]
        found.append(query["query"] if isinstance(query, dict) else query)
    return found


def test_every_query_uses_exported_series_labels_and_values() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    series = exported()
    checked = 0
    for expr in queries(dashboard):
        used = SELECTOR.findall(expr)
        assert used, f"query names no strego series: {expr}"
        labels_in_expr: set[str] = set()
        for metric, selector in used:
            assert metric in series, f"{metric} is not exported (query: {expr})"
            labels_in_expr |= set(series[metric])
            for label, op, wanted in MATCHER.findall(selector):
                assert label in series[metric], f"{metric} has no label {label!r}: {expr}"
                if "$" in wanted or op.startswith("!"):
                    continue  # a template variable, or a negation: any value is fine
                for value in wanted.split("|") if op == "=~" else [wanted]:
                    assert value in series[metric][label], f"no {label}={value!r} in {expr}"
            checked += 1
        for group in BY.findall(expr):
            for label in (part.strip() for part in group.split(",")):
                assert label in labels_in_expr, f"'by ({label})' matches no label: {expr}"
        for metric, label in LABEL_VALUES.findall(expr):
            assert label in series[metric], f"label_values: {metric} has no {label!r}"
    assert checked >= 15


def test_the_panels_an_operator_needs() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    titles = " | ".join(p["title"] for p in dashboard["panels"])
    for needed in ("Throughput", "Failures", "p50 / p99", "Queue depth", "Oldest pending"):
        assert needed in titles
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert dashboard["__inputs"][0]["name"] == "DS_PROMETHEUS"  # importable as is
