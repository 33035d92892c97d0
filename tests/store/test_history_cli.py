"""The ``strego migrate`` and ``strego history prune`` commands, run in-process."""

from __future__ import annotations

import argparse
import socket
from datetime import UTC, datetime, timedelta

import pytest

from strego.cli.history_cmd import add_parsers
from strego.store.postgres import PostgresStore, latest_version
from strego.task import TaskState

from .pg_helpers import event, new_id, written

pytestmark = pytest.mark.postgres


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="strego")
    add_parsers(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


async def _run(*argv: str) -> int:
    args = _parse(*argv)
    result: int = await args.func(args)
    return result


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_migrate_applies_then_reports_up_to_date(
    empty_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """migrate applies the schema, exits 0; a second run says it is up to date."""
    assert await _run("migrate", "--postgres", empty_dsn) == 0
    assert f"migrated to version {latest_version()}" in capsys.readouterr().out
    assert await _run("migrate", "--postgres", empty_dsn) == 0
    assert "up to date" in capsys.readouterr().out


async def test_migrate_reads_dsn_from_environment(
    empty_dsn: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --postgres, the DSN comes from STREGO_POSTGRES_DSN."""
    monkeypatch.setenv("STREGO_POSTGRES_DSN", empty_dsn)
    assert await _run("migrate") == 0
    assert "migrated" in capsys.readouterr().out


async def test_unreachable_database_is_one_line_and_exit_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A database that refuses connections: one stderr line, exit code 1."""
    dsn = f"host=127.0.0.1 port={_closed_port()} user=postgres dbname=x connect_timeout=2"
    assert await _run("migrate", "--postgres", dsn) == 1
    err = capsys.readouterr().err
    assert err.startswith("strego: error: PostgreSQL:")
    assert err.count("\n") == 1


async def test_prune_deletes_old_history(
    fresh_store: PostgresStore, fresh_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """history prune --older-than 30d deletes only tasks idle for longer than 30 days."""
    now = datetime.now(UTC)
    old, recent = new_id(), new_id()
    fresh_store.record(event(old, TaskState.COMPLETED, now - timedelta(days=40)))
    fresh_store.record(event(recent, TaskState.COMPLETED, now - timedelta(days=1)))
    await written(fresh_store)
    assert await _run("history", "prune", "--older-than", "30d", "--postgres", fresh_dsn) == 0
    assert "deleted 1 tasks" in capsys.readouterr().out
    assert await fresh_store.get(old) is None
    assert await fresh_store.get(recent) is not None


async def test_prune_on_unmigrated_database_says_run_migrate(
    empty_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Pruning a database without the schema fails with the migrate hint, exit 1."""
    assert await _run("history", "prune", "--older-than", "1h", "--postgres", empty_dsn) == 1
    assert "strego migrate --postgres DSN" in capsys.readouterr().err


def test_prune_rejects_a_bad_age(capsys: pytest.CaptureFixture[str]) -> None:
    """--older-than takes a number with s/m/h/d; anything else is a usage error (exit 2)."""
    with pytest.raises(SystemExit) as exit_info:
        _parse("history", "prune", "--older-than", "30 days", "--postgres", "x")
    assert exit_info.value.code == 2
    assert "not a duration" in capsys.readouterr().err
