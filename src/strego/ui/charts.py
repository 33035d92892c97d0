"""Bar-chart geometry for the throughput charts, computed here and drawn as inline SVG.

Only numbers leave this module; the template draws them, so a chart needs no
JavaScript, no library and no build step, and renders on first load.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime

from strego.records import ThroughputPoint

__all__ = ["RANGES", "BarChart", "axis_scale", "bar_chart", "nice_ceiling", "throughput_charts"]

# range key → (minutes asked of the Inspector, minutes per bar, label)
RANGES: dict[str, tuple[int, int, str]] = {
    "1h": (60, 1, "last hour"),
    "24h": (1440, 15, "last 24 hours"),
}
WIDTH = 600
HEIGHT = 150
_TOP = 8
_BOTTOM = 20  # room for the time labels
_LEFT = 34  # room for the value labels


@dataclasses.dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    value: int
    title: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class BarChart:
    """Everything the SVG template needs: bars, horizontal gridlines, time labels."""

    series: str
    bars: tuple[Bar, ...]
    gridlines: tuple[tuple[float, str], ...]
    x_labels: tuple[tuple[float, str], ...]
    total: int
    peak: int
    width: int = WIDTH
    height: int = HEIGHT
    left: int = _LEFT
    baseline: float = HEIGHT - _BOTTOM


def nice_ceiling(value: int) -> int:
    """The smallest 1, 2 or 5 times 10^k that is >= value (and >= 1)."""
    if value <= 1:
        return 1
    exponent = 1
    while exponent * 10 <= value:  # the largest power of ten <= value
        exponent *= 10
    for step in (1, 2, 5, 10):
        if step * exponent >= value:
            return step * exponent
    return 10 * exponent  # pragma: no cover - the loop always returns


_MAX_INTERVALS = 4


def axis_scale(peak: int) -> tuple[int, int]:
    """(top, step) of the value axis: a 1/2/5 x 10^k step and at most 4 intervals, so
    every gridline is a whole number of tasks (a top of 5 once labelled 2.5 as "2")."""
    step = 1
    while -(-max(peak, 1) // step) > _MAX_INTERVALS:
        step = nice_ceiling(step + 1)
    return step * -(-max(peak, 1) // step), step


def bar_chart(series: str, values: Sequence[tuple[datetime, int]], bucket_minutes: int) -> BarChart:
    """One bar per bucket; ``values`` are (bucket start, count), oldest first."""
    peak = max((v for _, v in values), default=0)
    top, step = axis_scale(peak)
    plot_h = HEIGHT - _TOP - _BOTTOM
    slot = (WIDTH - _LEFT) / max(1, len(values))
    gap = min(2.0, slot * 0.2)
    bars = []
    for i, (start, value) in enumerate(values):
        height = plot_h * value / top
        bars.append(
            Bar(
                x=round(_LEFT + i * slot + gap / 2, 2),
                y=round(_TOP + plot_h - height, 2),
                width=round(max(0.5, slot - gap), 2),
                height=round(height, 2),
                value=value,
                title=f"{start:%H:%M} UTC" + (f" +{bucket_minutes}m" if bucket_minutes > 1 else ""),
            )
        )
    gridlines = tuple(
        (round(_TOP + plot_h * (1 - value / top), 2), _short(value))
        for value in range(0, top + 1, step)
    )
    labels: list[tuple[float, str]] = []
    if values:
        for i in sorted({0, len(values) // 2, len(values) - 1}):
            labels.append((round(_LEFT + (i + 0.5) * slot, 2), f"{values[i][0]:%H:%M}"))
    return BarChart(
        series=series,
        bars=tuple(bars),
        gridlines=gridlines,
        x_labels=tuple(labels),
        total=sum(v for _, v in values),
        peak=peak,
    )


def throughput_charts(
    points: Sequence[ThroughputPoint], bucket_minutes: int
) -> tuple[BarChart, BarChart]:
    """(processed, failed) charts, minutes summed into buckets of ``bucket_minutes``."""
    processed: list[tuple[datetime, int]] = []
    failed: list[tuple[datetime, int]] = []
    for i in range(0, len(points), bucket_minutes):
        bucket = points[i : i + bucket_minutes]
        processed.append((bucket[0].minute, sum(p.processed for p in bucket)))
        failed.append((bucket[0].minute, sum(p.failed for p in bucket)))
    return (
        bar_chart("processed", processed, bucket_minutes),
        bar_chart("failed", failed, bucket_minutes),
    )


def _short(value: int) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    if value >= 1000:
        return f"{value / 1000:g}k"
    return str(value)
