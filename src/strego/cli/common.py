"""Options shared by several commands (Redis URL, PostgreSQL DSN, durations)."""

from __future__ import annotations

import argparse
import os
import re
from typing import TYPE_CHECKING

__all__ = [
    "add_action",
    "add_postgres_option",
    "add_redis_option",
    "non_negative_int",
    "parse_duration",
    "port",
    "positive_float",
    "positive_int",
]

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"

if TYPE_CHECKING:  # subscripting _SubParsersAction fails at run time on Python 3.11
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]


def add_action(
    actions: Subparsers, name: str, help: str, examples: str, redis: argparse.ArgumentParser
) -> argparse.ArgumentParser:
    """One ACTION of a command group (``strego queues pause``...), with its own
    examples (one per line) in ``--help``."""
    lines = "\n".join(f"  {line.strip()}" for line in examples.strip().splitlines())
    return actions.add_parser(
        name,
        help=help,
        description=help[0].upper() + help[1:] + ".",
        epilog=f"examples:\n{lines}\n",
        parents=[redis],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def add_redis_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--redis",
        default=os.environ.get("STREGO_REDIS_URL", DEFAULT_REDIS_URL),
        metavar="URL",
        help="Redis URL (env STREGO_REDIS_URL; default %(default)s)",
    )
    parser.add_argument(
        "--group",
        default=None,
        help="consumer group (default: the group recorded for each queue by its workers, "
        "else strego-workers; a group that disagrees with the recorded one is refused)",
    )
    parser.add_argument("--prefix", default="strego", help="Redis key prefix")


def add_postgres_option(parser: argparse.ArgumentParser, *, required: bool = False) -> None:
    parser.add_argument(
        "--postgres",
        default=os.environ.get("STREGO_POSTGRES_DSN"),
        required=required and not os.environ.get("STREGO_POSTGRES_DSN"),
        metavar="DSN",
        help="PostgreSQL DSN for task history (env STREGO_POSTGRES_DSN)",
    )


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: str) -> float:
    """'30', '30s', '5m', '2h', '30d' → seconds."""
    match = _DURATION.match(value.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {value!r} (use e.g. 30s, 5m, 2h, 7d)")
    return float(match.group(1)) * _UNITS[match.group(2)]


def _number(kind: type[int] | type[float], low: float, text: str, words: str) -> float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not {words}: {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be {words}, got {text}")
    return value


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1 (a bad one is a usage error, exit 2)."""
    return int(_number(int, 1, text, "an integer >= 1"))


def non_negative_int(text: str) -> int:
    return int(_number(int, 0, text, "an integer >= 0"))


def positive_float(text: str) -> float:
    value = _number(float, 0, text, "a number > 0")
    if value == 0:
        raise argparse.ArgumentTypeError("must be a number > 0, got 0")
    return value


def port(text: str) -> int:
    value = int(_number(int, 0, text, "a port number 0-65535"))
    if value > 65535:
        raise argparse.ArgumentTypeError(f"must be a port number 0-65535, got {text}")
    return value
