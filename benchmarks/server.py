"""The private redis-server every workload runs against, and what we ask it."""

from __future__ import annotations

import dataclasses
import shutil
from typing import Any

import redis

from strego.embedded import EmbeddedRedis


@dataclasses.dataclass(frozen=True, slots=True)
class Usage:
    cpu_s: float
    commands: dict[str, tuple[int, float]]  # name -> (calls, usec)


class PrivateRedis:
    """A redis-server started for this run only (``strego.embedded``); FLUSHALL between uses."""

    def __init__(self) -> None:
        self.server = EmbeddedRedis(binary=shutil.which("redis-server"))
        self.client: redis.Redis | None = None

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> PrivateRedis:
        self.server.start()
        self.client = redis.Redis.from_url(self.url)
        return self

    def info(self, section: str) -> dict[str, Any]:
        assert self.client is not None
        reply: dict[str, Any] = self.client.info(section)
        return reply

    def flush(self) -> None:
        assert self.client is not None
        self.client.flushall()
        self.client.execute_command("MEMORY", "PURGE")

    def used_memory(self) -> int:
        return int(self.info("memory")["used_memory"])

    @property
    def pid(self) -> int:
        process = self.server.process
        assert process is not None
        return process.pid

    def cpu_usage(self) -> Usage:
        """What Redis has spent so far: CPU seconds (user + sys, every thread) and the
        per-command calls and microseconds since the last :meth:`reset_commandstats`."""
        cpu = self.info("cpu")
        commands = {
            name.removeprefix("cmdstat_"): (int(v["calls"]), float(v["usec"]))
            for name, v in self.info("commandstats").items()
        }
        return Usage(float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"]), commands)

    def reset_commandstats(self) -> None:
        assert self.client is not None
        self.client.config_resetstat()

    def version(self) -> str:
        return str(self.info("server")["redis_version"])

    def stop(self) -> None:
        if self.client is not None:
            self.client.close()
        self.server.cleanup()
