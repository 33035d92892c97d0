"""Every ``strego`` command answers --help, with examples, and errors are one line."""

from __future__ import annotations

import argparse

import pytest

import strego
from strego.cli.errors import UsageError
from strego.cli.main import build_parser
from tests.cli.conftest import Cli


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path of the parser tree, e.g. ("dead", "retry-all")."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append((*path, name))
                found.extend(_commands(sub, (*path, name)))
    return found


COMMANDS = _commands(build_parser())
TOP_LEVEL = sorted({path[0] for path in COMMANDS})


def test_the_command_tree_is_complete() -> None:
    """The admin, dev and history commands are all registered."""
    for path in [
        ("enqueue",),
        ("stats",),
        ("queues", "list"),
        ("queues", "pause"),
        ("queues", "resume"),
        ("queues", "purge"),
        ("queues", "delete"),
        ("dead", "list"),
        ("dead", "retry"),
        ("dead", "retry-all"),
        ("dead", "delete"),
        ("dead", "purge"),
        ("task", "get"),
        ("task", "cancel"),
        ("worker",),
        ("dev",),
    ]:
        assert path in COMMANDS


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
async def test_help_everywhere(cli: Cli, path: tuple[str, ...]) -> None:
    """``strego ... --help`` exits 0, prints a usage line and says what the command does
    (a description paragraph right after the usage)."""
    result = await cli(*path, "--help", connect=False)
    assert result.code == 0
    assert f"usage: strego {' '.join(path)}" in " ".join(result.out.split())
    paragraphs = result.out.split("\n\n")
    assert len(paragraphs) > 1 and not paragraphs[1].lstrip().startswith(
        ("positional arguments", "options", "actions")
    ), f"strego {' '.join(path)} --help has no description"


@pytest.mark.parametrize("command", TOP_LEVEL)
async def test_every_command_shows_examples(cli: Cli, command: str) -> None:
    """Each command's help (its own or its actions') shows example invocations."""
    texts = []
    for path in [p for p in COMMANDS if p[0] == command]:
        texts.append((await cli(*path, "--help", connect=False)).out)
    helps = "\n".join(texts)
    assert "example" in helps
    assert f"strego {command}" in helps.split("example", 1)[1]


async def test_no_command_prints_help(cli: Cli) -> None:
    """Bare ``strego`` lists the commands and exits 2."""
    result = await cli(connect=False)
    assert result.code == 2
    assert "enqueue" in result.out


async def test_errors_are_one_line_without_traceback(cli: Cli) -> None:
    """A failing command prints ``strego: error: ...`` once, no traceback."""
    result = await cli("stats", "--redis", "http://nope", connect=False)
    assert result.code == 2  # a usage error, still one line
    assert result.err.count("\n") == 1
    assert result.err.startswith("strego: error: Redis URL must start with")
    assert "Traceback" not in result.err


async def test_debug_shows_the_traceback(cli: Cli) -> None:
    """``strego --debug`` lets the exception through for a full traceback (its cause is
    the library's own error)."""
    with pytest.raises(UsageError, match="Redis URL must start with") as raised:
        await cli("--debug", "stats", "--redis", "http://nope", connect=False)
    assert isinstance(raised.value.__cause__, strego.ConfigurationError)


MINE = ("enqueue", "stats", "queues", "dead", "task", "dev")


@pytest.mark.parametrize(
    "path", [p for p in COMMANDS if p[0] in MINE and p not in {("queues",), ("dead",), ("task",)}]
)
async def test_every_action_has_its_own_examples(cli: Cli, path: tuple[str, ...]) -> None:
    """Each admin/dev command and action lists example invocations of itself."""
    out = (await cli(*path, "--help", connect=False)).out
    examples = out.split("examples:", 1)[1]
    assert f"strego {' '.join(path)}" in examples
