"""docs/quickstart.md works copy-pasted: its files, commands and expected output."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from strego.embedded import EmbeddedRedis, free_port
from tests.support.servers import start_redis

QUICKSTART = Path(__file__).resolve().parents[2] / "docs" / "quickstart.md"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", QUICKSTART.read_text(), flags=re.DOTALL)


@pytest.fixture
def redis() -> Iterator[EmbeddedRedis]:
    server = start_redis()  # its own server: the quickstart uses the default prefix
    yield server
    server.cleanup()


def _env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREGO_")}
    env["STREGO_REDIS_URL"] = url
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def test_quickstart_files_and_commands(tmp_path: Path, redis: EmbeddedRedis) -> None:
    """tasks.py + strego worker + enqueue.py / enqueue_async.py run and do what the text says."""
    files = {}
    for block in _blocks("python"):
        name = block.splitlines()[0].removeprefix("# ")
        files[name] = block
        (tmp_path / name).write_text(block)
    assert set(files) == {"tasks.py", "enqueue.py", "enqueue_async.py"}
    env = _env(redis.url)
    log = (tmp_path / "worker.log").open("w+")
    worker = subprocess.Popen(
        [sys.executable, "-m", "strego.cli.main", "worker", "tasks:server"],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        sync = subprocess.run(
            [sys.executable, "enqueue.py"], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert sync.returncode == 0, sync.stderr
        assert re.search(r"^enqueued \w+ pending$", sync.stdout, flags=re.MULTILINE)
        assert re.search(r"^scheduled \w+ for 20\d\d-", sync.stdout, flags=re.MULTILINE)
        async_run = subprocess.run(
            [sys.executable, "enqueue_async.py"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
        )
        assert async_run.returncode == 0, async_run.stderr
        expected = ["'Welcome!' to ada@example.com", "'Hi' to eve@example.com", "'Reminder' to bob"]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(e in _read(log) for e in expected):
            time.sleep(0.1)
        assert all(e in _read(log) for e in expected), _read(log)
        stats = subprocess.run(
            [sys.executable, "-m", "strego.cli.main", "stats"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
        )
        assert stats.returncode == 0
        assert "critical" in stats.stdout
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        log.close()


def _read(log: IO[str]) -> str:
    log.seek(0)
    return log.read()


def test_the_redis_one_liner_starts_a_server(tmp_path: Path) -> None:
    """The 'no Redis at hand' command starts the bundled redis-server."""
    (line,) = [b for b in _blocks("sh") if "find_redis_server" in b]
    port = free_port()
    proc = subprocess.Popen(
        ["bash", "-c", "exec " + line.strip().replace("6379", str(port))],
        cwd=tmp_path,
        env=_env("unused"),
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), 0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                assert time.monotonic() < deadline, "redis-server did not answer"
                time.sleep(0.05)
    finally:
        proc.kill()
        proc.wait()
