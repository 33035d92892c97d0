"""Pure parts of the UI: payload rendering, charts, URL names, formatting, history queries."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote

import pytest
from starlette.convertors import CONVERTOR_TYPES

import strego
import strego.ui
from strego.records import ThroughputPoint
from strego.store.query import SortField
from strego.task import TaskState
from strego.ui import create_app
from strego.ui.charts import axis_scale, bar_chart, nice_ceiling, throughput_charts
from strego.ui.formatting import ago, duration, number, size
from strego.ui.history import QueryError, parse_history_query
from strego.ui.payload import highlight, jsonable, payload_view, preview
from strego.ui.routes.common import NameConvertor

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def test_json_payload_is_pretty_and_tokenized() -> None:
    """JSON payloads are indented and split into coloured tokens that rejoin exactly."""
    view = payload_view(b'{"a":[1,2.5,true,null],"s":"x\\"y"}', "json")
    assert view.kind == "json"
    assert view.plain.startswith('{\n  "a": [\n    1,')
    kinds = {kind for kind, _ in view.tokens}
    assert {"key", "num", "lit", "str", "punct"} <= kinds
    assert ("key", '"s"') in view.tokens and ("str", '"x\\"y"') in view.tokens


@pytest.mark.parametrize(
    "text",
    ['{"k": "v"}', "[1, -2.5e3, false]", '"only a string"', '{"a": {"b": []}}', "null"],
)
def test_highlight_round_trips(text: str) -> None:
    """Tokenizing never loses or reorders a character."""
    assert "".join(t for _, t in highlight(text)) == text


def test_non_json_payloads() -> None:
    """Undecodable UTF-8 shows as text, binary as a hex dump, nothing as empty."""
    text = payload_view(b"plain <text>", "raw")
    assert (text.kind, text.text) == ("text", "plain <text>")
    binary = payload_view(b"\x00\xff" * 20, "json")
    assert binary.kind == "hex" and binary.text.startswith("00000000  00 ff 00 ff")
    assert payload_view(b"", "json").kind == "empty"
    unknown = payload_view(b"\x93\x01\x02", "protobuf-ish")
    assert unknown.kind == "hex"


def test_jsonable_and_preview() -> None:
    """Bytes become base64 objects; previews are one short line."""
    assert jsonable({"b": b"\x00", "t": (1, 2), 3: {4}}) == {
        "b": {"$base64": "AA=="},
        "t": [1, 2],
        "3": [4],
    }
    assert preview({"to": "a@b.c"}, b"") == '{"to": "a@b.c"}'
    assert preview(None, b"\xff\xfe") == "2 bytes (binary)"
    long = preview({"x": "y" * 500}, b"")
    assert len(long) == 96 and long.endswith("…")


@pytest.mark.parametrize("name", ["default", "a/b", "x~2Fy", "~", "tilde~7E", "q?#%&", "ü/ñ"])
def test_name_convertor_round_trips(name: str) -> None:
    """Any queue name or task id survives the URL segment encoding (after decoding)."""
    convertor = NameConvertor()
    segment = convertor.to_string(name)
    assert "/" not in segment and "?" not in segment and "#" not in segment
    assert convertor.convert(unquote(segment)) == name


def test_nice_ceiling_and_chart_geometry() -> None:
    """Axis tops are 1/2/5 x 10^k; bars scale to the top; empty charts have no height."""
    assert [nice_ceiling(v) for v in (0, 1, 3, 10, 11, 49, 120, 999)] == [
        1, 1, 5, 10, 20, 50, 200, 1000
    ]  # fmt: skip
    values = [(T0 + timedelta(minutes=i), v) for i, v in enumerate([0, 5, 10])]
    chart = bar_chart("processed", values, 1)
    assert chart.total == 15 and chart.peak == 10
    assert chart.bars[0].height == 0 and chart.bars[2].height > chart.bars[1].height
    assert [label for _, label in chart.gridlines] == ["0", "5", "10"]
    empty = bar_chart("failed", [(T0, 0)], 1)
    assert [label for _, label in empty.gridlines] == ["0", "1"]
    five = bar_chart("failed", [(T0, 5)], 1)  # once labelled 0 / 2 / 5: "2" meant 2.5
    assert [label for _, label in five.gridlines] == ["0", "2", "4", "6"]
    assert [axis_scale(p) for p in (3, 34, 49, 2500)] == [(3, 1), (40, 10), (60, 20), (3000, 1000)]
    assert chart.bars[1].title == "12:01 UTC"


def test_throughput_buckets() -> None:
    """Minutes are summed into buckets (24 h: 96 bars of 15 minutes)."""
    points = [
        ThroughputPoint(minute=T0 + timedelta(minutes=i), processed=1, failed=i % 2)
        for i in range(1440)
    ]
    processed, failed = throughput_charts(points, 15)
    assert len(processed.bars) == 96 and processed.total == 1440 and failed.total == 720
    assert processed.bars[0].value == 15


def test_formatting() -> None:
    """Numbers, sizes, durations and relative times read naturally."""
    assert number(1234567) == "1,234,567"
    assert size(1536) == "1.5 KiB" and size(10) == "10 B"
    assert duration(0.25) == "250 ms" and duration(12.34) == "12.3 s"
    assert duration(0.00042) == "0.42 ms" and duration(0.0031) == "3.1 ms"  # fast handlers
    assert duration(245) == "4m 05s" and duration(3 * 3600 + 720) == "3h 12m"
    assert duration(3 * 86400) == "3d 0h"
    assert ago(T0 - timedelta(seconds=5), now=T0) == "5s ago"
    assert ago(T0 + timedelta(minutes=3), now=T0) == "in 3m 00s"


def test_history_query_parsing() -> None:
    """Query parameters become a TaskFilter; bad ones are clear QueryErrors."""
    query = parse_history_query(
        {
            "queue": "emails",
            "state": "dead,retry",
            "q": "abc",
            "created_after": "2024-05-01T10:00",
            "sort": "updated_at",
            "order": "asc",
            "limit": "500",
        },
        ["tenant=acme"],
    )
    assert query.filter.queue == "emails"
    assert query.filter.states == frozenset({TaskState.DEAD, TaskState.RETRY})
    assert query.filter.labels == {"tenant": "acme"}
    assert query.filter.created_after == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    assert (query.sort, query.descending, query.limit) == (SortField.UPDATED, False, 200)
    for params, labels in [
        ({"state": "nope"}, []),
        ({"created_before": "yesterday"}, []),
        ({"sort": "type"}, []),
        ({"order": "up"}, []),
        ({}, ["no-equals"]),
        ({"q": "a\x00b"}, []),
        ({"limit": "x"}, []),
    ]:
        with pytest.raises(QueryError):
            parse_history_query(params, labels)


def test_create_app_leaves_starlette_global_convertors_alone(broker: strego.RedisBroker) -> None:
    """Building the UI registers nothing process-wide: a host app's routing is unchanged."""
    before = dict(CONVERTOR_TYPES)
    app = create_app(broker)
    assert before == CONVERTOR_TYPES and "ident" not in CONVERTOR_TYPES
    paths = [getattr(r, "path", "") for r in app.routes]
    assert "/queues/{queue}" in paths and "/tasks/{task_id}" in paths


def test_stylesheet_braces_balance() -> None:
    """app.css parses as a whole: one stray brace silently drops every rule after it."""
    css = (Path(strego.ui.__file__).parent / "static" / "app.css").read_text()
    depth = 0
    for char in re.sub(r"/\*.*?\*/", "", css, flags=re.S):
        depth += {"{": 1, "}": -1}.get(char, 0)
        assert depth >= 0
    assert depth == 0
