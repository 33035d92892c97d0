"""Real multi-node Redis topologies on loopback ports: a Redis Cluster, a Sentinel setup.

Every node is a real ``redis-server`` in its own temp dir (the test suite's binary, see
``servers.redis_binary``), so tests can kill a master and watch the others take over.

- :class:`ClusterTopology`: N masters sharing the 16384 slots evenly, optionally one
  replica each, joined with CLUSTER MEET / ADDSLOTS / REPLICATE (what
  ``redis-cli --cluster create`` does, without its one-second polling and without
  needing redis-cli next to the server binary).
- :class:`SentinelTopology`: a master, one replica and three sentinels (quorum 2).

Both wait until the topology is fully usable before returning from ``start()``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
from redis.crc import key_slot

from strego.embedded import EmbeddedRedis, _parent_death_signal, free_port
from tests.support.servers import redis_binary, redis_version

__all__ = ["ClusterTopology", "SentinelTopology", "wait_for"]

SLOTS = 16384
MASTER_NAME = "strego"
# Replicas sync at once (the default waits 5 s for more replicas to share a transfer).
_FAST_SYNC = ("--repl-diskless-sync-delay", "0")


def wait_for(what: str, predicate: Callable[[], bool], timeout_s: float = 30.0) -> None:
    """Poll ``predicate`` (errors count as "not yet") until true, else TimeoutError."""
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except (redis.RedisError, OSError) as exc:
            last_error = exc
        time.sleep(0.05)
    raise TimeoutError(f"{what}: not reached within {timeout_s}s (last error: {last_error})")


def _client(port: int) -> redis.Redis:
    return redis.Redis(port=port, socket_timeout=2, decode_responses=True)


def _info(port: int, section: str) -> dict[str, Any]:
    with _client(port) as c:
        info: dict[str, Any] = c.info(section)
    return info


# -- Redis Cluster -------------------------------------------------------------------


def _port_with_free_bus() -> int:
    """A free port below 55536 whose port + 10000 is free too (Redis 6.2's cluster bus)."""
    for _ in range(200):
        port = free_port()
        if port < 55536 and _is_free(port + 10000):
            return port
    raise RuntimeError("no free port with a free cluster bus port (port + 10000)")


def _is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def start_on_free_port(server: EmbeddedRedis, new_ports: Callable[[], None]) -> None:
    """Start ``server``; if its port was taken meanwhile (free_port only probes), pick
    new ports with ``new_ports`` and try again. Other test runs share this machine."""
    for attempt in range(5):
        try:
            server.start()
            return
        except RuntimeError as exc:
            if "Address already in use" not in str(exc) or attempt == 4:
                raise
            new_ports()


class ClusterNode(EmbeddedRedis):
    """One cluster-enabled redis-server; restartable on the same port and directory."""

    def __init__(self, node_timeout_ms: int) -> None:
        super().__init__(binary=redis_binary())
        self.node_timeout_ms = node_timeout_ms
        self.node_id = ""
        self.new_ports()

    def new_ports(self) -> None:
        if redis_version() >= (7, 0):
            self.port, self.bus_port = free_port(), free_port()
            bus = ["--cluster-port", str(self.bus_port)]
        else:  # Redis 6.2 has no cluster-port: its bus is always port + 10000
            self.port = _port_with_free_bus()
            self.bus_port, bus = self.port + 10000, []
        self.extra_args = [
            "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf",
            *bus,
            "--cluster-node-timeout", str(self.node_timeout_ms),
            *_FAST_SYNC,
        ]  # fmt: skip

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def command(self, *args: object) -> object:
        with _client(self.port) as c:
            return c.execute_command(*args)


@dataclasses.dataclass
class ClusterTopology:
    """A Redis Cluster of ``masters`` shards, each with ``replicas`` replicas (0 or 1)."""

    masters: int = 3
    replicas: int = 0
    node_timeout_ms: int = 5000
    nodes: list[ClusterNode] = dataclasses.field(default_factory=list)

    @property
    def url(self) -> str:
        """A ``redis+cluster://`` URL naming every node as a startup node."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def start(self) -> ClusterTopology:
        self.nodes = [
            ClusterNode(self.node_timeout_ms) for _ in range(self.masters * (1 + self.replicas))
        ]
        try:
            for node in self.nodes:
                start_on_free_port(node, node.new_ports)
                node.node_id = str(node.command("CLUSTER", "MYID"))
            self._assign_slots()
            self._meet()
            self._attach_replicas()
            self.wait_ok()
        except BaseException:
            self.cleanup()
            raise
        return self

    def _assign_slots(self) -> None:
        per = SLOTS // self.masters
        for i, node in enumerate(self.nodes[: self.masters]):
            last = SLOTS - 1 if i == self.masters - 1 else (i + 1) * per - 1
            node.command("CLUSTER", "ADDSLOTS", *range(i * per, last + 1))  # 6.2: no ADDSLOTSRANGE
            node.command("CLUSTER", "SET-CONFIG-EPOCH", i + 1)

    def _meet(self) -> None:
        first = self.nodes[0]

        def everyone_known() -> bool:
            known = str(first.command("CLUSTER", "NODES"))
            for node in self.nodes[1:]:
                # (Re)introduce nodes the first one does not know: on a loaded machine a
                # handshake can time out (after cluster-node-timeout) and be dropped.
                if f":{node.port}@" not in known:
                    first.command("CLUSTER", "MEET", "127.0.0.1", node.port, node.bus_port)
            for node in self.nodes:
                lines = str(node.command("CLUSTER", "NODES")).splitlines()
                if len(lines) != len(self.nodes) or "handshake" in " ".join(lines):
                    return False
            return True

        wait_for("cluster nodes meet", everyone_known)

    def _attach_replicas(self) -> None:
        for i, replica in enumerate(self.nodes[self.masters :]):
            master = self.nodes[i % self.masters]
            replica.command("CLUSTER", "REPLICATE", master.node_id)

    def wait_ok(self, timeout_s: float = 30.0) -> None:
        """Until every live node says cluster_state:ok and agrees on all slot owners."""

        def ok() -> bool:
            live = [n for n in self.nodes if n.alive]
            owners = set()
            for node in live:
                if "cluster_state:ok" not in str(node.command("CLUSTER", "INFO")):
                    return False
                owners.add(self._slot_owners(node))
            if len(owners) != 1:
                return False
            replicas = [n for n in live if _info(n.port, "replication").get("role") == "slave"]
            if len(replicas) != len(live) - self.masters:  # a replica not attached yet
                return False
            return all(
                _info(n.port, "replication").get("master_link_status") == "up" for n in replicas
            )

        wait_for("cluster state ok", ok, timeout_s)

    @staticmethod
    def _slot_owners(node: ClusterNode) -> tuple[tuple[int, int, int], ...]:
        slots = node.command("CLUSTER", "SLOTS")
        assert isinstance(slots, list)
        return tuple(sorted((int(s[0]), int(s[1]), int(s[2][1])) for s in slots))

    def master_ports(self) -> list[int]:
        """Ports of the live masters, in slot order."""
        node = next(n for n in self.nodes if n.alive)
        return [port for _, _, port in self._slot_owners(node)]

    def node_by_port(self, port: int) -> ClusterNode:
        return next(n for n in self.nodes if n.port == port)

    def master_of(self, key: str) -> ClusterNode:
        """The node currently serving ``key``'s slot."""
        slot = key_slot(key.encode())
        node = next(n for n in self.nodes if n.alive)
        for first, last, port in self._slot_owners(node):
            if first <= slot <= last:
                return self.node_by_port(port)
        raise LookupError(f"no node serves slot {slot}")

    def queues_on_masters(self, stem: str = "q") -> list[str]:
        """One queue name per master (in slot order) whose hash tag ``{name}`` lands on it."""
        owners = self._slot_owners(next(n for n in self.nodes if n.alive))
        found: dict[int, str] = {}
        i = 0
        while len(found) < len({port for _, _, port in owners}):
            name = f"{stem}{i}"
            slot = key_slot(name.encode())
            port = next(p for first, last, p in owners if first <= slot <= last)
            found.setdefault(port, name)
            i += 1
        return [found[port] for port in dict.fromkeys(p for _, _, p in owners)]

    def replica_of(self, key: str) -> int:
        """Port of a replica of the master serving ``key``."""
        replication = _info(self.master_of(key).port, "replication")
        return int(replication["slave0"]["port"])

    def kill(self, node: ClusterNode) -> None:
        node.stop(kill=True)

    def wait_failover(self, old: ClusterNode, timeout_s: float = 30.0) -> None:
        """Until ``old``'s slots are served by another node and the cluster is ok again."""
        wait_for(
            "cluster failover",
            lambda: old.port not in self.master_ports() and self._live_ok(),
            timeout_s,
        )

    def _live_ok(self) -> bool:
        return all(
            "cluster_state:ok" in str(n.command("CLUSTER", "INFO")) for n in self.nodes if n.alive
        )

    def cleanup(self) -> None:
        for node in self.nodes:
            node.cleanup()


# -- Sentinel --------------------------------------------------------------------------


class SentinelProcess:
    """One redis-server in sentinel mode: it needs a writable config file of its own."""

    def __init__(self, master_port: int, down_after_ms: int) -> None:
        self.port = 0
        self.master_port = master_port
        self.down_after_ms = down_after_ms
        self.directory = tempfile.mkdtemp(prefix="strego-sentinel-")
        self.config = Path(self.directory) / "sentinel.conf"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        for _ in range(5):  # a new port when the probed one was taken meanwhile
            self.port = free_port()
            self.config.write_text(
                f"port {self.port}\n"
                "bind 127.0.0.1\n"
                "daemonize no\n"
                f"dir {self.directory}\n"
                f"logfile {self.directory}/sentinel.log\n"
                f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.master_port} 2\n"
                f"sentinel down-after-milliseconds {MASTER_NAME} {self.down_after_ms}\n"
                f"sentinel failover-timeout {MASTER_NAME} 10000\n"
                f"sentinel parallel-syncs {MASTER_NAME} 1\n"
            )
            self.process = subprocess.Popen(
                [redis_binary(), str(self.config), "--sentinel"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_parent_death_signal(),
            )
            wait_for("sentinel up", self._up, 10)
            if self.process.poll() is None:
                return
        raise RuntimeError(f"sentinel could not start: see {self.directory}/sentinel.log")

    def _up(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            return True  # exited (port taken): start() tries another port
        return _info(self.port, "server").get("redis_mode") == "sentinel"

    def master(self) -> int:
        """Port of the master this sentinel currently reports."""
        with _client(self.port) as c:
            _, port = c.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME)
        return int(port)

    def cleanup(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


@dataclasses.dataclass
class SentinelTopology:
    """A master, one replica and three sentinels watching them (quorum 2)."""

    down_after_ms: int = 5000
    servers: list[EmbeddedRedis] = dataclasses.field(default_factory=list)
    sentinels: list[SentinelProcess] = dataclasses.field(default_factory=list)

    @property
    def url(self) -> str:
        ports = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{ports}/{MASTER_NAME}"

    def start(self) -> SentinelTopology:
        try:
            master = EmbeddedRedis(binary=redis_binary(), extra_args=_FAST_SYNC)
            self.servers = [master]
            start_on_free_port(master, lambda: setattr(master, "port", free_port()))
            replica = EmbeddedRedis(
                binary=redis_binary(),
                extra_args=[*_FAST_SYNC, "--replicaof", "127.0.0.1", str(master.port)],
            )
            self.servers.append(replica)
            start_on_free_port(replica, lambda: setattr(replica, "port", free_port()))
            self.sentinels = [SentinelProcess(master.port, self.down_after_ms) for _ in range(3)]
            for sentinel in self.sentinels:
                sentinel.start()
            self.wait_stable(master.port)
        except BaseException:
            self.cleanup()
            raise
        return self

    def wait_stable(self, master_port: int, timeout_s: float = 30.0) -> None:
        """Until the replica is in sync and every sentinel knows the master, its replica
        and the other two sentinels (needed to agree on a failover)."""

        def stable() -> bool:
            if _info(master_port, "replication").get("connected_slaves") != 1:
                return False
            for sentinel in self.sentinels:
                with _client(sentinel.port) as c:
                    raw = c.execute_command("SENTINEL", "MASTER", MASTER_NAME)
                # A flat list on older redis-py, a dict of strings on newer ones.
                pairs = zip(raw[::2], raw[1::2], strict=True) if isinstance(raw, list) else ()
                fields = raw if isinstance(raw, dict) else dict(pairs)
                if (
                    int(fields["port"]) != master_port
                    or str(fields["num-slaves"]) != "1"
                    or str(fields["num-other-sentinels"]) != "2"
                    or "s_down" in str(fields["flags"])
                ):
                    return False
            replica = self.server_by_port(self.replica_port())
            return _info(replica.port, "replication").get("master_link_status") == "up"

        wait_for("sentinel topology stable", stable, timeout_s)

    def master_port(self) -> int:
        return self.sentinels[0].master()

    def replica_port(self) -> int:
        master = self.master_port()
        return next(s.port for s in self.servers if s.port != master)

    def server_by_port(self, port: int) -> EmbeddedRedis:
        return next(s for s in self.servers if s.port == port)

    def kill_master(self) -> EmbeddedRedis:
        """SIGKILL the current master; returns it (stopped) so it can be restarted."""
        old = self.server_by_port(self.master_port())
        old.stop(kill=True)
        return old

    def wait_failover(self, old_port: int, timeout_s: float = 30.0) -> int:
        """Until every sentinel names a new master and it accepts writes; its port."""

        def promoted() -> bool:
            ports = {s.master() for s in self.sentinels}
            if len(ports) != 1 or old_port in ports:
                return False
            return _info(ports.pop(), "replication").get("role") == "master"

        wait_for("sentinel failover", promoted, timeout_s)
        return self.master_port()

    def restart_as_replica(self, old: EmbeddedRedis) -> None:
        """Bring a killed master back as a replica of the new one (then :meth:`wait_stable`).

        Only call this after :meth:`wait_failover`: an empty old master that came back
        as a master would be resynced *from* (and wipe) the replica. Call it from the
        main thread, so the server dies with the test run (see ``strego.embedded``).
        """
        # As an operator would: restart it as a replica right away (the sentinels would
        # convert it too, but only at their next 10 s INFO round).
        old.extra_args = [*_FAST_SYNC, "--replicaof", "127.0.0.1", str(self.master_port())]
        old.start()

    def cleanup(self) -> None:
        for sentinel in self.sentinels:
            with contextlib.suppress(Exception):
                sentinel.cleanup()
        for server in self.servers:
            server.cleanup()
