"""Every example in examples/ runs as written and shows what it promises."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from strego.embedded import free_port
from tests.conftest import wait_until
from tests.examples.conftest import EXAMPLES, example_env, run_example
from tests.store.conftest import Databases


def test_every_example_is_tested() -> None:
    """Each examples/*.py (but the helper) has a test here."""
    source = Path(__file__).read_text()
    for script in EXAMPLES.glob("*.py"):
        if not script.name.startswith("_"):
            assert f'"{script.name}"' in source, f"{script.name} has no test"


def test_basic_with_an_embedded_redis(tmp_path: Path) -> None:
    """Without STREGO_REDIS_URL the example starts its own Redis and completes 3 tasks."""
    out = run_example("basic.py", tmp_path)
    assert "started a private Redis" in out
    assert len(re.findall(r"sent 'Welcome!' to user\d@example.com", out)) == 3
    assert out.rstrip().endswith("done: all 3 tasks completed")


def test_basic_with_your_redis(tmp_path: Path, redis_url: str) -> None:
    """With STREGO_REDIS_URL the example uses that Redis."""
    out = run_example("basic.py", tmp_path, STREGO_REDIS_URL=redis_url)
    assert "started a private Redis" not in out
    assert "done: all 3 tasks completed" in out


def test_typed_payloads(tmp_path: Path) -> None:
    """Model, dataclass, TypedDict and bytes decode; an invalid payload is dead at once."""
    out = run_example("typed_payloads.py", tmp_path)
    for line in [
        "order 1: 19.99 EUR for a@b.c",
        "resize https://example.com/cat.png to 640px",
        "ping example.com:443",
        "stored 11 raw bytes",
        "invalid payload dead-lettered at once (validation):",
        "validation error",
    ]:
        assert line in out


def test_scheduled(tmp_path: Path) -> None:
    """Scheduled tasks run within a second of their due time; a cancelled one never runs."""
    out = run_example("scheduled.py", tmp_path)
    lateness = [int(ms) for ms in re.findall(r"\((\d+) ms after due\)", out)]
    assert len(lateness) == 2
    assert all(ms < 1000 for ms in lateness)
    assert "cancel the one-hour reminder: True" in out
    assert "the cancelled reminder is cancelled" in out


def test_retries(tmp_path: Path) -> None:
    """Backoff retries, RetryAfter, SkipRetry, exhaustion and retry from the dead letters."""
    out = run_example("retries.py", tmp_path)
    assert {"flaky attempt 0", "flaky attempt 1", "flaky attempt 2"} <= set(out.splitlines())
    assert "rate-limited attempt 1" in out
    assert "card:charge is dead (skip_retry)" in out
    assert "gateway:call is dead (exhausted) after 2 retries" in out
    assert "retried from the dead letters: completed" in out


def test_crash_recovery(tmp_path: Path) -> None:
    """A SIGKILLed worker's task is reclaimed and finished by another worker."""
    out = run_example("crash_recovery.py", tmp_path)
    assert "task is active on worker-A; killing worker A with SIGKILL" in out
    assert "[worker A] finished" not in out
    assert "[worker B] finished holiday.mp4" in out
    assert "task completed by worker-B" in out


def test_custom_serializer(tmp_path: Path) -> None:
    """Default JSON, msgpack and a custom serializer all round-trip; zlib is smallest."""
    out = run_example("custom_serializer.py", tmp_path)
    sizes = {
        name: int(size) for name, size in re.findall(r"(\S+(?: \(default\))?): enqueued (\d+)", out)
    }
    assert set(sizes) == {"json (default)", "msgpack", "json+zlib"}
    assert sizes["json+zlib"] < sizes["msgpack"] < sizes["json (default)"]
    assert out.count("handled: 200 points") == 3


@pytest.mark.postgres
def test_postgres_history(tmp_path: Path, databases: Databases) -> None:
    """The history store records a task's timeline (pending, active, retry, completed)."""
    out = run_example("postgres_history.py", tmp_path, STREGO_POSTGRES_DSN=databases.create())
    assert "schema migrations applied: [1, 2, 3]" in out  # 0002: results, 0003: workflows
    timeline = out.split("timeline of", 1)[1]
    states = re.findall(r"^\s+[\d:.]+\s+(\w+)", timeline, flags=re.MULTILINE)
    assert states == ["pending", "active", "retry", "active", "completed"]
    assert "completed invoices in history: 3" in out


async def test_fastapi_app(tmp_path: Path) -> None:
    """The FastAPI example enqueues, rejects a duplicate, runs the task, serves the UI."""
    port = free_port()
    proc = _spawn_fastapi_app(tmp_path, port)
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=5) as http:
            await _until_up(http, proc)
            created = await http.post("/signup", json={"email": "ada@example.com"})
            assert created.status_code == 202
            task_id = created.json()["task_id"]
            duplicate = await http.post("/signup", json={"email": "ada@example.com"})
            assert duplicate.status_code == 409
            assert task_id in duplicate.json()["detail"]

            async def completed() -> bool:
                status = await http.get(f"/tasks/{task_id}")
                return bool(status.json()["state"] == "completed")

            await wait_until(completed)
            assert (await http.get("/tasks/01NOPE")).status_code == 404
            ui = await http.get("/strego/")
            assert ui.status_code == 200
            assert 'href="/strego/' in ui.text
        proc.send_signal(signal.SIGINT)
        # uvicorn 0.29-0.3x re-raises SIGINT after its graceful shutdown; later ones exit 0.
        assert await asyncio.to_thread(proc.wait, 30) in (0, -signal.SIGINT)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def _spawn_fastapi_app(cwd: Path, port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(EXAMPLES / "fastapi_app.py"), "--port", str(port)],
        cwd=cwd,
        env=example_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


async def _until_up(http: httpx.AsyncClient, proc: subprocess.Popen[str]) -> None:
    for _ in range(300):
        if proc.poll() is not None:
            raise AssertionError(f"fastapi_app.py exited: {proc.communicate()[1]}")
        try:
            await http.get("/docs")
            return
        except httpx.TransportError:
            await asyncio.sleep(0.05)
    raise AssertionError("fastapi_app.py did not start listening")


async def test_results_fastapi(tmp_path: Path) -> None:
    """The results example answers a quote within its timeout, hands back a task id when
    the work is slow (fetched later), and reports a refused request and unknown ids."""
    port = free_port()
    proc = _spawn(tmp_path, "results_fastapi.py", port)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            await _until_up(http, proc)
            quote = await http.post("/quotes", json={"sku": "chair", "quantity": 3})
            assert (quote.status_code, quote.json()) == (
                200,
                {"sku": "chair", "quantity": 3, "total": 148.5},
            )
            slow = await http.post("/quotes?slow=true", json={"sku": "lamp", "quantity": 1})
            assert slow.status_code == 202
            task_id = slow.json()["task_id"]
            assert (await http.get(f"/quotes/{task_id}")).status_code == 202

            async def ready() -> bool:
                return (await http.get(f"/quotes/{task_id}")).status_code == 200

            await wait_until(ready, timeout=15)
            assert (await http.get(f"/quotes/{task_id}")).json()["total"] == 22.0
            refused = await http.post("/quotes", json={"sku": "sofa", "quantity": 1})
            assert refused.status_code == 422 and "skip_retry" in refused.text
            assert (await http.get("/quotes/01NOPE")).status_code == 404
        proc.send_signal(signal.SIGINT)
        # uvicorn 0.29-0.3x re-raises SIGINT after its graceful shutdown; later ones exit 0.
        assert await asyncio.to_thread(proc.wait, 30) in (0, -signal.SIGINT)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def _spawn(cwd: Path, name: str, port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(EXAMPLES / name), "--port", str(port)],
        cwd=cwd,
        env=example_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_limits(tmp_path: Path) -> None:
    """Without limits the fake API refuses calls; with a RateLimit and a per-tenant
    ConcurrencyLimit across two workers, every call succeeds and none is retried."""
    out = run_example("limits.py", tmp_path)
    refused = re.search(r"without limits: (\d+) of 20 calls got 429", out)
    assert refused and int(refused.group(1)) > 0
    assert "with limits: 30 of 30 calls succeeded, 0 got 429" in out
    assert "retried: 0, dead: 0" in out
    peak = re.search(r"at most (\d+) exports at once per tenant", out)
    assert peak and 1 <= int(peak.group(1)) <= 2
    rate = re.search(r"30 calls in [\d.]+s: ([\d.]+) a second", out)
    assert rate and float(rate.group(1)) <= 5.0


def test_periodic(tmp_path: Path) -> None:
    """Two workers share an every-second schedule: each tick runs once; DST ticks shown."""
    out = run_example("periodic.py", tmp_path)
    assert "report tick: Sun 29 Mar 03:00 CEST" in out  # 02:30 does not exist that day
    assert "report tick: Sat 28 Mar 02:30 CET" in out
    ran = re.findall(r"worker-[ab] ran (periodic:heartbeat-1s:\d+)", out)
    assert len(ran) == 4 and len(set(ran)) == 4
    assert "4 ticks, 4 distinct: each ran exactly once" in out
    assert "schedule reports:daily: 30 2 * * * (Europe/Berlin), next" in out


def test_workflows(tmp_path: Path) -> None:
    """Fan-out/fan-in: the chord's zip gets every thumbnail in order; a corrupt image
    cancels zip and notify (upstream_failed); retrying it completes the flow."""
    out = run_example("workflows.py", tmp_path)
    assert "zip ready: 2 thumbnails, 4096 bytes" in out
    assert "notify was cancelled (upstream_failed): a thumbnail failed" in out
    assert "workflow state: failed; thumbnail=completed, zip=cancelled, notify=cancelled" in out
    assert out.rstrip().endswith("after the retry: zip ready: 5 thumbnails, 10240 bytes")
