"""Run the ``strego`` command in-process against the test Redis, capturing its output."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import sys
from collections.abc import Awaitable, Callable

import pytest

import strego
from strego.cli.main import main
from strego.testing import TEST_SERVER_DEFAULTS


@dataclasses.dataclass
class CliResult:
    code: int
    out: str
    err: str


Cli = Callable[..., Awaitable[CliResult]]


def _run_main(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return int(exc.code or 0)


@pytest.fixture
def cli(
    redis_url: str, prefix: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Cli:
    """``await cli("queues", "list", stdin="y\\n")`` → CliResult(code, out, err).

    main() calls asyncio.run, so it runs in a thread: the test's loop keeps going.
    ``--redis/--prefix/--group`` are appended unless ``connect=False``.
    """

    async def run(*argv: str, stdin: str = "", connect: bool = True) -> CliResult:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        args = list(argv)
        if connect:
            args += ["--redis", redis_url, "--prefix", prefix, "--group", "tests"]
        capsys.readouterr()
        code = await asyncio.to_thread(_run_main, args)
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    return run


@pytest.fixture
def make_server(broker: strego.RedisBroker) -> Callable[..., strego.Server]:
    """A Server on the test's broker with fast retries (for drain)."""

    def make(**options: object) -> strego.Server:
        return strego.Server(broker, **{**TEST_SERVER_DEFAULTS, **options})

    return make
