"""Pair rows: an event and the next one of the same task written as one row.

A pair must leave exactly the row that writing its two events one after the other
leaves, whatever the row held before (out of order, new lifecycle, replay...).
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from strego.events import TaskEvent
from strego.store.postgres.writes import split_rounds, write_events
from strego.task import TaskState

from .pg_helpers import at, event, new_id

pytestmark = pytest.mark.postgres

S = TaskState


def _active(tid: str, when: float, retry: int = 0, worker: str | None = "w1") -> TaskEvent:
    return event(tid, S.ACTIVE, at(when), retry_count=retry, worker=worker)


def _done(tid: str, when: float, retry: int = 0, **fields: Any) -> TaskEvent:
    fields.setdefault("worker", "w1")
    fields.setdefault("duration_ms", 3.5)
    return event(tid, S.COMPLETED, at(when), retry_count=retry, **fields)


_RESULT = {"result": b'{"n":1}', "result_serializer": "json"}

# (events written first, one at a time; the batch written at once)
SCENARIOS: dict[str, tuple[list[Any], list[Any]]] = {
    "new task": ([], [(_active, 1), (_done, 2)]),
    "after pending": ([(S.PENDING, 0)], [(_active, 1), (_done, 2)]),
    "pending in the batch": ([], [(S.PENDING, 0), (_active, 1), (_done, 2)]),
    "new lifecycle after finished": ([(S.DEAD, 0)], [(_active, 10), (_done, 11)]),
    "late pair after finished": ([(S.COMPLETED, 10)], [(_active, 2), (_done, 3)]),
    "start within 5 s of finished": ([(S.COMPLETED, 0)], [(_active, 4), (_done, 5)]),
    "late attempt": ([(_active, 5, 1)], [(_active, 1, 0), (S.RETRY, 2, {"retry_count": 1})]),
    "outcome stamped before start": ([], [(_active, 2), (_done, 1)]),
    "final first in the batch": ([], [(S.COMPLETED, 3), (_active, 2)]),
    "manual retry reset": ([(S.RETRY, 0, {"retry_count": 2})], [(_active, 1), (_done, 2)]),
    "retry cycle": (
        [],
        [
            (_active, 1),
            (S.RETRY, 2, {"retry_count": 1, "error": "boom", "traceback": "tb"}),
            (_active, 5, 1, "w2"),
            (_done, 6, 1, {"worker": "w2"}),
        ],
    ),
    "dead with reason": (
        [(S.PENDING, 0, {"labels": {"k": "v"}})],
        [(_active, 1), (S.DEAD, 2, {"dead_reason": "skip_retry", "error": "e", "worker": "w1"})],
    ),
    "replayed pair": ([], [(_active, 1), (_done, 2), (_active, 1), (_done, 2)]),
    "replayed start": ([(_active, 1)], [(_active, 1), (_done, 2)]),
    "no worker on start": ([], [(_active, 1, 0, None), (_done, 2)]),
    "cancelled": ([(S.SCHEDULED, 0)], [(_active, 1), (S.CANCELLED, 2)]),
    "odd microseconds": ([(S.PENDING, 0)], [(_active, 1.123457), (_done, 2.999999)]),
    "with a result": ([(S.PENDING, 0)], [(_active, 1), (_done, 2, 0, _RESULT)]),
    "a new run drops the old result": (
        [(_active, 0), (_done, 1, 0, _RESULT)],
        [(_active, 10), (_done, 11)],
    ),
    "a late pair keeps the result": ([(_done, 10, 0, _RESULT)], [(_active, 2), (_done, 3)]),
}


def _build(tid: str, spec: tuple[Any, ...]) -> TaskEvent:
    kind, *rest = spec
    if callable(kind):
        *args, options = rest if rest and isinstance(rest[-1], dict) else (*rest, {})
        built: TaskEvent = kind(tid, *args, **options)
        return built
    when, *options = rest
    return event(tid, kind, at(when), **(options[0] if options else {}))


async def _row(conn: psycopg.AsyncConnection[Any], tid: str) -> Any:
    cur = await conn.execute("SELECT to_jsonb(t) - 'id' FROM strego_tasks t WHERE id = %s", (tid,))
    found = await cur.fetchone()
    assert found is not None
    return found[0]


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_pair_row_equals_two_writes(pg_dsn: str, name: str) -> None:
    """Written as pair rows, a batch leaves the row that writing its events one by one leaves."""
    before, batch = SCENARIOS[name]
    one_by_one, paired = new_id("seq-"), new_id("pair-")
    async with await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True) as conn:
        for tid in (one_by_one, paired):
            for spec in before:
                await write_events(conn, [_build(tid, spec)])
        for spec in batch:
            await write_events(conn, [_build(one_by_one, spec)])
        events = [_build(paired, spec) for spec in batch]
        await write_events(conn, events)
        assert await _row(conn, paired) == await _row(conn, one_by_one)
    rounds = split_rounds(events)
    assert sum(len(r.pairs) for r in rounds) >= 1, "the batch was written as pair rows"


def test_only_entry_only_events_open_a_pair() -> None:
    """A creation event (payload, options) is never folded into a pair; active + outcome is."""
    tid = new_id()
    rounds = split_rounds(
        [event(tid, S.PENDING, at(0)), _active(tid, 1), _done(tid, 2), _active("other", 1)]
    )
    assert [(len(r.singles), len(r.pairs)) for r in rounds] == [(2, 0), (0, 1)]


def test_a_fast_task_is_one_row_in_one_round() -> None:
    """Active then completed of many tasks: one round of pair rows, one row per task."""
    events = [e for n in range(100) for e in (_active(f"t{n}", 1), _done(f"t{n}", 2))]
    rounds = split_rounds(events)
    assert [(len(r.singles), len(r.pairs)) for r in rounds] == [(0, 100)]
