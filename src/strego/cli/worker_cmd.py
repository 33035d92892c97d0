"""``strego worker module:attribute``: run a Server defined in your code."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from strego.cli.common import positive_int
from strego.cli.errors import UsageError
from strego.logs import configure_logging
from strego.worker import Server

EXAMPLES = """examples:
  strego worker myapp.tasks:server
  strego worker myapp.tasks:server --concurrency 50 --queues critical,default
  strego worker myapp.tasks:server --log-format json --log-level debug
"""


def add_parsers(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="run a worker for a Server defined in your code",
        description="Import MODULE:ATTRIBUTE (a strego.Server, or a function returning one) "
        "and run it until SIGINT/SIGTERM. The current directory is put on sys.path.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("target", metavar="MODULE:ATTRIBUTE")
    parser.add_argument(
        "--concurrency", type=positive_int, help="override the Server's concurrency"
    )
    parser.add_argument("--queues", help="override the queues: comma-separated names")
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"], type=str.upper
    )
    parser.add_argument("--log-format", default="text", choices=["text", "json"])
    parser.set_defaults(func=run_worker)


def load_server(target: str) -> Server:
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise UsageError(f"expected MODULE:ATTRIBUTE, got {target!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    module = importlib.import_module(module_name)
    try:
        found = getattr(module, attribute)
    except AttributeError:
        raise ValueError(f"module {module_name!r} has no attribute {attribute!r}") from None
    if not isinstance(found, Server) and callable(found):
        found = found()
    if not isinstance(found, Server):
        raise ValueError(f"{target} is not a strego.Server (got {type(found).__name__})")
    return found


def run_worker(args: argparse.Namespace) -> int:
    configure_logging(args.log_level, args.log_format)
    server = load_server(args.target)
    changes: dict[str, object] = {}
    if args.concurrency is not None:
        changes["concurrency"] = args.concurrency
    if args.queues:
        changes["queues"] = {q.strip(): 1 for q in args.queues.split(",") if q.strip()}
    if changes:
        server.reconfigure(**changes)
    server.run()
    return 0
