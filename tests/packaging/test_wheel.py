"""The built wheel is the whole package: installed alone in a clean venv, it runs a task
(Lua scripts loaded from the package), renders the UI (templates and vendored assets)
and knows its history migrations. Built with uv; its dependencies installed offline from
uv's cache at the versions (and wheel URLs) of the committed lock, the wheel itself with
``--no-deps``: resolving names offline needs index pages the cache may not hold (a fresh
machine whose cache came from ``uv sync --frozen`` has none: seen failing in CI)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

import strego
from tests.support.servers import start_redis

ROOT = Path(__file__).resolve().parents[2]
DATA_FILES = (
    "strego/py.typed",
    "strego/broker/redis/lua/enqueue.lua",
    "strego/broker/redis/lua/_lib.lua",
    "strego/ui/static/htmx.min.js",
    "strego/ui/static/app.css",
    "strego/ui/static/app.js",
    "strego/ui/templates/base.html",
    "strego/ui/templates/fragments/task_table.html",
    "strego/store/postgres/migrations/0001_initial.sql",
)

# Run inside the clean venv: a worker handles one task end to end, the UI renders.
SCRIPT = textwrap.dedent(
    """
    import asyncio, importlib.resources, sys
    import strego
    from strego.ui import create_app

    async def get(app, path):
        # One GET through the ASGI interface (no HTTP client needed in this venv).
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
            "query_string": b"", "root_path": "", "headers": [(b"host", b"localhost")],
            "client": ("127.0.0.1", 50000), "server": ("localhost", 80),
        }
        sent = []

        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message):
            sent.append(message)

        await app(scope, receive, send)
        status = next(m["status"] for m in sent if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        return status, body.decode()

    async def main(url):
        async with strego.RedisBroker(url, prefix="wheel", group="wheel") as broker:
            server = strego.Server(broker, queues=["default"])
            done = asyncio.Event()

            @server.handle("hello")
            async def hello(payload: dict) -> None:
                done.set()

            info = await strego.Client(broker).enqueue(strego.Task("hello", {"n": 1}))
            async with server:
                await asyncio.wait_for(done.wait(), 20)
            return info.id

    task_id = asyncio.run(main(sys.argv[1]))
    app = create_app(strego.RedisBroker(sys.argv[1], prefix="wheel"))
    status, text = asyncio.run(get(app, "/queues"))  # an allowed Host
    assert status == 200 and "default" in text, status
    sql = importlib.resources.files("strego") / "store/postgres/migrations/0001_initial.sql"
    assert sql.is_file()
    print("ran", task_id, "from", strego.__file__)
    """
)


def _uv() -> str:
    return subprocess.run(
        [str(ROOT / "scripts/uv")], capture_output=True, text=True, check=True
    ).stdout.strip()


def _run(*command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    env["UV_OFFLINE"] = "1"  # from the local cache: no network in tests
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.timeout(600)
def test_the_wheel_installs_alone_and_runs_a_task(tmp_path: Path) -> None:
    """Build the wheel, check what it holds, install it in a fresh venv, run a task."""
    uv = _uv()
    built = _run(
        uv, "build", "--wheel", "--out-dir", str(tmp_path / "dist"), str(ROOT), cwd=tmp_path
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("strego-*.whl")
    assert wheel.name.startswith(f"strego-{strego.__version__}-")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert set(DATA_FILES) <= names, set(DATA_FILES) - names
    assert not any(n.startswith(("tests/", "benchmarks/")) for n in names)
    venv = tmp_path / "venv"
    python = subprocess.run(
        [str(ROOT / "scripts/python")], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert _run(uv, "venv", str(venv), "--python", python, cwd=tmp_path).returncode == 0
    locked = tmp_path / "pylock.toml"
    exported = _run(
        uv, "export", "--frozen", "--format", "pylock.toml", "--extra", "ui", "--no-dev",
        "--no-emit-project", "--project", str(ROOT), "-o", str(locked), cwd=tmp_path,
    )  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    target = ("--python", str(venv / "bin/python"))
    installed = _run(uv, "pip", "install", *target, "-r", str(locked), cwd=tmp_path)
    assert installed.returncode == 0, installed.stderr
    installed = _run(uv, "pip", "install", *target, "--no-deps", str(wheel), cwd=tmp_path)
    assert installed.returncode == 0, installed.stderr

    redis = start_redis()
    try:
        ran = _run(str(venv / "bin/python"), "-c", SCRIPT, redis.url, cwd=tmp_path)
    finally:
        redis.cleanup()
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith("ran ") and str(venv) in ran.stdout  # not this checkout
    cli = _run(str(venv / "bin/strego"), "--version", cwd=tmp_path)
    assert cli.stdout.strip() == f"strego {strego.__version__}"
    assert sys.prefix != str(venv)
