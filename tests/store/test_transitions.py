"""How events become one row per task: every transition kept, states only move forward."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from strego.store.postgres import PostgresStore
from strego.store.postgres.config import TIMELINE_CAP
from strego.store.postgres.merge import FIELDS
from strego.store.postgres.writes import event_row, write_events
from strego.task import TaskState

from .pg_helpers import at, event, new_id, written

pytestmark = pytest.mark.postgres

S = TaskState


async def _state(store: PostgresStore, task_id: str) -> TaskState:
    detail = await store.get(task_id)
    assert detail is not None
    return detail.state


async def test_every_transition_is_recorded(store: PostgresStore) -> None:
    """pending → active → retry → active → completed: one row, five timeline entries."""
    tid = new_id()
    store.record(event(tid, S.PENDING, at(0), labels={"user": "42"}, max_retry=3, priority=5))
    store.record(event(tid, S.ACTIVE, at(1), worker="w1"))
    store.record(
        event(
            tid,
            S.RETRY,
            at(2),
            retry_count=1,
            error="boom",
            traceback="Traceback...",
            worker="w1",
            duration_ms=12.5,
        )
    )
    store.record(event(tid, S.ACTIVE, at(5), retry_count=1, worker="w2"))
    store.record(event(tid, S.COMPLETED, at(6), retry_count=1, worker="w2", duration_ms=40.0))
    await written(store)

    task = await store.get(tid)
    assert task is not None
    assert (task.state, task.retry_count, task.max_retry, task.priority) == (S.COMPLETED, 1, 3, 5)
    assert task.labels == {"user": "42"}
    assert task.payload == b'{"to": "a@b.c"}'
    assert task.serializer == "json"
    assert (task.created_at, task.started_at, task.finished_at, task.updated_at) == (
        at(0),
        at(5),
        at(6),
        at(6),
    )
    assert (task.worker, task.duration_ms, task.last_error) == ("w2", 40.0, "boom")
    assert task.traceback == "Traceback..."
    assert [(e.state, e.retry_count) for e in task.timeline] == [
        (S.PENDING, 0),
        (S.ACTIVE, 0),
        (S.RETRY, 1),
        (S.ACTIVE, 1),
        (S.COMPLETED, 1),
    ]
    assert [e.at for e in task.timeline] == [at(0), at(1), at(2), at(5), at(6)]
    assert task.timeline[2].error == "boom"
    assert task.timeline[2].duration_ms == 12.5


async def test_late_active_never_overwrites_a_final_state(store: PostgresStore) -> None:
    """A late "active" (or "pending") after completed/dead/cancelled leaves the final state."""
    for final in (S.COMPLETED, S.DEAD, S.CANCELLED):
        tid = new_id()
        store.record(event(tid, final, at(3), dead_reason="exhausted" if final == S.DEAD else None))
        await written(store)
        store.record(event(tid, S.ACTIVE, at(2), worker="late"))
        store.record(event(tid, S.PENDING, at(0)))
        await written(store)
        task = await store.get(tid)
        assert task is not None
        assert task.state == final
        assert task.finished_at == at(3)
        assert len(task.timeline) == 3, "late events still appear in the timeline"


async def test_out_of_order_creation_fills_in_options(store: PostgresStore) -> None:
    """completed, then active, then the client's pending: state stays, options filled."""
    tid = new_id()
    store.record(event(tid, S.COMPLETED, at(3), worker="w1", duration_ms=5.0, type="?"))
    store.record(event(tid, S.ACTIVE, at(2), worker="w1"))
    await written(store)
    store.record(
        event(
            tid,
            S.PENDING,
            at(1),
            labels={"k": "v"},
            max_retry=7,
            priority=2,
            created_at=at(0),
            type="report:build",
        )
    )
    await written(store)
    task = await store.get(tid)
    assert task is not None
    assert (task.state, task.type, task.labels) == (S.COMPLETED, "report:build", {"k": "v"})
    assert (task.max_retry, task.priority, task.created_at) == (7, 2, at(0))
    assert task.payload == b'{"to": "a@b.c"}'
    assert task.started_at == at(2)
    assert task.finished_at == at(3)
    assert [e.state for e in task.timeline] == [S.PENDING, S.ACTIVE, S.COMPLETED]


