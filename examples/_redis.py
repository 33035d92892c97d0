"""Where the examples find Redis: $STREGO_REDIS_URL, else a private redis-server.

The private server (the ``strego[embedded]`` extra, or ``redis-server`` on PATH)
lives in a temp dir and is stopped when the example ends.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from strego.embedded import EmbeddedRedis


@contextlib.contextmanager
def redis_url() -> Iterator[str]:
    """Yield a Redis URL for the duration of the example."""
    url = os.environ.get("STREGO_REDIS_URL")
    if url:
        yield url
        return
    with EmbeddedRedis() as server:
        print(f"(started a private Redis at {server.url}; set STREGO_REDIS_URL to use yours)")
        yield server.url
