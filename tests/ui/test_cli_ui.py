"""``strego ui``: safe defaults, clear errors, and a real server run as a user would."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys

import httpx
import pytest

import strego
from strego.cli.errors import UsageError
from strego.cli.main import main
from strego.cli.ui_cmd import check_exposure, is_loopback, parse_basic_auth
from tests.ui.conftest import free_port


def test_exposure_rules() -> None:
    """Loopback needs nothing; any other address needs auth or --insecure."""
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.com")
    check_exposure("127.0.0.1", has_auth=False, insecure=False)
    check_exposure("0.0.0.0", has_auth=True, insecure=False)
    check_exposure("0.0.0.0", has_auth=False, insecure=True)
    with pytest.raises(ValueError, match=r"refusing to listen on 0\.0\.0\.0"):
        check_exposure("0.0.0.0", has_auth=False, insecure=False)
    assert parse_basic_auth("admin:pa:ss") == ("admin", "pa:ss")
    with pytest.raises(UsageError, match="USER:PASSWORD"):
        parse_basic_auth("admin")


def test_refuses_public_address_without_auth(capsys: pytest.CaptureFixture[str]) -> None:
    """`strego ui --host 0.0.0.0` without auth exits 2 (a usage error), one clear line."""
    assert main(["ui", "--host", "0.0.0.0", "--redis", "redis://127.0.0.1:1/0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert err.startswith("strego: error: refusing to listen on 0.0.0.0 without --auth")


def test_unreachable_redis_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """A Redis that cannot be reached is reported, not a traceback."""
    port = free_port()
    assert main(["ui", "--redis", f"redis://127.0.0.1:{port}/0", "--port", "0"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"strego: error: cannot reach Redis at redis://127.0.0.1:{port}/0")
    assert "\n" not in err


def test_busy_port_is_one_line(
    capsys: pytest.CaptureFixture[str], redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A port already in use: one line and exit 1 (not uvicorn's traceback and exit 3),
    before any startup line claims the UI is up."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["ui", "--redis", redis_url, "--port", str(port)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        f"strego: error: cannot listen on 127.0.0.1:{port} (Address already in use): "
        "pass --port to pick another"
    )
    assert "strego UI on" not in caplog.text


async def test_serves_the_ui_until_interrupted(
    redis_url: str, prefix: str, client: strego.Client
) -> None:
    """The command serves pages and API on the given port (with auth) and exits 0 on SIGINT."""
    await client.enqueue(strego.Task("t", queue="cli-queue"))
    port = free_port()
    command = [
        sys.executable, "-m", "strego.cli.main", "ui",
        "--redis", redis_url, "--prefix", prefix, "--group", "tests",
        "--port", str(port), "--auth", "admin:pw", "--read-only",
    ]  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            response = await _first_response(http, "/api/queues", auth=("admin", "pw"))
            assert [q["name"] for q in response.json()["queues"]] == ["cli-queue"]
            assert (await http.get("/")).status_code == 401
            page = await http.get("/queues", auth=("admin", "pw"))
            assert "read-only" in page.text and "cli-queue" in page.text
        proc.send_signal(signal.SIGINT)
        output, _ = await asyncio.wait_for(proc.communicate(), 15)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.communicate()
    assert proc.returncode == 0, output
    assert f"strego UI on http://127.0.0.1:{port} (auth: basic, read-only)" in output.decode()


async def _first_response(http: httpx.AsyncClient, path: str, **kw: object) -> httpx.Response:
    for _ in range(200):
        try:
            return await http.get(path, **kw)  # type: ignore[arg-type]
        except httpx.TransportError:
            await asyncio.sleep(0.05)
    raise AssertionError("strego ui did not start within 10 s")
