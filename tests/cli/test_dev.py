"""``strego dev``: the one-command demo, run as a user would, on a machine without Redis."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import psutil
import pytest

import strego
from strego.embedded import free_port
from tests.store.conftest import databases, empty_dsn  # noqa: F401  (PostgreSQL fixtures)

_ALL_STATES = {"pending", "active", "scheduled", "retry", "dead", "completed"}


class DevProcess:
    """A running ``strego dev`` and what its banner said."""

    def __init__(self, proc: subprocess.Popen[str], banner: dict[str, str]) -> None:
        self.proc = proc
        self.banner = banner

    @property
    def redis_url(self) -> str:
        return self.banner["Redis"].split()[0]

    @property
    def ui_url(self) -> str:
        return self.banner["UI"]

    def redis_children(self) -> list[psutil.Process]:
        return [
            p
            for p in psutil.Process(self.proc.pid).children(recursive=True)
            if "redis-server" in p.name()
        ]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREGO_")}
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    return env


def _spawn(cwd: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "strego.cli.main", "dev", *args],
        cwd=cwd,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def _start_dev(cwd: Path, *args: str) -> DevProcess:
    """Start ``strego dev`` and read its banner (URLs of the UI and Redis)."""
    proc = _spawn(cwd, *args)
    banner: dict[str, str] = {}
    assert proc.stdout is not None
    while "History" not in banner:  # the last line of the banner
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 30)
        if not line:
            raise AssertionError(f"strego dev exited early: {proc.stderr.read()}")  # type: ignore[union-attr]
        name, sep, value = line.strip().partition(":")
        if sep:
            banner[name.strip()] = value.strip()
    return DevProcess(proc, banner)


@pytest.fixture
async def dev(tmp_path: Path) -> AsyncIterator[DevProcess]:
    running = await _start_dev(tmp_path, "--port", str(free_port()))
    yield running
    if running.proc.poll() is None:
        running.proc.kill()
    running.proc.wait()
    for stream in (running.proc.stdout, running.proc.stderr):
        if stream is not None:
            stream.close()


def _gone(process: psutil.Process, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


async def _states_seen(url: str, timeout_s: float) -> set[str]:
    """Every task state that showed up in any queue, polling until all six did."""
    seen: set[str] = set()
    async with strego.RedisBroker(url) as broker:
        inspector = strego.Inspector(broker)
        deadline = time.monotonic() + timeout_s
        while seen != _ALL_STATES and time.monotonic() < deadline:
            for info in await inspector.queues():
                seen |= {s for s in _ALL_STATES if getattr(info, s) > 0}
            await asyncio.sleep(0.1)
    return seen


async def test_dev_demo_end_to_end(dev: DevProcess) -> None:
    """UI answers, every task state appears within 60 s, SIGINT leaves no child behind."""
    assert dev.redis_url.startswith("redis://127.0.0.1:")
    assert "embedded" in dev.banner["Redis"]
    (redis_child,) = dev.redis_children()
    async with httpx.AsyncClient() as http:
        response = await http.get(dev.ui_url + "/")
    assert response.status_code == 200
    assert await _states_seen(dev.redis_url, 60) == _ALL_STATES
    dev.proc.send_signal(signal.SIGINT)
    assert await asyncio.to_thread(dev.proc.wait, 30) == 0
    assert _gone(redis_child)
    assert "stopping" in (dev.proc.stdout.read() if dev.proc.stdout else "")


async def test_sigterm_stops_cleanly(dev: DevProcess) -> None:
    """SIGTERM is a graceful stop too: exit 0, the redis-server is gone."""
    (redis_child,) = dev.redis_children()
    dev.proc.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(dev.proc.wait, 30) == 0
    assert _gone(redis_child)


async def test_sigkill_leaves_no_orphan_redis(dev: DevProcess) -> None:
    """Even a SIGKILLed strego dev (no cleanup runs) takes its redis-server down."""
    (redis_child,) = dev.redis_children()
    dev.proc.kill()
    await asyncio.to_thread(dev.proc.wait, 10)
    assert _gone(redis_child)


async def test_dev_on_an_existing_redis(tmp_path: Path, redis_url: str, prefix: str) -> None:
    """--redis uses that server: no redis-server child, tasks flow, the server survives."""
    running = await _start_dev(
        tmp_path, "--redis", redis_url, "--prefix", prefix, "--port", str(free_port())
    )
    try:
        assert running.redis_children() == []
        assert "yours, left as it is" in running.banner["Redis"]
        async with strego.RedisBroker(redis_url, prefix=prefix) as broker:
            inspector = strego.Inspector(broker)
            deadline = time.monotonic() + 30
            processed = 0
            while processed == 0 and time.monotonic() < deadline:
                processed = sum(q.processed for q in await inspector.queues())
                await asyncio.sleep(0.1)
            assert processed > 0
        running.proc.send_signal(signal.SIGINT)
        assert await asyncio.to_thread(running.proc.wait, 30) == 0
        async with strego.RedisBroker(redis_url) as broker:
            assert await broker.redis.ping()
    finally:
        if running.proc.poll() is None:
            running.proc.kill()
        running.proc.communicate()


def test_busy_port_is_a_clear_error(tmp_path: Path) -> None:
    """A UI port already in use fails at once with one line, before starting Redis."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "strego.cli.main", "dev", "--port", str(port)],
            cwd=tmp_path,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 1
    assert result.stderr.startswith(f"strego: error: cannot listen on 127.0.0.1:{port}")
    assert "pass --port" in result.stderr


@pytest.mark.postgres
async def test_dev_with_postgres_shows_history(
    tmp_path: Path, redis_url: str, prefix: str, empty_dsn: str
) -> None:
    """--postgres migrates an empty database, records the demo's tasks, and the UI's
    History page lists them."""
    running = await _start_dev(
        tmp_path, "--redis", redis_url, "--prefix", prefix, "--port", str(free_port()),
        "--postgres", empty_dsn, "--rate", "20",
    )  # fmt: skip
    try:
        assert running.banner["History"] != "" and "off" not in running.banner["History"]
        async with httpx.AsyncClient() as http:
            deadline = time.monotonic() + 30
            listed: list[str] = []
            while not listed and time.monotonic() < deadline:
                page = (await http.get(running.ui_url + "/history")).text
                listed = re.findall(r'<tr data-task-id="([^"]+)"', page)
                await asyncio.sleep(0.2)
        assert listed, "the History page never listed a demo task"
        running.proc.send_signal(signal.SIGINT)
        assert await asyncio.to_thread(running.proc.wait, 30) == 0
    finally:
        if running.proc.poll() is None:
            running.proc.kill()
        running.proc.communicate()


def test_dev_with_a_bad_postgres_dsn_is_one_line(tmp_path: Path, redis_url: str) -> None:
    """An unreachable --postgres fails at start with one line naming it (password hidden)."""
    dsn = "postgresql://demo:s3cret@127.0.0.1:1/nothing"
    result = subprocess.run(
        [sys.executable, "-m", "strego.cli.main", "dev", "--redis", redis_url,
         "--port", str(free_port()), "--postgres", dsn],
        cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("strego: error: cannot use --postgres postgresql://demo:***@127.0.0.1:1")
    assert "s3cret" not in result.stderr + result.stdout
