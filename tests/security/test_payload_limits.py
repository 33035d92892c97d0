"""Item 5 (responses): listings carry a bounded preview of each payload; the task
endpoint carries it up to 1 MiB and a download link serves the whole of it.

A 100 MB payload used to make a 134 MB listing response (payload and payload_base64 in
full), and a scheduled list of a few such tasks 367 MB (the UI peaked at 1.6 GB).
"""

from __future__ import annotations

import json
import os

import httpx

import strego
from strego.ui.payload import DETAIL_PAYLOAD_BYTES, LIST_PAYLOAD_BYTES
from tests.ui.conftest import conforms

BIG = 5 << 20


async def _tasks(client: strego.Client) -> dict[str, str]:
    """Scheduled tasks with payloads from tiny to 5 MB (JSON and binary)."""
    payloads = {
        "tiny": {"n": 1},
        "edge": "x" * (LIST_PAYLOAD_BYTES - 2),  # 4 KiB once JSON-quoted
        "medium": "é" * 200_000,  # 400 kB: in the detail, not in listings
        "big_json": {"rows": ["r" * 100] * (BIG // 104)},
        "big_binary": os.urandom(BIG),
    }
    ids = {}
    for name, payload in payloads.items():
        info = await client.enqueue(strego.Task(name, payload, process_in=600))
        ids[name] = info.id
    return ids


async def test_listings_carry_a_bounded_preview(
    http: httpx.AsyncClient, client: strego.Client
) -> None:
    ids = await _tasks(client)
    response = await http.get("/api/queues/default/tasks?state=scheduled&limit=500")
    body = conforms(response, "/api/queues/{queue}/tasks")
    assert len(response.content) < 64 * 1024, len(response.content)
    rows = {row["type"]: row for row in body["tasks"]}
    assert rows["tiny"]["payload"] == {"n": 1} and not rows["tiny"]["payload_truncated"]
    assert rows["edge"]["payload_base64"] is not None
    for name in ("medium", "big_json", "big_binary"):
        row = rows[name]
        assert row["payload"] is None and row["payload_base64"] is None, name
        assert row["payload_truncated"] and row["payload_size"] > LIST_PAYLOAD_BYTES
        assert 0 < len(row["payload_preview"]) <= 96
    assert rows["big_json"]["payload_preview"].startswith('{"rows":["rrr')  # the raw start
    assert rows["medium"]["payload_preview"].startswith('"éé')  # a cut character is dropped
    assert "binary" in rows["big_binary"]["payload_preview"]
    page = await http.get("/queues/default?state=scheduled")
    assert page.status_code == 200 and len(page.content) < 128 * 1024
    assert ids["big_json"] in page.text


async def test_the_task_endpoint_caps_and_links_the_payload(
    http: httpx.AsyncClient, client: strego.Client
) -> None:
    ids = await _tasks(client)
    medium = conforms(await http.get(f"/api/tasks/{ids['medium']}"), "/api/tasks/{task_id}")
    assert medium["payload"] == "é" * 200_000 and not medium["payload_truncated"]
    for name in ("big_json", "big_binary"):
        response = await http.get(f"/api/tasks/{ids[name]}")
        detail = conforms(response, "/api/tasks/{task_id}")
        assert len(response.content) < 600 * 1024, (name, len(response.content))
        assert detail["payload"] is None and detail["payload_base64"] is None
        assert detail["payload_truncated"] and detail["payload_size"] > DETAIL_PAYLOAD_BYTES
        download = await http.get(detail["payload_url"])
        assert download.status_code == 200
        assert download.headers["content-type"] == "application/octet-stream"
        assert download.headers["content-disposition"].startswith("attachment;")
        assert download.headers["x-content-type-options"] == "nosniff"
        assert len(download.content) == detail["payload_size"]
        if name == "big_json":
            assert json.loads(download.content)["rows"][0] == "r" * 100
        page = await http.get(f"/tasks/{ids[name]}")
        assert page.status_code == 200 and len(page.content) < 600 * 1024
        assert "Download all" in page.text


async def test_a_payload_download_is_never_rendered(
    http: httpx.AsyncClient, client: strego.Client
) -> None:
    """A payload that is an HTML page downloads as bytes (no XSS through the link)."""
    markup = b"<html><script>alert(1)</script></html>"
    info = await client.enqueue(
        strego.Task("t", markup, serializer=strego.RawSerializer(), id="x/../<b>")
    )
    detail = (await http.get("/api/tasks/x~2F..~2F<b>")).json()
    download = await http.get(detail["payload_url"])
    assert download.content == markup
    assert download.headers["content-type"] == "application/octet-stream"
    assert 'filename="x_..__b_.payload"' in download.headers["content-disposition"]
    assert info.id == "x/../<b>"
