"""The strego pytest plugin (strego.testing), as a user's test suite sees it."""

from __future__ import annotations

import pytest

_USER_TESTS = """
import strego
from strego.testing import drain


async def test_enqueue_and_drain(strego_client, strego_server, strego_inspector):
    server = strego_server(queues=["default"])
    sent = []

    @server.handle("email:send")
    async def send(payload: dict) -> None:
        sent.append(payload["to"])

    await strego_client.enqueue(strego.Task("email:send", {"to": "a@example.com"}))
    await drain(server)
    assert sent == ["a@example.com"]
    assert (await strego_inspector.queue_info("default")).processed == 1


async def test_fast_retries_by_default(strego_client, strego_server, strego_inspector):
    server = strego_server()

    @server.handle("boom")
    async def boom(task: strego.Task) -> None:
        raise RuntimeError("boom")

    await strego_client.enqueue(strego.Task("boom", max_retry=3))
    await drain(server, timeout=5)
    dead = await strego_inspector.dead_letters("default")
    assert [t.retry_count for t in dead] == [3]


async def test_each_test_has_its_own_keys(strego_inspector):
    assert await strego_inspector.queues() == []


def test_one_redis_per_session(strego_redis):
    assert strego_redis.url.startswith("redis://127.0.0.1:")
"""


@pytest.mark.parametrize("mode", ["auto", "strict"])
def test_fixtures_run_a_users_tests(pytester: pytest.Pytester, mode: str) -> None:
    """strego_client/strego_server/drain work in a fresh project, auto and strict mode."""
    pytester.makeini(f"[pytest]\nasyncio_mode = {mode}\n")
    body = _USER_TESTS
    if mode == "strict":
        body = "import pytest\npytestmark = pytest.mark.asyncio\n" + body
    pytester.makepyfile(test_user=body)
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)


def test_plugin_starts_nothing_unless_asked(pytester: pytest.Pytester) -> None:
    """A project that never asks for the fixtures runs with no Redis at all."""
    pytester.makeconftest(
        """
import strego.embedded

def _missing():
    raise FileNotFoundError("no redis-server found (simulated)")

strego.embedded.find_redis_server = _missing
"""
    )
    pytester.makepyfile(
        test_plain="""
import sys

def test_no_redis_needed():
    assert "redis" not in sys.modules


def test_asks_for_redis(strego_redis):
    pass
"""
    )
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*strego_redis could not start a redis-server*simulated*"])
