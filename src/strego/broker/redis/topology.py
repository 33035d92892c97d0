"""Redis Cluster and Sentinel: URL parsing, client construction, per-topology helpers.

strego runs unchanged on one Redis, a Sentinel-managed master and a Redis Cluster
because every key of a queue shares the hash tag ``{queue}`` and every script touches
one queue. What differs per topology lives here:

- ``redis+cluster://[user:password@]host:port,host:port,...`` builds a
  ``redis.asyncio.RedisCluster`` (``rediss+cluster://`` for TLS); commands and
  scripts are routed by key, pipelines are split per node by redis-py.
- ``redis+sentinel://[user:password@]host:port,host:port/master-name[/db]`` builds a
  client whose connection pool asks the sentinels for the current master on every
  (re)connect, so it follows a failover (``rediss+sentinel://`` for TLS; the query
  options ``sentinel_username`` / ``sentinel_password`` authenticate to the sentinels).
- :func:`open_pubsub`: pub/sub on a cluster uses a plain connection to one node
  (a classic PUBLISH reaches every node of a cluster), a random node each time so a
  resubscription after a node failure lands elsewhere.
- :func:`wait_for_replicas`: WAIT only counts writes made *on the connection that
  runs it*, so each master gets a small write and a WAIT on one connection.
- :func:`server_info`: INFO of every master of a cluster, summed where that means
  something.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import redis
from redis.asyncio import ConnectionPool, Redis, RedisCluster
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.sentinel import Sentinel, SentinelManagedConnection
from redis.exceptions import SlotNotCoveredError, TryAgainError

from strego.broker.redis.fastconn import FastConnection, fast_connection_class
from strego.errors import ConfigurationError
from strego.redaction import redact

__all__ = [
    "CLUSTER_SCHEMES",
    "SENTINEL_SCHEMES",
    "RedisClient",
    "TopologyURL",
    "make_topology_client",
    "masters_for",
    "open_pubsub",
    "parse_topology_url",
    "server_info",
    "wait_for_replicas",
]

log = logging.getLogger("strego")

#: What a RedisBroker talks to: one server (plain or Sentinel-managed) or a cluster.
RedisClient = Redis | RedisCluster

CLUSTER_SCHEMES = ("redis+cluster://", "rediss+cluster://")
SENTINEL_SCHEMES = ("redis+sentinel://", "rediss+sentinel://")
_SENTINEL_OPTIONS = ("sentinel_username", "sentinel_password")
_SYNC_TTL_MS = 60_000


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TopologyURL:
    """A parsed ``redis+cluster://`` or ``redis+sentinel://`` URL."""

    kind: str  # "cluster" or "sentinel"
    hosts: tuple[tuple[str, int], ...]
    tls: bool = False
    username: str | None = None
    password: str | None = None
    master: str = ""  # sentinel: the monitored master's name
    db: int = 0
    sentinel_username: str | None = None
    sentinel_password: str | None = None


def parse_topology_url(url: str) -> TopologyURL:
    """Parse a cluster or sentinel URL; ConfigurationError says what is wrong."""
    cluster = url.startswith(CLUSTER_SCHEMES)
    if not cluster and not url.startswith(SENTINEL_SCHEMES):
        raise ConfigurationError(f"not a cluster or sentinel URL: {redact(url)!r}")
    parts = urlsplit(url)
    userinfo, _, hostlist = parts.netloc.rpartition("@")
    username, _, password = userinfo.partition(":")
    default_port = 6379 if cluster else 26379
    hosts = tuple(_host_port(h, default_port, url) for h in hostlist.split(","))
    options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    common: dict[str, Any] = {
        "hosts": hosts,
        "tls": parts.scheme.startswith("rediss"),
        "username": unquote(username) or None,
        "password": unquote(password) or None,
    }
    path = [p for p in parts.path.split("/") if p]
    if cluster:
        if options:
            raise ConfigurationError(f"unknown cluster URL options {sorted(options)}")
        if path not in ([], ["0"]):
            raise ConfigurationError(f"a Redis Cluster has only db 0, got path {parts.path!r}")
        return TopologyURL(kind="cluster", **common)
    unknown = set(options) - set(_SENTINEL_OPTIONS)
    if unknown:
        raise ConfigurationError(
            f"unknown sentinel URL options {sorted(unknown)}; known: {', '.join(_SENTINEL_OPTIONS)}"
        )
    if len(path) not in (1, 2) or (len(path) == 2 and not path[1].isdigit()):
        raise ConfigurationError(
            "a sentinel URL names the master and optionally a db: "
            f"redis+sentinel://host:port,host:port/master-name[/db], got {redact(url)!r}"
        )
    return TopologyURL(
        kind="sentinel",
        master=unquote(path[0]),
        db=int(path[1]) if len(path) == 2 else 0,
        sentinel_username=options.get("sentinel_username"),
        sentinel_password=options.get("sentinel_password"),
        **common,
    )


