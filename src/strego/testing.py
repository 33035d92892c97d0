"""Helpers for your own test suites: ``drain`` a Server, and pytest fixtures.

``await strego.testing.drain(server)`` runs a Server in-process until its queues
are quiet, so a test can enqueue, drain, then assert on what the handlers did.

This module is also a pytest plugin (registered through the ``pytest11`` entry
point, so installing strego is enough). Its fixtures start nothing until a test
asks for them:

=====================  ========  ==========================================================
fixture                scope     gives
=====================  ========  ==========================================================
``strego_redis``       session   a private redis-server (``EmbeddedRedis``; ``.url``)
``strego_broker``      test      a ``RedisBroker`` on it with a fresh key prefix
``strego_client``      test      a ``Client`` on that broker
``strego_inspector``   test      an ``Inspector`` on that broker
``strego_server``      test      a factory: ``strego_server(queues=[...], **options)``
                                 returns a ``Server`` sharing the broker's prefix and
                                 group (fast retries by default); stopped after the test
=====================  ========  ==========================================================

The async fixtures need pytest-asyncio (any mode). Importing this module is cheap:
Redis clients and the worker load only when a fixture or ``drain`` runs.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from strego.embedded import EmbeddedRedis

if TYPE_CHECKING:
    from strego.broker.redis import RedisBroker
    from strego.client import Client
    from strego.inspector import Inspector
    from strego.worker import Server

__all__ = [
    "drain",
    "strego_broker",
    "strego_client",
    "strego_inspector",
    "strego_redis",
    "strego_server",
]

_POLL_S = 0.02

#: What ``strego_server`` changes from the Server defaults, to keep tests fast.
TEST_SERVER_DEFAULTS: dict[str, Any] = {
    "retry_base": 0.01,
    "retry_max": 0.1,
    "shutdown_timeout": 5.0,
    "cleanup_interval": None,
}


async def drain(server: Server, *, timeout: float = 10.0) -> None:
    """Run ``server`` until its queues are drained, then return.

    Drained means, in every queue of the server: nothing waiting, nothing running,
    no scheduled task already due, no retry due before the timeout (a task that
    fails and retries in a moment is followed to its end), no workflow record left
    to apply (a released dependent is followed too), and every outcome written to
    Redis. Tasks scheduled for later stay scheduled.

    Starts the server if it is not running, and then stops it before returning;
    a server that was already running is left running. Raises ``TimeoutError``
    (saying what is left) if the queues are not drained within ``timeout`` seconds.
    """
    from strego.broker.redis import RedisBroker

    if not isinstance(server.broker, RedisBroker):
        raise TypeError("drain needs a Server on a strego.RedisBroker")
    started = not server.running
    if started:
        await server.start()
    try:
        await _wait_drained(server, server.broker, timeout)
    finally:
        if started:
            await server.stop()


async def _wait_drained(server: Server, broker: RedisBroker, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        left = await _work_left(server, broker, max(0.0, deadline - loop.time()))
        if not left:
            return
        if loop.time() >= deadline:
            raise TimeoutError(f"queues not drained after {timeout:g}s: {'; '.join(left)}")
        await asyncio.sleep(_POLL_S)


async def _work_left(server: Server, broker: RedisBroker, horizon_s: float) -> list[str]:
    """One line per queue that still has work, e.g. ``default: 2 pending, 1 active``."""
    seconds, micros = await broker.redis.time()
    now_ms = int(seconds) * 1000 + int(micros) // 1000
    left = []
    for queue in server.config.queues:
        keys = broker.keys(queue)
        # One MULTI, so the snapshot is atomic: read separately, a retry the scheduler
        # moves into its stream between the two reads is seen in neither place. A queue's
        # keys share one cluster slot, so this works on a cluster too. Acknowledged
        # entries are deleted, so a stream's length is its waiting + running tasks.
        pipe = broker.redis.pipeline(transaction=True)
        for stream in keys.streams:
            pipe.xlen(stream)
            pipe.xpending(stream, broker.group)
        pipe.zcount(keys.scheduled, "-inf", now_ms)
        pipe.zcount(keys.retry, "-inf", now_ms + int(horizon_s * 1000))
        pipe.xlen(keys.flow_outbox)  # workflow finishes not applied yet (deleted once they are)
        *streams, due, retries, flow_records = await pipe.execute()
        in_streams = sum(streams[0::2])
        active = sum(int(summary["pending"]) for summary in streams[1::2])
        counts = {
            "pending": in_streams - active,
            "active": active,
            "due": due,
            "retry": retries,
            "workflow records": flow_records,
        }
        busy = [f"{n} {what}" for what, n in counts.items() if n]
        if busy:
            left.append(f"{queue}: {', '.join(busy)}")
    if server.in_flight:
        left.append(f"{server.in_flight} handlers still running")
    return left


# -- pytest fixtures -----------------------------------------------------------


@pytest.fixture(scope="session")
def strego_redis() -> Iterator[EmbeddedRedis]:
    """A private redis-server for the test session, stopped (and removed) at the end."""
    try:
        server = EmbeddedRedis().start()
    except (FileNotFoundError, RuntimeError, TimeoutError) as exc:
        pytest.fail(f"strego_redis could not start a redis-server: {exc}", pytrace=False)
    yield server
    server.cleanup()


try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - the async fixtures need pytest-asyncio

    def _needs_asyncio(name: str) -> Any:
        def fixture() -> None:
            pytest.fail(f"{name} needs pytest-asyncio: pip install pytest-asyncio")

        fixture.__name__ = name
        return pytest.fixture(name=name)(fixture)

    strego_broker = _needs_asyncio("strego_broker")
    strego_client = _needs_asyncio("strego_client")
    strego_inspector = _needs_asyncio("strego_inspector")
    strego_server = _needs_asyncio("strego_server")
else:

    @pytest_asyncio.fixture
    async def strego_broker(strego_redis: EmbeddedRedis) -> AsyncIterator[RedisBroker]:
        """A RedisBroker with a key prefix of its own: tests never see each other's keys."""
        from strego.broker.redis import RedisBroker

        broker = RedisBroker(
            strego_redis.url, prefix=f"test-{uuid.uuid4().hex[:12]}", group="strego-tests"
        )
        yield broker
        await broker.aclose()

    @pytest_asyncio.fixture
    async def strego_client(strego_broker: RedisBroker) -> AsyncIterator[Client]:
        """A Client enqueueing through ``strego_broker``."""
        from strego.client import Client

        async with Client(strego_broker) as client:
            yield client

    @pytest_asyncio.fixture
    async def strego_inspector(strego_broker: RedisBroker) -> Inspector:
        """An Inspector over ``strego_broker``'s queues."""
        from strego.inspector import Inspector

        return Inspector(strego_broker)

    @pytest_asyncio.fixture
    async def strego_server(
        strego_broker: RedisBroker,
    ) -> AsyncIterator[Callable[..., Server]]:
        """Factory of Servers on the test's prefix and group; each has its own consumer."""
        from strego.broker.redis import RedisBroker
        from strego.worker import Server

        made: list[tuple[Server, RedisBroker]] = []

        def make(**options: Any) -> Server:
            # Same connection pool, prefix and group; a consumer name of its own.
            broker = RedisBroker(
                strego_broker.redis, prefix=strego_broker.config.prefix, group=strego_broker.group
            )
            server = Server(broker, **{**TEST_SERVER_DEFAULTS, **options})
            made.append((server, broker))
            return server

        yield make
        for server, broker in made:
            await server.stop()
            await broker.aclose()
