"""Versioned schema migrations: the SQL files in ``migrations/``, applied only on demand.

Nothing migrates implicitly: ``strego migrate --postgres DSN`` (or
``await store.migrate()``) applies what is missing, and a store refuses to start on a
schema that is missing, behind or newer than the files it ships (:func:`check_schema`),
so two strego versions never write one database with different rules.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.resources
import re
from typing import Any

import psycopg

from strego.errors import SchemaError

__all__ = [
    "MIGRATIONS_TABLE",
    "Migration",
    "applied_versions",
    "available",
    "check_schema",
    "latest_version",
    "migrate",
    "migrate_database",
]

MIGRATIONS_TABLE = "strego_schema_migrations"
_FILE_NAME = re.compile(r"^(\d{4})_(\w+)\.sql$")
_HOW_TO_MIGRATE = "run `strego migrate --postgres DSN` (or `await store.migrate()`)"


@dataclasses.dataclass(frozen=True, slots=True)
class Migration:
    """One shipped SQL file: ``0001_initial.sql`` is version 1, named ``initial``."""

    version: int
    name: str
    sql: str


@functools.cache
def available() -> tuple[Migration, ...]:
    """Every migration shipped in the package, oldest first."""
    folder = importlib.resources.files(__package__ or "strego.store.postgres") / "migrations"
    found = []
    for entry in folder.iterdir():
        match = _FILE_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migration files must be numbered 1..n without gaps: {found!r}")
    return tuple(found)


def latest_version() -> int:
    """The schema version this strego reads and writes."""
    return available()[-1].version


async def applied_versions(conn: psycopg.AsyncConnection[Any]) -> set[int] | None:
    """Versions recorded in the database; None when it was never migrated."""
    cur = await conn.execute("SELECT to_regclass(%s) IS NOT NULL", (MIGRATIONS_TABLE,))
    row = await cur.fetchone()
    if row is None or not row[0]:
        return None
    cur = await conn.execute("SELECT version FROM strego_schema_migrations")
    return {int(version) for (version,) in await cur.fetchall()}


async def check_schema(conn: psycopg.AsyncConnection[Any]) -> int:
    """Return the schema version, or raise SchemaError saying what to do about it."""
    versions = await applied_versions(conn)
    latest = latest_version()
    if not versions:
        raise SchemaError(
            f"the strego history schema is missing in this database; {_HOW_TO_MIGRATE}"
        )
    current = max(versions)
    if current > latest:
        raise SchemaError(
            f"the strego history schema is at version {current}, newer than this strego "
            f"understands ({latest}); upgrade strego"
        )
    missing = sorted(set(range(1, latest + 1)) - versions)
    if missing:
        raise SchemaError(
            f"the strego history schema is at version {current} but this strego needs "
            f"version {latest}; {_HOW_TO_MIGRATE}"
        )
    return current


async def migrate(conn: psycopg.AsyncConnection[Any]) -> list[int]:
    """Apply the missing migrations in one transaction; return the versions applied.

    An advisory lock makes concurrent runs (several pods starting at once) wait for
    each other instead of failing half-way; re-running is a no-op.
    """
    applied: list[int] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('strego.migrate'))")
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS strego_schema_migrations ("
            " version integer PRIMARY KEY,"
            " name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = await applied_versions(conn) or set()
        if done and max(done) > latest_version():
            raise SchemaError(
                f"the strego history schema is at version {max(done)}, newer than this "
                f"strego understands ({latest_version()}); upgrade strego"
            )
        for migration in available():
            if migration.version in done:
                continue
            # bytes: the file is trusted package data, sent as-is (no placeholders).
            await conn.execute(migration.sql.encode())
            await conn.execute(
                "INSERT INTO strego_schema_migrations (version, name) VALUES (%s, %s)",
                (migration.version, migration.name),
            )
            applied.append(migration.version)
    return applied


async def migrate_database(dsn: str, *, connect_timeout_s: float = 10.0) -> list[int]:
    """Connect, migrate, disconnect: what ``strego migrate --postgres DSN`` runs."""
    conn = await psycopg.AsyncConnection.connect(
        dsn, autocommit=True, connect_timeout=max(1, round(connect_timeout_s))
    )
    async with conn:
        return await migrate(conn)
