"""Cluster and sentinel URLs, clients passed in, and what counts as a transient error."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio import RedisCluster
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.connection import Connection
from redis.asyncio.sentinel import Sentinel
from redis.exceptions import ConnectionError as RedisConnectionError

import strego
from strego.broker.redis.connection import is_transient
from strego.broker.redis.fastconn import FastConnection
from strego.broker.redis.topology import SentinelMaster, parse_topology_url
from tests.support.servers import start_redis
from tests.support.topology import ClusterTopology, SentinelTopology

pytestmark = pytest.mark.cluster


def test_cluster_url_parts() -> None:
    """A cluster URL gives every startup node, credentials and TLS."""
    parsed = parse_topology_url("rediss+cluster://app:s%40cret@10.0.0.1:7000,10.0.0.2,[::1]:7002")
    assert parsed.kind == "cluster"
    assert parsed.hosts == (("10.0.0.1", 7000), ("10.0.0.2", 6379), ("::1", 7002))
    assert (parsed.username, parsed.password, parsed.tls) == ("app", "s@cret", True)


def test_sentinel_url_parts() -> None:
    """A sentinel URL names the sentinels, the master, the db and sentinel credentials."""
    parsed = parse_topology_url("redis+sentinel://:pw@s1:26380,s2/mymaster/3?sentinel_password=spw")
    assert parsed.kind == "sentinel"
    assert parsed.hosts == (("s1", 26380), ("s2", 26379))
    assert (parsed.master, parsed.db, parsed.password) == ("mymaster", 3, "pw")
    assert (parsed.sentinel_password, parsed.tls) == ("spw", False)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis+cluster://h:1/2", "only db 0"),
        ("redis+cluster://h:1?x=1", "unknown cluster URL options"),
        ("redis+cluster://h:port", "bad host:port"),
        ("redis+sentinel://h:1", "names the master"),
        ("redis+sentinel://h:1/m/x", "names the master"),
        ("redis+sentinel://h:1/m?password=1", "unknown sentinel URL options"),
    ],
)
def test_bad_topology_urls(url: str, message: str) -> None:
    """A malformed cluster or sentinel URL is refused at construction, saying why."""
    with pytest.raises(ValueError, match=message):
        strego.RedisBroker(url)


async def test_urls_build_raw_clients_with_timeouts() -> None:
    """Both URLs give clients that never decode replies and keep the socket timeouts."""
    cluster = strego.RedisBroker("redis+cluster://127.0.0.1:7000", socket_timeout=2.5)
    assert isinstance(cluster.redis, RedisCluster)
    kwargs = cluster.redis.get_connection_kwargs()
    assert (kwargs["decode_responses"], kwargs["socket_timeout"]) == (False, 2.5)
    assert kwargs["socket_connect_timeout"] == 2.5
    sentinel = strego.RedisBroker("redis+sentinel://127.0.0.1:26379/m/1", socket_timeout=2.5)
    assert isinstance(sentinel.redis, SentinelMaster)
    pool_kwargs = sentinel.redis.connection_pool.connection_kwargs
    assert (pool_kwargs["decode_responses"], pool_kwargs["socket_timeout"]) == (False, 2.5)
    assert pool_kwargs["db"] == 1
    await cluster.aclose()
    await sentinel.aclose()


async def test_topology_clients_use_fast_connections(
    cluster: ClusterTopology, sentinel: SentinelTopology
) -> None:
    """Cluster and sentinel URLs get strego's FastConnection on every node (the cluster
    path matches one Redis in speed only with it: see docs/cluster.md)."""
    broker = strego.RedisBroker(cluster.url)
    await broker.known_queues()  # discovers every node
    nodes = broker.redis.get_nodes()
    assert len(nodes) >= 3  # the masters (replicas too, on some redis-py versions)
    assert all(node.connection_class is FastConnection for node in nodes)
    used = [c for node in nodes for c in node._connections]  # redis-py internals: a canary
    assert used and all(isinstance(c, FastConnection) for c in used)
    await broker.aclose()
    managed = strego.RedisBroker(sentinel.url)
    await managed.known_queues()
    pool = managed.redis.connection_pool
    assert issubclass(pool.connection_class, FastConnection)
    await managed.aclose()


async def test_existing_cluster_client_is_used_not_closed(
    cluster: ClusterTopology, prefix: str
) -> None:
    """A RedisCluster passed in does the work and stays open after broker.aclose()."""
    port = cluster.master_ports()[0]
    own: Any = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", port)])
    broker = strego.RedisBroker(own, prefix=prefix)
    async with strego.Client(broker) as client:
        info = await client.enqueue(strego.Task("t", queue="elsewhere"))
    await broker.aclose()
    assert await own.hexists(broker.keys("elsewhere").index, info.id)
    await own.aclose()


async def test_existing_sentinel_client_is_used_not_closed(
    sentinel: SentinelTopology, prefix: str
) -> None:
    """A client from Sentinel.master_for works as is and stays open after aclose()."""
    sentinel_class: Any = Sentinel  # typed in some redis-py releases, not others
    manager = sentinel_class([("127.0.0.1", s.port) for s in sentinel.sentinels])
    own: Any = manager.master_for("strego")
    broker = strego.RedisBroker(own, prefix=prefix)
    async with strego.Client(broker) as client:
        info = await client.enqueue(strego.Task("t"))
    await broker.aclose()
    assert await own.hexists(broker.keys("default").index, info.id)
    await own.aclose()
    for client_of_sentinel in manager.sentinels:
        await client_of_sentinel.aclose()


async def test_connection_closed_under_a_command_is_transient() -> None:
    """A command on a connection closed by another coroutine is retried, whichever way
    the installed redis-py reports it (7.x: AttributeError, 8.x: ConnectionError)."""
    connection = Connection()  # never connected: no writer, as after a forced close
    with pytest.raises((AttributeError, RedisConnectionError)) as caught:
        await connection._send_packed_command([b"PING"])
    assert is_transient(caught.value)


def test_attribute_error_counts_only_from_redis_connection_code() -> None:
    """An AttributeError raised inside redis-py's connection module (a reader/writer
    cleared under a command) is transient; one from anywhere else is a bug."""
    namespace: dict[str, Any] = {}
    source = "def write(writer):\n    writer.writelines([b'PING'])\n"
    exec(compile(source, "/site-packages/redis/asyncio/connection.py", "exec"), namespace)
    with pytest.raises(AttributeError) as caught:
        namespace["write"](None)
    assert is_transient(caught.value)
    assert not is_transient(AttributeError("'NoneType' object has no attribute 'x'"))


async def test_master_refusing_writes_is_unavailable(prefix: str) -> None:
    """A master short of replicas (min-replicas-to-write) makes enqueue raise
    BrokerUnavailableError after its retries, like any outage."""
    server = start_redis("--min-replicas-to-write", "1")
    broker = strego.RedisBroker(server.url, prefix=prefix, enqueue_attempts=2)
    try:
        async with strego.Client(broker) as client:
            with pytest.raises(strego.BrokerUnavailableError, match="NOREPLICAS"):
                await client.enqueue(strego.Task("t"))
    finally:
        await broker.aclose()
        server.cleanup()
