"""Error paths shared by every command: bad URLs, unreachable Redis, bad worker targets."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from strego.embedded import free_port
from tests.cli.conftest import Cli

REDIS_COMMANDS = [
    ["enqueue", "x"],
    ["stats"],
    ["queues", "list"],
    ["queues", "pause", "default"],
    ["queues", "resume", "default"],
    ["queues", "purge", "default", "--yes"],
    ["dead", "list", "default"],
    ["dead", "retry", "default", "01ABC"],
    ["dead", "retry-all", "default"],
    ["dead", "delete", "default", "01ABC"],
    ["dead", "purge", "default", "--yes"],
    ["task", "get", "01ABC"],
    ["task", "cancel", "01ABC"],
]


@pytest.mark.parametrize("argv", REDIS_COMMANDS, ids=" ".join)
async def test_bad_url(cli: Cli, argv: list[str]) -> None:
    """A URL that is not a Redis URL: one line, exit 2 (the command line is wrong)."""
    result = await cli(*argv, "--redis", "localhost:6379", connect=False)
    assert result.code == 2
    assert result.err.startswith("strego: error: Redis URL must start with one of redis://")
    assert result.err.count("\n") == 1


@pytest.mark.parametrize("argv", REDIS_COMMANDS, ids=" ".join)
async def test_unreachable_redis(cli: Cli, argv: list[str]) -> None:
    """Nothing listening: 'cannot reach Redis at URL', exit 1."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    result = await cli(*argv, "--redis", url, connect=False)
    assert result.code == 1
    assert result.err.startswith(f"strego: error: cannot reach Redis at {url}: ")
    assert result.err.count("\n") == 1


@pytest.mark.parametrize(
    ("target", "message", "code"),
    [
        ("no_colon", "expected MODULE:ATTRIBUTE, got 'no_colon'", 2),
        ("missing_module_xyz:server", "No module named 'missing_module_xyz'", 1),
        ("app_for_cli_test:nope", "module 'app_for_cli_test' has no attribute 'nope'", 1),
        (
            "app_for_cli_test:not_a_server",
            "app_for_cli_test:not_a_server is not a strego.Server",
            1,
        ),
    ],
)
async def test_worker_bad_target(
    cli: Cli,
    target: str,
    message: str,
    code: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """strego worker with a target that is not a Server: one line naming the problem."""
    (tmp_path / "app_for_cli_test.py").write_text("not_a_server = 42\n")
    root = logging.getLogger()  # `strego worker` configures logging: undo it afterwards
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    monkeypatch.setattr(root, "level", root.level)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    result = await cli("worker", target, connect=False)
    assert result.code == code
    assert result.err.startswith("strego: error: ")
    assert message in result.err
