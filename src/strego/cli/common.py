"""Options shared by several commands (Redis URL, PostgreSQL DSN, durations)."""

from __future__ import annotations

import argparse
import os
import re

__all__ = ["add_postgres_option", "add_redis_option", "parse_duration"]

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


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
