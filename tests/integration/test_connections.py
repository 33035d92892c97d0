"""The fast connection path and redis-py's stock one: chosen by a check, both work."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio.connection import Connection

import strego
from strego.broker.redis import fastconn
from strego.broker.redis.fastconn import FastConnection, missing_internals
from strego.testing import drain


class _Bare:
    """A connection class from an imagined redis-py release that changed its internals."""

    def send_packed_command(self, command: bytes) -> None: ...

    def disconnect(self) -> None: ...


def test_check_names_every_missing_internal() -> None:
    """The import-time check lists what FastConnection needs and a redis-py lacks."""
    assert missing_internals(_Bare) == [
        "send_packed_command(command, check_health)",
        "pack_command(*args)",
        "disconnect(nowait)",
        "__init__(socket_timeout)",
    ]


def test_installed_redis_py_is_checked() -> None:
    """The flag the brokers consult is exactly the check's verdict on this redis-py."""
    assert fastconn.FAST_CONNECTIONS is not bool(missing_internals(Connection))
    expected = FastConnection if fastconn.FAST_CONNECTIONS else None
    assert fastconn.fast_connection_class() is expected


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "stock"])
async def test_tasks_run_on_either_connection(
    redis_url: str, prefix: str, fast: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Enqueue, process and acknowledge work the same on both connection classes."""
    if fast and not fastconn.FAST_CONNECTIONS:
        pytest.skip("this redis-py lacks the internals FastConnection needs")
    monkeypatch.setattr(fastconn, "FAST_CONNECTIONS", fast)
    broker = strego.RedisBroker(redis_url, prefix=prefix, group="conn")
    pool: Any = broker.redis.connection_pool
    assert (pool.connection_class is FastConnection) == fast
    done: list[int] = []
    server = strego.Server(broker, concurrency=4)

    @server.handle("add")
    async def add(payload: int) -> None:
        done.append(payload)

    async with strego.Client(broker) as client:
        await client.enqueue_many([strego.Task("add", n) for n in range(50)])
        await client.enqueue(strego.Task("add", 50))
        await drain(server)
    await broker.aclose()
    assert sorted(done) == list(range(51))
