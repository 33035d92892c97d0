"""The fast connection path and redis-py's stock one: chosen by a check, both work."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.connection import Connection
from redis.exceptions import ResponseError

import strego
from strego.broker.redis import fastconn
from strego.broker.redis.fastconn import FastConnection, lean_pipeline, missing_internals
from strego.testing import drain
from tests.conftest import wait_until


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
        "__init__(retry)",
        "pack_commands(commands)",
        "read_response()",
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


async def _fast_client(redis_url: str) -> Any:
    if not fastconn.FAST_CONNECTIONS:
        pytest.skip("this redis-py lacks the internals FastConnection needs")
    return Redis.from_url(redis_url, connection_class=FastConnection, socket_timeout=5)


async def test_lean_pipeline_returns_error_replies_in_place(redis_url: str) -> None:
    """Replies in order; an error reply is returned where it belongs, the others
    still read (as redis-py's pipeline with raise_on_error=False)."""
    client = await _fast_client(redis_url)
    replies = await lean_pipeline(
        client,
        [
            ("SET", "lean:a", "1"),
            ("INCR", "lean:missing:x y"),
            ("LPUSH", "lean:a", "x"),
            ("GET", "lean:a"),
        ],
    )
    assert replies is not None
    assert replies[0] is True or replies[0] == b"OK"
    assert replies[1] == 1
    assert isinstance(replies[2], ResponseError) and "WRONGTYPE" in str(replies[2])
    assert replies[3] == b"1"
    await client.aclose()


async def test_lean_pipeline_survives_a_killed_connection(redis_url: str) -> None:
    """The pooled connection is killed by the server between two pipelines: the next
    one reconnects (the connection's retry policy) and answers correctly."""
    client = await _fast_client(redis_url)
    found = await lean_pipeline(client, [("CLIENT", "ID")])
    assert found is not None
    admin = Redis.from_url(redis_url)
    assert await admin.client_kill_filter(_id=found[0]) == 1
    await admin.aclose()
    replies = await lean_pipeline(client, [("SET", "lean:k", "v"), ("GET", "lean:k")])
    assert replies is not None and replies[1] == b"v"
    await client.aclose()


async def test_lean_pipeline_cancelled_mid_reply_never_pools_a_dirty_connection(
    redis_url: str,
) -> None:
    """Cancelled while Redis is still answering (a blocked command): the connection
    is closed, not handed back with a reply still due, so the next caller reads its
    own reply."""
    client = await _fast_client(redis_url)
    pending = asyncio.ensure_future(
        lean_pipeline(client, [("SET", "lean:c", "first"), ("BLPOP", "lean:never", "2")])
    )

    async def blpop_waiting() -> bool:  # the first reply is in, the second is due
        return int((await admin.info("clients"))["blocked_clients"]) >= 1

    admin = Redis.from_url(redis_url)
    await wait_until(blpop_waiting, timeout=5, interval=0.02)
    await admin.aclose()
    pending.cancel()
    with pytest.raises(asyncio.CancelledError):
        await pending
    for n in range(20):  # every pooled connection would answer
        replies = await lean_pipeline(client, [("SET", "lean:c", str(n)), ("GET", "lean:c")])
        assert replies is not None and replies[1] == str(n).encode()
    await client.aclose()


async def test_lean_pipeline_declines_clients_it_cannot_serve(redis_url: str) -> None:
    """A client on redis-py's stock connections (or a single-connection client) is
    left to redis-py's pipeline: None."""
    stock = Redis.from_url(redis_url)
    assert await lean_pipeline(stock, [("PING",)]) is None
    await stock.aclose()
    if fastconn.FAST_CONNECTIONS:
        single = Redis.from_url(
            redis_url, connection_class=FastConnection, single_connection_client=True
        )
        await single.ping()
        assert await lean_pipeline(single, [("PING",)]) is None
        await single.aclose()
