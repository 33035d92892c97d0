"""Fixtures of the fault suite: a private redis-server and a worker fleet per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from strego.embedded import EmbeddedRedis
from tests.faults.harness import Fleet
from tests.faults.worker_app import WorkerSpec
from tests.support.servers import start_redis


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "redis_args(*args): extra redis-server arguments for fault_redis"
    )


@pytest.fixture
def fault_redis(request: pytest.FixtureRequest) -> Iterator[EmbeddedRedis]:
    """A redis-server of this test's own: restarts and INFO numbers stay private.

    ``@pytest.mark.redis_args("--appendonly", "yes")`` passes server arguments.
    """
    marker = request.node.get_closest_marker("redis_args")
    server = start_redis(*(marker.args if marker else ()))
    yield server
    server.cleanup()


@pytest.fixture
def fleet(fault_redis: EmbeddedRedis, prefix: str, tmp_path: Path) -> Iterator[Fleet]:
    """Worker processes on ``fault_redis``; every one left running is killed at the end."""
    base = WorkerSpec(
        redis_url=fault_redis.url,
        prefix=prefix,
        log_dir=str(tmp_path / "exec"),
        consumer="unset",
    )
    fleet = Fleet(base, tmp_path)
    yield fleet
    fleet.close()
