"""Schema migrations: explicit, idempotent, and checked when a store starts."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from strego.errors import SchemaError
from strego.store.postgres import PostgresStore, latest_version, migrate_database

pytestmark = pytest.mark.postgres


async def _tables(dsn: str) -> set[str]:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cur = await conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        )
        return {name for (name,) in await cur.fetchall()}


async def test_migrate_from_empty_then_rerun_is_noop(empty_dsn: str) -> None:
    """The first migrate applies every version; a second one applies nothing."""
    assert await migrate_database(empty_dsn) == list(range(1, latest_version() + 1))
    assert {"strego_tasks", "strego_schema_migrations"} <= await _tables(empty_dsn)
    assert await migrate_database(empty_dsn) == []


async def test_store_migrate_method_applies_schema(empty_dsn: str) -> None:
    """store.migrate() works before start() and lets the store start afterwards."""
    store = PostgresStore(empty_dsn)
    assert await store.migrate() == list(range(1, latest_version() + 1))
    async with store:
        assert await store.count() == 0


async def test_concurrent_migrations_apply_once(empty_dsn: str) -> None:
    """Two migrators racing (pods starting together) apply each version exactly once."""
    first, second = await asyncio.gather(migrate_database(empty_dsn), migrate_database(empty_dsn))
    assert sorted(first + second) == list(range(1, latest_version() + 1))


async def test_start_on_unmigrated_database_fails_fast(empty_dsn: str) -> None:
    """start() on a database without the schema raises SchemaError naming the command."""
    store = PostgresStore(empty_dsn)
    with pytest.raises(SchemaError, match=r"strego migrate --postgres DSN"):
        await store.start()
    assert not await _tables(empty_dsn), "start() must never migrate implicitly"


async def test_start_on_newer_schema_fails_fast(empty_dsn: str) -> None:
    """A schema newer than this strego refuses start() and migrate(): upgrade strego."""
    await migrate_database(empty_dsn)
    async with await psycopg.AsyncConnection.connect(empty_dsn, autocommit=True) as conn:
        await conn.execute(
            "INSERT INTO strego_schema_migrations (version, name) VALUES (%s, 'future')",
            (latest_version() + 1,),
        )
    with pytest.raises(SchemaError, match="newer than this strego"):
        await PostgresStore(empty_dsn).start()
    with pytest.raises(SchemaError, match="upgrade strego"):
        await migrate_database(empty_dsn)


async def test_start_with_missing_version_fails_fast(empty_dsn: str) -> None:
    """A migrations table without the needed versions is "behind": run strego migrate."""
    async with await psycopg.AsyncConnection.connect(empty_dsn, autocommit=True) as conn:
        await conn.execute(
            "CREATE TABLE strego_schema_migrations (version integer PRIMARY KEY,"
            " name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
    with pytest.raises(SchemaError, match="missing"):
        await PostgresStore(empty_dsn).start()
