"""``strego enqueue``: every option lands on the task; bad input is one clear error."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

import strego
from strego.embedded import free_port
from tests.cli.conftest import Cli


async def test_enqueue_with_every_option(cli: Cli, inspector: strego.Inspector) -> None:
    """Queue, priority, retries, timeout, unique key and labels reach the stored task."""
    result = await cli(
        "enqueue",
        "email:send",
        "--payload",
        '{"to": "a@example.com"}',
        "--queue",
        "mail",
        "--priority",
        "7",
        "--max-retry",
        "5",
        "--timeout",
        "30s",
        "--unique-key",
        "welcome-a",
        "--label",
        "team=growth",
        "--label",
        "source=cli",
        "--json",
    )
    assert result.code == 0, result.err
    info = json.loads(result.out)
    assert info["queue"] == "mail"
    assert info["state"] == "pending"
    record = await inspector.get_task(info["id"])
    assert record is not None
    assert record.payload == {"to": "a@example.com"}
    assert (record.priority, record.max_retry, record.timeout) == (7, 5, 30.0)
    assert record.unique_key == "welcome-a"
    assert record.labels == {"team": "growth", "source": "cli"}


async def test_enqueue_prints_a_readable_line(cli: Cli) -> None:
    """Without --json the id, queue and state are in one sentence."""
    result = await cli("enqueue", "ping")
    assert result.code == 0
    assert result.out.startswith("enqueued ping as ")
    assert "in queue 'default' (pending)" in result.out


async def test_enqueue_scheduled(cli: Cli, inspector: strego.Inspector) -> None:
    """--process-in schedules the task; --process-at takes an aware ISO time."""
    result = await cli("enqueue", "later", "--process-in", "1h", "--json")
    info = json.loads(result.out)
    assert info["state"] == "scheduled"
    record = await inspector.get_task(info["id"])
    assert record is not None
    assert record.process_at is not None
    assert 3590 < record.process_at.timestamp() - time.time() <= 3600
    result = await cli("enqueue", "later", "--process-at", "2999-01-01T00:00:00+00:00", "--json")
    assert json.loads(result.out)["process_at"].startswith("2999-01-01T00:00:00")


async def test_payload_from_file_and_stdin(
    cli: Cli, inspector: strego.Inspector, tmp_path: Path
) -> None:
    """--payload @FILE reads a file; --payload - reads standard input."""
    path = tmp_path / "payload.json"
    path.write_text('{"id": 42}')
    from_file = json.loads((await cli("enqueue", "a", "--payload", f"@{path}", "--json")).out)
    from_stdin = json.loads(
        (await cli("enqueue", "b", "--payload", "-", "--json", stdin="[1, 2]")).out
    )
    record = await inspector.get_task(from_file["id"])
    assert record is not None
    assert record.payload == {"id": 42}
    record = await inspector.get_task(from_stdin["id"])
    assert record is not None
    assert record.payload == [1, 2]


async def test_duplicate_unique_key_is_an_error(cli: Cli) -> None:
    """A second enqueue with a held unique key fails and names the holder."""
    first = json.loads((await cli("enqueue", "x", "--unique-key", "k", "--json")).out)
    result = await cli("enqueue", "x", "--unique-key", "k")
    assert result.code == 1
    assert result.err == (
        f"strego: error: duplicate: unique key 'k' in queue 'default' is held by task "
        f"{first['id']}\n"
    )


@pytest.mark.parametrize(
    ("argv", "message", "code"),
    [
        (["--payload", '{"to":'], "--payload is not valid JSON: Expecting value", 2),
        (["--payload", "@/nonexistent/p.json"], "cannot read --payload file", 1),
        (["--priority", "11"], "priority must be an integer 0-10", 2),
        (["--process-at", "tomorrow"], "--process-at is not an ISO 8601 time", 2),
        (["--process-at", "2999-01-01T00:00:00"], "--process-at needs a timezone", 2),
        (["--queue", "has space"], "queue must be 1-200 characters", 2),
    ],
)
async def test_bad_input_is_one_line(
    cli: Cli, inspector: strego.Inspector, argv: list[str], message: str, code: int
) -> None:
    """Invalid options fail before anything is enqueued, with one line on stderr: exit 2
    when the command line is wrong, 1 when something outside it failed (a file)."""
    result = await cli("enqueue", "x", *argv)
    assert result.code == code
    assert result.err.startswith(f"strego: error: {message}")
    assert result.err.count("\n") == 1
    assert await inspector.queues() == []


async def test_bad_label_and_duration_are_usage_errors(cli: Cli) -> None:
    """argparse rejects a label without '=' and an unknown duration unit (exit 2)."""
    assert (await cli("enqueue", "x", "--label", "oops")).code == 2
    assert (await cli("enqueue", "x", "--process-in", "5 parsecs")).code == 2


async def test_unreachable_redis_fails_fast(cli: Cli) -> None:
    """Nothing listening: a clear error within a few seconds, not a hang or traceback."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    started = time.monotonic()
    result = await cli("enqueue", "x", "--redis", url, connect=False)
    assert time.monotonic() - started < 5
    assert result.code == 1
    assert result.err.startswith(f"strego: error: cannot reach Redis at {url}")


async def test_bad_url_is_one_line(cli: Cli) -> None:
    """A URL with the wrong scheme is refused before connecting (a usage error)."""
    result = await cli("enqueue", "x", "--redis", "localhost:6379", connect=False)
    assert result.code == 2
    assert "Redis URL must start with one of redis://" in result.err


async def test_redis_url_from_the_environment(
    cli: Cli, redis_url: str, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """STREGO_REDIS_URL is the default for --redis."""
    monkeypatch.setenv("STREGO_REDIS_URL", redis_url)
    result = await cli("enqueue", "x", "--prefix", prefix, "--group", "tests", connect=False)
    assert result.code == 0, result.err