async def test_retry_cycles_move_forward_by_retry_count(store: PostgresStore) -> None:
    """active(1) is ahead of retry(1), which is ahead of active(0): late ones are ignored."""
    tid = new_id()
    store.record(event(tid, S.ACTIVE, at(5), retry_count=1))
    await written(store)
    store.record(event(tid, S.RETRY, at(4), retry_count=1, error="first failure"))
    store.record(event(tid, S.ACTIVE, at(1), retry_count=0))
    await written(store)
    task = await store.get(tid)
    assert task is not None
    assert (task.state, task.retry_count, task.started_at) == (S.ACTIVE, 1, at(5))
    assert task.last_error == "first failure", "a late event still fills unknown fields"

    store.record(event(tid, S.RETRY, at(6), retry_count=2, error="second failure"))
    await written(store)
    task = await store.get(tid)
    assert task is not None
    assert (task.state, task.retry_count, task.last_error) == (S.RETRY, 2, "second failure")


async def test_final_state_beats_a_live_state_with_more_retries(store: PostgresStore) -> None:
    """A manual retry resets attempts to 0: its completion still finishes the task."""
    tid = new_id()
    store.record(event(tid, S.RETRY, at(0), retry_count=2))
    store.record(event(tid, S.ACTIVE, at(1), retry_count=0))
    store.record(event(tid, S.COMPLETED, at(2), retry_count=0))
    await written(store)
    assert await _state(store, tid) == S.COMPLETED


async def test_creation_long_after_final_state_starts_a_new_lifecycle(
    store: PostgresStore,
) -> None:
    """dead, then pending minutes later (retried from the DLQ): the task lives again."""
    tid = new_id()
    store.record(event(tid, S.DEAD, at(0), retry_count=3, dead_reason="exhausted"))
    await written(store)
    store.record(event(tid, S.PENDING, at(600)))
    await written(store)
    task = await store.get(tid)
    assert task is not None
    assert (task.state, task.retry_count, task.finished_at, task.dead_reason) == (
        S.PENDING,
        0,
        None,
        None,
    )
    store.record(event(tid, S.ACTIVE, at(601)))
    store.record(event(tid, S.COMPLETED, at(602)))
    await written(store)
    assert await _state(store, tid) == S.COMPLETED


async def test_replayed_batch_changes_nothing(store: PostgresStore, pg_dsn: str) -> None:
    """Writing the same batch twice (a lost commit ack) leaves row and timeline as they were."""
    tid = new_id()
    batch = [
        event(tid, S.PENDING, at(0)),
        event(tid, S.ACTIVE, at(1)),
        event(tid, S.COMPLETED, at(2), duration_ms=1.5),
    ]
    async with await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True) as conn:
        await write_events(conn, batch)
        first = await store.get(tid)
        await write_events(conn, batch)
    assert await store.get(tid) == first
    assert first is not None
    assert len(first.timeline) == 3


async def test_timeline_is_capped_to_the_newest_entries(store: PostgresStore) -> None:
    """A task retried forever keeps only the newest TIMELINE_CAP transitions."""
    tid = new_id()
    for attempt in range(TIMELINE_CAP + 10):
        store.record(event(tid, S.RETRY, at(attempt), retry_count=attempt))
    await written(store)
    task = await store.get(tid)
    assert task is not None
    assert len(task.timeline) == TIMELINE_CAP
    assert task.timeline[0].retry_count == 10
    assert task.timeline[-1].retry_count == TIMELINE_CAP + 9


async def test_nul_characters_are_stripped_not_fatal(store: PostgresStore) -> None:
    """Text PostgreSQL cannot store (NUL) is cleaned; a literal backslash-u0000 survives."""
    tid = new_id()
    store.record(
        event(
            tid,
            S.DEAD,
            at(0),
            error="bad\x00byte",
            traceback="raw \\u0000 text",
            labels={"k\x00": "v"},
        )
    )
    await written(store)
    task = await store.get(tid)
    assert task is not None
    assert (task.last_error, task.traceback, task.labels) == (
        "badbyte",
        "raw \\u0000 text",
        {"k": "v"},
    )
    assert store.rejected == 0


async def test_timestamps_keep_their_microseconds(store: PostgresStore) -> None:
    """Times travel as epoch floats yet come back exact to the microsecond (to 2100)."""
    tid = new_id()
    created = datetime(2024, 5, 1, 12, 0, 0, 123457, tzinfo=UTC)
    done = datetime(2099, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    store.record(event(tid, S.PENDING, created, process_at=created + timedelta(microseconds=1)))
    store.record(event(tid, S.COMPLETED, done))
    await written(store)
    task = await store.get(tid)
    assert task is not None
    assert (task.created_at, task.process_at) == (created, created + timedelta(microseconds=1))
    assert (task.finished_at, task.updated_at) == (done, done)
    assert [e.at for e in task.timeline] == [created, done]


def test_event_row_matches_the_sql_columns() -> None:
    """event_row() and the SQL that reads it agree on the number of fields."""
    assert len(event_row(event(new_id(), S.PENDING, at(0)))) == len(FIELDS)
