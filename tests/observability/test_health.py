"""/healthz says what it promises: starting, ok, Redis silent, loops stopped."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket

import httpx
import pytest

import strego
from strego.errors import ConfigurationError
from strego.worker import probes
from tests.conftest import wait_until
from tests.support.servers import start_redis


async def _health(http: httpx.AsyncClient, server: strego.Server) -> tuple[int, str]:
    response = await http.get(f"http://127.0.0.1:{server.probe_ports['/healthz']}/healthz")
    return response.status_code, response.json()["status"]


async def test_healthy_then_redis_silent(monkeypatch: pytest.MonkeyPatch) -> None:
    """200 while heartbeats reach Redis; 503 once Redis has been silent too long."""
    monkeypatch.setattr(probes, "REDIS_SILENCE_S", 1.0)
    redis_server = start_redis()
    broker = strego.RedisBroker(redis_server.url, socket_timeout=0.5)
    server = strego.Server(broker, health_port=0)
    server.config = dataclasses.replace(server.config, heartbeat_interval_s=0.1)  # not an option
    try:
        async with httpx.AsyncClient(timeout=5) as http:
            await server.start()
            assert await _health(http, server) == (200, "ok")
            redis_server.stop(kill=True)

            async def silent() -> bool:
                code, status = await _health(http, server)
                return code == 503 and "Redis has not answered" in status

            await wait_until(silent, timeout=10)
            await server.stop()
    finally:
        await server.stop()
        await broker.aclose()
        redis_server.cleanup()


async def test_starting_while_redis_is_unreachable() -> None:
    """A worker still waiting for Redis at start answers 503 "starting" (its port is
    up before Redis is), and the probe goes away when it stops."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    broker = strego.RedisBroker(f"redis://127.0.0.1:{closed_port}", socket_timeout=0.5)
    server = strego.Server(broker, health_port=0)
    starting = asyncio.create_task(server.start())
    try:
        await wait_until(lambda: "/healthz" in server.probe_ports)
        port = server.probe_ports["/healthz"]
        async with httpx.AsyncClient(timeout=5) as http:
            response = await http.get(f"http://127.0.0.1:{port}/healthz")
            assert response.status_code == 503
            assert response.json()["status"].startswith("starting")
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting
            with pytest.raises(httpx.ConnectError):
                await http.get(f"http://127.0.0.1:{port}/healthz")
    finally:
        starting.cancel()
        await broker.aclose()


async def test_stopped_loops_are_unhealthy(broker: strego.RedisBroker) -> None:
    """If the fetch loop ended (a bug), the worker is not alive whatever Redis says."""
    server = strego.Server(broker, health_port=0, metrics_port=0)
    async with server, httpx.AsyncClient(timeout=5) as http:
        assert server.probe_ports["/metrics"] == server.probe_ports["/healthz"]  # one port
        assert await _health(http, server) == (200, "ok")
        engine = server._engine
        assert engine is not None and engine._fetcher is not None
        engine._fetcher.cancel()
        await wait_until(lambda: engine._fetcher is not None and engine._fetcher.done())
        assert await _health(http, server) == (503, "stopped: the fetch or outcome loop ended")


async def test_separate_ports_and_bad_options(broker: strego.RedisBroker) -> None:
    server = strego.Server(broker, health_port=0, metrics_port=0)
    server.reconfigure(metrics_port=0, health_port=0)
    with pytest.raises(ConfigurationError, match="metrics_port must be a port"):
        strego.Server(broker, metrics_port=70000)
    with pytest.raises(ConfigurationError, match="health_port must be a port"):
        strego.Server(broker, health_port=True)
    with pytest.raises(ConfigurationError, match="health_port must be a port"):
        server.reconfigure(health_port=-1)
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        refused = strego.Server(broker, metrics_port=taken)
        with pytest.raises(ConfigurationError, match=f"cannot serve /metrics on port {taken}"):
            await refused.start()
        assert not refused.running


def test_health_answers() -> None:
    from strego.worker.engine import Liveness

    assert probes.health(None)[0] == 503
    assert probes.health(Liveness(ready=True, working=True, redis_silent_s=0.5))[0] == 200
    assert probes.health(Liveness(ready=True, working=True, redis_silent_s=None))[0] == 503
    assert probes.health(Liveness(ready=True, working=False, redis_silent_s=0.5))[0] == 503
    assert probes.health(Liveness(ready=True, working=True, redis_silent_s=31))[0] == 503
