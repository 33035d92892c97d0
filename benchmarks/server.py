"""The private redis-server every workload runs against, and what we ask it."""

from __future__ import annotations

import shutil
from typing import Any

import redis

from strego.embedded import EmbeddedRedis


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

    def version(self) -> str:
        return str(self.info("server")["redis_version"])

    def stop(self) -> None:
        if self.client is not None:
            self.client.close()
        self.server.cleanup()
