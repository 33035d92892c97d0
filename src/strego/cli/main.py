"""The ``strego`` command: parses arguments and dispatches to one ``*_cmd`` module.

Errors are one clear line on stderr and an exit code: 2 when the command line is wrong
(argparse's errors and ``UsageError``), 1 when the command failed, 130 on Ctrl-C
(``--debug`` shows the traceback). Subcommand modules expose ``add_parsers(subparsers)``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import logging
import sys
from collections.abc import Sequence

import strego
from strego.cli.errors import UsageError
from strego.redaction import redact

__all__ = ["main"]

# Each module adds its subcommands; a missing optional one (an extra not installed)
# only removes its commands.
_COMMAND_MODULES = (
    "strego.cli.worker_cmd",
    "strego.cli.ui_cmd",
    "strego.cli.dev_cmd",
    "strego.cli.admin_cmd",
    "strego.cli.history_cmd",
    "strego.cli.limits_cmd",
    "strego.cli.periodic_cmd",
    "strego.cli.workflow_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="strego",
        description="strego: a distributed task queue on Redis Streams.",
        epilog="Run 'strego COMMAND --help' for the options and examples of each command.",
    )
    parser.add_argument("--version", action="version", version=f"strego {strego.__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("strego.cli"):
                continue  # that command group is not part of this build
            raise
        module.add_parsers(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        result = func(args)
        if inspect.isawaitable(result):
            result = asyncio.run(result)  # type: ignore[arg-type]
        return int(result or 0)
    except KeyboardInterrupt:
        return 130
    except UsageError as exc:  # the command line is wrong: like argparse's own errors
        if args.debug:
            raise
        print(f"strego: error: {redact(str(exc), *_urls(args))}", file=sys.stderr)
        return 2
    except Exception as exc:
        if args.debug:
            raise
        logging.getLogger("strego").debug("command failed", exc_info=True)
        print(f"strego: error: {redact(str(exc), *_urls(args))}", file=sys.stderr)
        return 1


def _urls(args: argparse.Namespace) -> list[str]:
    """The connection strings a failed command was given (their secrets stay hidden)."""
    values = (getattr(args, name, None) for name in ("redis", "postgres"))
    return [value for value in values if isinstance(value, str)]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
