"""Fixtures for the PostgreSQL history tests.

They talk to the real local PostgreSQL (``STREGO_TEST_POSTGRES_DSN``, default
127.0.0.1:5432 as user postgres). Each session creates scratch databases with random
names and drops them at the end. PostgreSQL unreachable: the tests skip, except
under ``CI=true``, where they fail, so CI can never pass without running them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import psycopg
import pytest
from psycopg import sql

from strego.store.postgres import PostgresStore, migrate_database

ADMIN_DSN = os.environ.get(
    "STREGO_TEST_POSTGRES_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
)


class Databases:
    """Creates scratch databases with random names; drops every one of them at the end."""

    def __init__(self, admin_dsn: str) -> None:
        self.admin_dsn = admin_dsn
        self.names: list[str] = []

    def create(self) -> str:
        """A new empty database; returns its DSN."""
        name = f"strego_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self.names.append(name)
        return self.dsn(name)

    def dsn(self, name: str) -> str:
        params = psycopg.conninfo.conninfo_to_dict(self.admin_dsn)
        params["dbname"] = name
        return psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in params.items()})

    def drop_all(self) -> None:
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            for name in self.names:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


@pytest.fixture(scope="session")
def databases() -> Iterator[Databases]:
    try:
        psycopg.connect(ADMIN_DSN, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        reason = f"PostgreSQL not reachable at {ADMIN_DSN!r}: {' '.join(str(exc).split())}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason} (CI=true: the PostgreSQL tests must run, not skip)")
        pytest.skip(reason)
    dbs = Databases(ADMIN_DSN)
    yield dbs
    dbs.drop_all()


@pytest.fixture(scope="session")
async def pg_dsn(databases: Databases) -> str:
    """The session's migrated database, shared by tests that use their own task ids."""
    dsn = databases.create()
    await migrate_database(dsn)
    return dsn


@pytest.fixture
def empty_dsn(databases: Databases) -> str:
    """A fresh database with no schema at all."""
    return databases.create()


@pytest.fixture
async def fresh_dsn(databases: Databases) -> str:
    """A fresh migrated database, for tests that count or delete across all tasks."""
    dsn = databases.create()
    await migrate_database(dsn)
    return dsn


@pytest.fixture
async def store(pg_dsn: str) -> AsyncIterator[PostgresStore]:
    """A started store on the session database, flushing often."""
    async with PostgresStore(pg_dsn, flush_interval=0.01) as started:
        yield started


@pytest.fixture
async def fresh_store(fresh_dsn: str) -> AsyncIterator[PostgresStore]:
    """A started store on its own database."""
    async with PostgresStore(fresh_dsn, flush_interval=0.01) as started:
        yield started
