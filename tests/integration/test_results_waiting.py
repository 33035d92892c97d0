"""Waiting for results is pushed: many waiters, one connection, no polling."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

import strego
from tests.conftest import wait_until
from tests.integration.conftest import ServerFactory
from tests.integration.probes import redis_broker

WAITERS = 1000
NAME = "result-waiters"


@pytest.fixture
async def named_client(redis_url: str, prefix: str) -> AsyncIterator[strego.Client]:
    """A client whose every connection carries one name, so CLIENT LIST can count them."""
    redis = aioredis.Redis.from_url(redis_url, client_name=NAME)
    broker = strego.RedisBroker(redis, prefix=prefix, group="tests")
    async with strego.Client(broker) as client:
        yield client
    await broker.aclose()
    await redis.aclose()


async def connections(admin: Any) -> int:
    listing = await admin.client_list()
    return sum(1 for c in listing if c.get("name") == NAME)


async def commands_processed(admin: Any) -> int:
    return int((await admin.info("stats"))["total_commands_processed"])


async def test_a_thousand_waiters_share_one_connection(
    named_client: strego.Client, make_server: ServerFactory, redis_url: str
) -> None:
    """1 000 concurrent result() calls in one process: one pub/sub connection and one
    command connection, no polling while they wait, and every one answered."""
    client = named_client
    admin = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        infos = await client.enqueue_many([strego.Task("double", n) for n in range(WAITERS)])
        ids = [i.id for i in infos if isinstance(i, strego.TaskInfo)]
        waiters = [asyncio.create_task(client.result(i, timeout=60)) for i in ids]
        waiters_key = redis_broker(client).keys("default").waiters
        # Polled on another connection: the client's own must stay the waiter's alone.
        await wait_until(lambda: _registered(client, waiters_key, WAITERS, admin))
        assert await connections(admin) <= 2  # the pub/sub one and one for commands

        before = await commands_processed(admin)
        await asyncio.sleep(1.0)  # a quiet second: waiting costs Redis nothing
        assert await commands_processed(admin) - before < 10  # our own INFO calls

        async def double(payload: int) -> int:
            return payload * 2

        await make_server({"double": double}, concurrency=50)
        results = await asyncio.gather(*waiters)
        assert results == [2 * n for n in range(WAITERS)]
        assert await connections(admin) <= 2
        pool = redis_broker(client).redis.connection_pool
        # The pool never had to open more than one command connection plus pub/sub.
        assert len(pool._available_connections) + len(pool._in_use_connections) <= 2
        assert await admin.exists(waiters_key) == 0  # every lease removed
    finally:
        await admin.aclose()


async def _registered(client: strego.Client, key: str, n: int, redis: Any = None) -> bool:
    return int(await (redis or redis_broker(client).redis).zcard(key)) >= n


async def test_no_waiters_no_publish(
    client: strego.Client, make_server: ServerFactory, redis_url: str
) -> None:
    """Tasks nobody waits for publish nothing on the results channel."""
    admin = aioredis.Redis.from_url(redis_url)
    listener: Any = admin.pubsub()  # PubSub.aclose is untyped in redis-py 7.2
    channel = redis_broker(client).keys("default").waiters
    await listener.subscribe(channel)
    heard: list[Any] = []

    async def value(payload: Any) -> int:
        return 1

    try:
        await make_server({"value": value})
        infos = await client.enqueue_many([strego.Task("value") for _ in range(50)])
        watched = await client.enqueue(strego.Task("value", process_in=0.3))
        assert await client.result(watched.id, timeout=10) == 1
        while (message := await listener.get_message(timeout=0.2)) is not None:
            if message["type"] == "message":
                heard.append(message["data"])
        assert heard == [f"v:{watched.id}\njson\n1".encode()]
        del infos
    finally:
        await listener.aclose()
        await admin.aclose()


async def test_same_task_many_waiters_and_processes(
    client: strego.Client, make_server: ServerFactory, redis_url: str, prefix: str
) -> None:
    """Several waiters of one task, in this and another client, all get the result."""
    release = asyncio.Event()

    async def slow(payload: Any) -> str:
        await release.wait()
        return "done"

    await make_server({"slow": slow})
    other_broker = strego.RedisBroker(redis_url, prefix=prefix, group="tests")
    other = strego.Client(other_broker)
    try:
        info = await client.enqueue(strego.Task("slow"))
        waits = [asyncio.create_task(c.result(info.id, timeout=10)) for c in (client,) * 3]
        waits.append(asyncio.create_task(other.result(info.id, timeout=10)))
        key = redis_broker(client).keys("default").waiters
        await wait_until(lambda: _registered(client, key, 1))
        release.set()
        assert await asyncio.gather(*waits) == ["done"] * 4
    finally:
        await other_broker.aclose()


async def test_deleted_task_ends_the_wait(
    client: strego.Client, inspector: strego.Inspector
) -> None:
    """A waited-for task deleted by an admin: its waiter gets TaskNotFoundError now."""
    info = await client.enqueue(strego.Task("nobody-runs-this", process_in=3600))
    waiting = asyncio.create_task(client.result(info.id, timeout=10))
    key = redis_broker(client).keys("default").waiters
    await wait_until(lambda: _registered(client, key, 1))
    assert await inspector.delete(info.id)
    with pytest.raises(strego.TaskNotFoundError):
        await waiting


async def test_waiter_survives_a_lost_subscription(
    client: strego.Client, make_server: ServerFactory, redis_url: str
) -> None:
    """The subscription is killed while a waiter waits: it reconnects, re-reads, and the
    result still arrives (also when the task finished while it was down)."""
    release = asyncio.Event()

    async def slow(payload: Any) -> int:
        await release.wait()
        return 7

    await make_server({"slow": slow})
    info = await client.enqueue(strego.Task("slow"))
    waiting = asyncio.create_task(client.result(info.id, timeout=20))
    key = redis_broker(client).keys("default").waiters
    await wait_until(lambda: _registered(client, key, 1))
    admin = aioredis.Redis.from_url(redis_url)
    try:
        await admin.client_kill_filter(_type="pubsub")
        release.set()  # finishes while the subscription is down (or coming back)
        assert await waiting == 7
    finally:
        await admin.aclose()