def _host_port(item: str, default_port: int, url: str) -> tuple[str, int]:
    if item.startswith("["):  # [ipv6]:port
        host, _, rest = item[1:].partition("]")
        port = rest.removeprefix(":")
    else:
        host, _, port = item.partition(":")
    if not host or (port and not port.isdigit()):
        raise ConfigurationError(f"bad host:port {item!r} in {redact(url)!r}")
    return host, int(port) if port else default_port


def make_topology_client(url: str, *, socket_timeout_s: float) -> RedisClient:
    """A cluster or Sentinel-managed client for ``url``; never decodes responses."""
    parsed = parse_topology_url(url)
    connection: dict[str, Any] = {
        "decode_responses": False,  # stream entries may hold any bytes
        "socket_timeout": socket_timeout_s,
        "socket_connect_timeout": socket_timeout_s,
        "health_check_interval": 15,
        "username": parsed.username,
        "password": parsed.password,
    }
    if parsed.tls:
        connection["ssl"] = True
    if parsed.kind == "cluster":
        nodes = [ClusterNode(host, port) for host, port in parsed.hosts]
        _warn_old_cluster_client()
        cluster = RedisCluster(startup_nodes=nodes, **connection)
        if not parsed.tls:
            _use_fast_connections(cluster)
        return cluster
    sentinel_kwargs: dict[str, Any] = {
        "socket_timeout": socket_timeout_s,
        "socket_connect_timeout": socket_timeout_s,
        "username": parsed.sentinel_username,
        "password": parsed.sentinel_password,
    }
    if parsed.tls:
        sentinel_kwargs["ssl"] = True
    # Called through Any: redis-py types Sentinel.__init__ in some releases, not others,
    # and a type: ignore must not depend on which one is installed.
    sentinel_class: Any = Sentinel
    sentinel = sentinel_class(list(parsed.hosts), sentinel_kwargs=sentinel_kwargs, **connection)
    use_fast = not parsed.tls and fast_connection_class() is not None
    fast: dict[str, Any] = {"connection_class": FastSentinelConnection} if use_fast else {}
    client: SentinelMaster = sentinel.master_for(
        parsed.master, redis_class=SentinelMaster, db=parsed.db, **fast
    )
    client.sentinel_clients = list(sentinel.sentinels)
    return client


def _warn_old_cluster_client() -> None:
    """Say so when redis-py's async cluster client may never reconnect after a failover.

    Before redis-py 7.2 it drops a node from its startup nodes on every connection
    error and refills them only after a successful discovery, so an outage that
    reaches every node leaves it empty for good ("Redis Cluster cannot be connected.
    Please provide at least one reachable node: None"; redis-py #3693, fixed by #3917).
    Seen here with redis-py 5.0.8 in tests/cluster/test_failover.py.
    """
    found = re.match(r"(\d+)\.(\d+)", redis.__version__)
    if found and (int(found[1]), int(found[2])) < (7, 2):
        log.warning(
            "redis-py %s: its cluster client may not reconnect after a failover; "
            "use redis-py >= 7.2 with Redis Cluster",
            redis.__version__,
        )


def _use_fast_connections(cluster: RedisCluster) -> None:
    """Give a cluster's node connections strego's FastConnection (see fastconn.py).

    RedisCluster takes no connection class: it keeps one in the connection kwargs it
    hands every node it discovers, and has already built the startup nodes; both are
    set here. Measured with benchmarks/cluster_scaling.py: with it a one-master cluster
    enqueues and processes as fast as one Redis, without it 20-35 % slower (pure-Python
    command packing, a Task per write). A redis-py without these attributes keeps its
    own class; tests/cluster/test_urls.py notices.
    """
    kwargs = getattr(cluster, "connection_kwargs", None)
    manager = getattr(cluster, "nodes_manager", None)
    if not isinstance(kwargs, dict) or manager is None or fast_connection_class() is None:
        return
    kwargs["connection_class"] = FastConnection
    for node in manager.startup_nodes.values():
        node.connection_class = FastConnection


class FastSentinelConnection(FastConnection, SentinelManagedConnection):
    """A Sentinel-managed connection with FastConnection's cheaper writes."""


class SentinelMaster(Redis):
    """A client of the master a set of sentinels names; it also closes its sentinels.

    Its pool re-asks the sentinels for the master on every new connection and drops
    connections to a demoted master (redis-py turns READONLY into a ConnectionError),
    so after a failover the next attempt of any command reaches the new master.
    """

    sentinel_clients: Sequence[Redis] = ()  # set by make_topology_client

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        for client in self.sentinel_clients:
            await client.aclose()


