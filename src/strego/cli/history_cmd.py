"""``strego migrate`` and ``strego history prune``: the PostgreSQL history's admin commands.

psycopg is imported only when one of these commands runs, so the rest of the CLI
works without the ``strego[postgres]`` extra. Expected failures (no extra, database
unreachable, schema missing or too new) print one line on stderr and return 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from strego.cli.common import add_postgres_option, parse_duration
from strego.errors import StregoError
from strego.redaction import redact

__all__ = ["add_parsers", "run_migrate", "run_prune"]

_NEEDS_EXTRA = "the PostgreSQL history needs the extra: pip install 'strego[postgres]'"


def add_parsers(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``migrate`` and ``history prune`` to the ``strego`` command."""
    migrate = subparsers.add_parser(
        "migrate",
        help="create or upgrade the PostgreSQL task-history schema",
        description="Apply the history schema migrations this strego ships (idempotent).",
        epilog="example: strego migrate --postgres postgresql://app@db/app",
    )
    add_postgres_option(migrate, required=True)
    migrate.set_defaults(func=run_migrate)

    history = subparsers.add_parser(
        "history",
        help="manage the PostgreSQL task history",
        description="Manage the PostgreSQL task history (created by 'strego migrate'): "
        "prune rows of tasks that finished long ago. Browse it in the UI "
        "(strego ui --postgres DSN) or with PostgresStore.search().",
        epilog="example: strego history prune --older-than 30d --postgres postgresql://app@db/app",
    )
    actions = history.add_subparsers(dest="action", metavar="ACTION", title="actions")
    actions.required = True
    prune = actions.add_parser(
        "prune",
        help="delete tasks with no event for longer than an age",
        description="Delete history rows whose newest event is older than --older-than.",
        epilog="example: strego history prune --older-than 30d   (units: s, m, h, d)",
    )
    prune.add_argument(
        "--older-than",
        required=True,
        type=parse_duration,
        metavar="AGE",
        help="age such as 90s, 15m, 12h or 30d",
    )
    add_postgres_option(prune, required=True)
    prune.set_defaults(func=run_prune)


async def run_migrate(args: argparse.Namespace) -> int:
    """``strego migrate --postgres DSN``."""

    async def work() -> None:
        from strego.store.postgres import latest_version, migrate_database

        applied = await migrate_database(args.postgres)
        if applied:
            versions = ", ".join(f"{v:04d}" for v in applied)
            print(f"history schema migrated to version {latest_version()} (applied {versions})")
        else:
            print(f"history schema is up to date (version {latest_version()})")

    return await _guarded(work)


async def run_prune(args: argparse.Namespace) -> int:
    """``strego history prune --older-than AGE --postgres DSN``."""

    async def work() -> None:
        from strego.store.postgres import PostgresStore

        cutoff = datetime.now(UTC) - timedelta(seconds=args.older_than)
        async with PostgresStore(args.postgres, pool_size=1) as store:
            deleted = await store.delete_older_than(cutoff)
        print(f"deleted {deleted} tasks with no event since {cutoff:%Y-%m-%d %H:%M:%S} UTC")

    return await _guarded(work)


async def _guarded(work: Callable[[], Awaitable[None]]) -> int:
    try:
        import psycopg
    except ImportError:
        return _fail(_NEEDS_EXTRA)
    try:
        await work()
    except StregoError as exc:  # SchemaError, ConfigurationError: their message says what to do
        return _fail(str(exc))
    except psycopg.Error as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return _fail(f"PostgreSQL: {first_line}")
    return 0


def _fail(message: str) -> int:
    print(f"strego: error: {redact(message)}", file=sys.stderr)
    return 1
