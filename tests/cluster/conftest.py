"""Fixtures for the multi-node suite: one Redis, a Redis Cluster, a Sentinel setup.

The cluster and the sentinel topology start once per session, and only when a test
asks for them. ``target`` parametrises a test over all three; ``queues`` gives queue
names that, on the cluster, live on three different masters (so every test there
crosses nodes).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest

import strego
from strego.embedded import EmbeddedRedis
from tests.support.topology import ClusterTopology, SentinelTopology

TOPOLOGIES = ("single", "cluster", "sentinel")
ServerFactory = Callable[..., Awaitable[strego.Server]]


@dataclasses.dataclass(frozen=True)
class Target:
    """Where a test runs: a URL and queue names suited to the topology."""

    name: str
    url: str
    queues: tuple[str, ...]
    replicas: int  # replicas per master, for wait_replicas
    replica_of: Callable[[str], int] | None = None  # port of a replica holding a key


@pytest.fixture(scope="session")
def cluster() -> Iterator[ClusterTopology]:
    topology = ClusterTopology(masters=3, replicas=1).start()
    yield topology
    topology.cleanup()


@pytest.fixture(scope="session")
def sentinel() -> Iterator[SentinelTopology]:
    topology = SentinelTopology().start()
    yield topology
    topology.cleanup()


def make_target(name: str, request: pytest.FixtureRequest) -> Target:
    if name == "cluster":
        cluster: ClusterTopology = request.getfixturevalue("cluster")
        return Target(name, cluster.url, tuple(cluster.queues_on_masters()), 1, cluster.replica_of)
    if name == "sentinel":
        sentinel: SentinelTopology = request.getfixturevalue("sentinel")
        return Target(
            name, sentinel.url, ("q0", "q1", "q2"), 1, lambda _key: sentinel.replica_port()
        )
    server: EmbeddedRedis = request.getfixturevalue("redis_server")
    return Target(name, server.url, ("q0", "q1", "q2"), 0)


@pytest.fixture(params=TOPOLOGIES)
def target(request: pytest.FixtureRequest) -> Target:
    return make_target(request.param, request)


@pytest.fixture
def queues(target: Target) -> list[str]:
    return list(target.queues)


@pytest.fixture
def prefix() -> str:
    return f"c{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def broker(target: Target, prefix: str) -> AsyncIterator[strego.RedisBroker]:
    broker = strego.RedisBroker(target.url, prefix=prefix, group="tests")
    yield broker
    await broker.aclose()


@pytest.fixture
async def client(broker: strego.RedisBroker) -> AsyncIterator[strego.Client]:
    async with strego.Client(broker) as client:
        yield client


@pytest.fixture
def inspector(broker: strego.RedisBroker) -> strego.Inspector:
    return strego.Inspector(broker)


@pytest.fixture
async def make_server(target: Target, prefix: str) -> AsyncIterator[ServerFactory]:
    """Start a Server (own broker) on the test's prefix: make_server(handlers, **options)."""
    started: list[tuple[strego.Server, strego.RedisBroker]] = []

    async def factory(
        handlers: dict[str, Callable[..., Any]],
        *,
        broker_options: dict[str, Any] | None = None,
        **options: Any,
    ) -> strego.Server:
        broker = strego.RedisBroker(
            target.url, prefix=prefix, group="tests", **(broker_options or {})
        )
        options.setdefault("retry_base", 0.05)
        options.setdefault("retry_max", 0.2)
        server = strego.Server(broker, **options)
        for task_type, fn in handlers.items():
            server.handle(task_type, fn)
        await server.start()
        started.append((server, broker))
        return server

    yield factory
    for server, broker in started:
        await server.stop()
        await broker.aclose()
