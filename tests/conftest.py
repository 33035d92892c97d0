"""Fixtures: one private redis-server per test session, a fresh key prefix per test."""

from __future__ import annotations

import asyncio
import re
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator

import pydantic
import pytest
import redis

import strego
from strego.embedded import EmbeddedRedis
from tests.support.servers import redis_binary, start_redis


def pytest_report_header() -> list[str]:
    """Say which Redis server and client this run tests against (they change per run)."""
    binary = redis_binary()
    version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
    found = re.search(r"v=(\S+)", version)
    return [
        f"redis-server {found[1] if found else '?'} ({binary}), redis-py {redis.__version__}, "
        f"pydantic {pydantic.VERSION}"
    ]


@pytest.fixture(scope="session")
def redis_server() -> Iterator[EmbeddedRedis]:
    server = start_redis()
    yield server
    server.cleanup()


@pytest.fixture
def redis_url(redis_server: EmbeddedRedis) -> str:
    return redis_server.url


@pytest.fixture
def prefix() -> str:
    """A key prefix of its own for every test, so tests never see each other's keys."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def broker(redis_url: str, prefix: str) -> AsyncIterator[strego.RedisBroker]:
    broker = strego.RedisBroker(redis_url, prefix=prefix, group="tests")
    yield broker
    await broker.aclose()


@pytest.fixture
async def client(broker: strego.RedisBroker) -> AsyncIterator[strego.Client]:
    async with strego.Client(broker) as client:
        yield client


@pytest.fixture
def inspector(broker: strego.RedisBroker) -> strego.Inspector:
    return strego.Inspector(broker)


async def wait_until(predicate, timeout: float = 10.0, interval: float = 0.02) -> None:  # type: ignore[no-untyped-def]
    """Poll ``predicate`` (sync or async) until true; fail the test on timeout."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)
