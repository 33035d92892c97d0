"""Item 1 for ``strego dev``: its UI (no auth) refuses a rebinding Host and cross-site
mutations like ``strego ui`` does; ``--host`` beyond loopback needs ``--insecure``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

import strego
from strego.embedded import free_port
from tests.cli.test_dev import DevProcess, _start_dev


@pytest.fixture
async def dev(tmp_path: Path) -> AsyncIterator[DevProcess]:
    running = await _start_dev(tmp_path, "--port", str(free_port()), "--no-producer")
    yield running
    if running.proc.poll() is None:
        running.proc.kill()
    running.proc.wait()
    for stream in (running.proc.stdout, running.proc.stderr):
        if stream is not None:
            stream.close()


async def test_dev_ui_refuses_rebinding_and_cross_site(dev: DevProcess) -> None:
    async with httpx.AsyncClient(base_url=dev.ui_url) as http:
        assert (await http.get("/api/queues")).status_code == 200
        forged = await http.get("/api/csrf", headers={"host": "evil.example"})
        assert forged.status_code == 400
        token = (await http.get("/api/csrf")).json()["csrf_token"]
        async with strego.RedisBroker(dev.redis_url) as broker:
            queue = (await strego.Inspector(broker).known_queues())[0]
            headers = {"x-csrf-token": token, "origin": "http://evil.example"}
            refused = await http.post(f"/api/queues/{queue}/pause", headers=headers)
            assert refused.status_code == 403
            assert not (await strego.Inspector(broker).queue_info(queue)).paused
            ok = await http.post(f"/api/queues/{queue}/pause", headers={"x-csrf-token": token})
            assert ok.status_code == 200