# -- helpers the broker and admin use --------------------------------------------------


class _NodePubSub(PubSub):
    """Pub/sub on a private pool to one cluster node; closing it closes the pool."""

    async def aclose(self) -> None:
        close: Any = super().aclose  # typed in some redis-py releases, not others
        await close()
        await self.connection_pool.disconnect()


def open_pubsub(client: RedisClient) -> PubSub:
    """A PubSub for the queues' event channels on any topology.

    On a cluster a classic PUBLISH (also from inside a script) is broadcast to every
    node, so subscribing on one node hears all queues. A random node is picked each
    call, so the caller's resubscribe-on-error loop moves off a failed node.
    """
    if not isinstance(client, RedisCluster):
        return client.pubsub()
    # Before the first command the slot map is unknown: the startup nodes will do.
    nodes = client.get_nodes() or list(client.nodes_manager.startup_nodes.values())
    node: ClusterNode = random.choice(nodes)
    pool = ConnectionPool(connection_class=node.connection_class, **node.connection_kwargs)
    return _NodePubSub(connection_pool=pool)


async def wait_for_replicas(
    client: RedisClient, sync_keys: Sequence[str], replicas: int, timeout_ms: int
) -> int:
    """Block until ``replicas`` replicas of each master have this client's writes.

    WAIT counts only the writes made on its own connection, and a pool hands out
    any connection; so on each master (one ``sync_keys`` entry per master, in a slot
    it owns) a tiny write is sent right before WAIT on the same connection. The
    replication stream is ordered, so once a replica has that write it also has
    every write this client finished before. Returns the smallest count acknowledged.
    """
    if not sync_keys:
        return replicas
    for _ in range(3):
        pipe = client.pipeline(transaction=False)
        targets = []
        for key in sync_keys:
            pipe.set(key, b"1", px=_SYNC_TTL_MS)
            if isinstance(client, RedisCluster):
                # A keyless WAIT goes where told: to the SET's node, on its connection.
                targets.append((key, _node_of(client, key)))
                pipe.execute_command("WAIT", replicas, timeout_ms, target_nodes=targets[-1][1])
            else:
                pipe.execute_command("WAIT", replicas, timeout_ms)
        replies = await pipe.execute(raise_on_error=False)
        # A slot that moved meanwhile (a failover, resharding) had its SET redirected
        # (redis-py follows MOVED and updates its slot map) while its WAIT went to the
        # old node, maybe a replica now: that WAIT proved nothing, so ask again.
        if any(_node_of(client, k) != node for k, node in targets):  # type: ignore[arg-type]
            continue
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return min(int(r) for r in replies[1::2])
    raise TryAgainError("slots kept moving while waiting for replicas")


def masters_for(client: RedisClient, keys: Sequence[str]) -> list[str]:
    """One key per master among ``keys`` (all of them go to one master off-cluster)."""
    if not keys:
        return []
    if not isinstance(client, RedisCluster):
        return [keys[0]]
    chosen: dict[str, str] = {}
    for key in keys:
        chosen.setdefault(_node_of(client, key).name, key)
    return list(chosen.values())


def _node_of(client: RedisCluster, key: str) -> ClusterNode:
    node = client.get_node_from_key(key)
    if node is None:  # only possible when asking for a replica
        not_covered: Any = SlotNotCoveredError  # typed in some redis-py releases only
        raise not_covered(f"no node serves {key!r}")
    return node


async def server_info(client: RedisClient) -> dict[str, Any]:
    """INFO of the server, or of every cluster master with memory and clients summed."""
    if not isinstance(client, RedisCluster):
        info: dict[str, Any] = await client.info()
        return info
    replies: dict[str, Any] = await client.info(target_nodes=RedisCluster.PRIMARIES)
    # One reply per master, keyed by node name; a one-master cluster gives it bare.
    infos = [replies] if "redis_version" in replies else list(replies.values())
    merged = dict(infos[0])
    for field in ("used_memory", "connected_clients"):
        merged[field] = sum(int(i.get(field, 0)) for i in infos)
    merged["used_memory_human"] = _human_bytes(merged["used_memory"])
    merged["uptime_in_seconds"] = min(int(i.get("uptime_in_seconds", 0)) for i in infos)
    merged["cluster_masters"] = len(infos)
    return merged


def _human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "K", "M", "G"):
        if size < 1024:
            return f"{size:.2f}{unit}"
        size /= 1024
    return f"{size:.2f}T"
