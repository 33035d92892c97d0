"""CLI connections: passwords never printed, unreachable servers reported quickly."""

from __future__ import annotations

import socket
import time

import pytest

from strego.redaction import redact
from tests.cli.conftest import Cli


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("redis://:s3cret@cache:6379/0", "redis://:***@cache:6379/0"),
        ("rediss://app:p%40ss@cache/1", "rediss://app:***@cache/1"),
        ("redis+cluster://app:s3cret@h1:7000,h2:7001", "redis+cluster://app:***@h1:7000,h2:7001"),
        ("redis+sentinel://h1:26379,h2:26379/main", "redis+sentinel://h1:26379,h2:26379/main"),
        ("unix:///run/redis.sock", "unix:///run/redis.sock"),
    ],
)
def test_redact(url: str, shown: str) -> None:
    """Only the password part of a URL is masked, whatever the topology."""
    assert redact(url) == shown


async def test_errors_never_show_the_password(cli: Cli) -> None:
    """An unreachable server with a password in its URL: the error masks it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = await cli("stats", "--redis", f"redis://:hunter2@127.0.0.1:{port}/0", connect=False)
    assert result.code == 1
    assert "hunter2" not in result.err
    assert f"cannot reach Redis at redis://:***@127.0.0.1:{port}/0" in result.err


async def test_a_silent_server_times_out_within_seconds(cli: Cli) -> None:
    """A server that accepts but never answers fails in ~2 s (short socket timeout)."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        started = time.monotonic()
        result = await cli(
            "queues", "list", "--redis", f"redis://127.0.0.1:{port}/0", connect=False
        )
        elapsed = time.monotonic() - started
    assert result.code == 1
    assert "cannot reach Redis" in result.err
    assert elapsed < 6
