"""A real ``strego worker`` process for the observability tests, and scraping helpers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import wait_until

REPO = Path(__file__).resolve().parents[2]
APP = "tests.observability.worker_app:build_server"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class WorkerProcess:
    """``strego worker tests.observability.worker_app:build_server`` with its probes."""

    def __init__(self, log_path: Path, port: int, env: dict[str, str]) -> None:
        self.port = port
        self.log_path = log_path
        self._log = log_path.open("wb")
        command = [sys.executable, "-m", "strego.cli.main", "worker", APP]
        command += ["--metrics-port", str(port), "--health-port", str(port)]
        self.process = subprocess.Popen(
            [*command, "--log-format", "json"],
            cwd=REPO,
            env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def wait_healthy(self) -> None:
        async def healthy() -> bool:
            assert self.process.poll() is None, f"worker exited:\n{self.output()}"
            try:
                async with httpx.AsyncClient() as http:
                    return (await http.get(self.url("/healthz"))).status_code == 200
            except httpx.TransportError:
                return False

        await wait_until(healthy, timeout=20)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=20)
        finally:
            self._log.close()


@pytest.fixture
def start_worker(
    redis_url: str, prefix: str, tmp_path: Path
) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(**env: str) -> WorkerProcess:
        worker = WorkerProcess(
            tmp_path / f"worker{len(started)}.log",
            free_port(),
            {"STREGO_OBS_REDIS": redis_url, "STREGO_OBS_PREFIX": prefix, **env},
        )
        started.append(worker)
        return worker

    yield start
    for worker in started:
        if worker.process.poll() is None:
            worker.process.kill()
            worker.process.wait(10)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


async def scrape(http: httpx.AsyncClient, url: str, **headers: Any) -> dict[str, Any]:
    """``/metrics`` parsed by prometheus_client's own parser: family name → family."""
    response = await http.get(url, headers=headers)
    assert response.status_code == 200, response.text
    return {f.name: f for f in text_string_to_metric_families(response.text)}


def samples(family: Any, name: str | None = None) -> Samples:
    """(sample name, sorted labels) → value, for one family."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for s in family.samples
        if name is None or s.name == name
    }


def value(family: Any, sample: str, **labels: str) -> float:
    return samples(family).get((sample, tuple(sorted(labels.items()))), 0.0)
