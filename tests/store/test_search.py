"""Searching the history: each filter, sorting, keyset pages, counts, and index use."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import datetime

import psycopg
import pytest

from strego.errors import ConfigurationError
from strego.store.postgres import PostgresStore, migrate_database
from strego.store.postgres.search import build_search
from strego.store.query import SortField, TaskFilter, TaskPage
from strego.task import TaskState

from .conftest import Databases
from .pg_helpers import at, event, written

pytestmark = pytest.mark.postgres

S = TaskState
TYPES = ("email:send", "report:build", "image:resize")
FINALS = (S.PENDING, S.ACTIVE, S.COMPLETED, S.DEAD, S.RETRY, S.CANCELLED)
LABELS: tuple[dict[str, str], ...] = ({}, {"tenant": "acme"}, {"tenant": "acme", "plan": "pro"})


@dataclasses.dataclass(frozen=True)
class Spec:
    """One task of the dataset, and what the store should say about it."""

    id: str
    queue: str
    type: str
    state: TaskState
    created: datetime
    labels: Mapping[str, str]
    finished: datetime | None


def _dataset() -> list[Spec]:
    specs = []
    for i in range(30):
        state = FINALS[i % len(FINALS)]
        done = state in (S.COMPLETED, S.DEAD, S.CANCELLED)
        specs.append(
            Spec(
                id=f"job-{i:02d}",
                queue="critical" if i % 3 == 0 else "default",
                type=TYPES[i % len(TYPES)],
                state=state,
                created=at((i // 2) * 10),  # pairs share created_at: ties for the keyset
                labels=LABELS[i % len(LABELS)],
                finished=at(1000 + i) if done else None,
            )
        )
    return specs


DATASET = _dataset()


@pytest.fixture(scope="module")
async def search_store(databases: Databases) -> AsyncIterator[PostgresStore]:
    """A store on its own database holding exactly DATASET."""
    dsn = databases.create()
    await migrate_database(dsn)
    async with PostgresStore(dsn, flush_interval=0.01) as store:
        for spec in DATASET:
            store.record(
                event(
                    spec.id,
                    S.PENDING,
                    spec.created,
                    queue=spec.queue,
                    type=spec.type,
                    labels=spec.labels,
                )
            )
            if spec.state != S.PENDING:
                when = spec.finished or at(500)
                retries = 1 if spec.state == S.RETRY else 0  # a retry event counts the retry
                store.record(
                    event(
                        spec.id,
                        spec.state,
                        when,
                        queue=spec.queue,
                        type=spec.type,
                        retry_count=retries,
                    )
                )
        await written(store)
        yield store


async def _ids(store: PostgresStore, flt: TaskFilter, **kwargs: object) -> list[str]:
    page = await store.search(flt, limit=1000, **kwargs)  # type: ignore[arg-type]
    assert page.next_cursor is None
    return [task.id for task in page.items]


def _expected(keep: Callable[[Spec], bool]) -> list[str]:
    # Default order: newest created first, ties by id descending.
    chosen = [s for s in DATASET if keep(s)]
    return [s.id for s in sorted(chosen, key=lambda s: (s.created, s.id), reverse=True)]


async def test_no_filter_lists_everything_newest_first(search_store: PostgresStore) -> None:
    """An empty filter returns every task, newest created first, ties by id."""
    assert await _ids(search_store, TaskFilter()) == _expected(lambda s: True)


async def test_filter_by_queue(search_store: PostgresStore) -> None:
    """queue= keeps only that queue's tasks."""
    got = await _ids(search_store, TaskFilter(queue="critical"))
    assert got == _expected(lambda s: s.queue == "critical")


async def test_filter_by_one_or_several_states(search_store: PostgresStore) -> None:
    """states= keeps tasks currently in any of the given states."""
    assert await _ids(search_store, TaskFilter(states={S.DEAD})) == _expected(
        lambda s: s.state == S.DEAD
    )
    both = {S.DEAD, S.RETRY}
    assert await _ids(search_store, TaskFilter(states=both)) == _expected(lambda s: s.state in both)


async def test_filter_by_type(search_store: PostgresStore) -> None:
    """type= is an exact match on the task type."""
    got = await _ids(search_store, TaskFilter(type="report:build"))
    assert got == _expected(lambda s: s.type == "report:build")


async def test_filter_by_label_containment(search_store: PostgresStore) -> None:
    """labels= matches tasks whose labels contain every given pair."""
    acme = await _ids(search_store, TaskFilter(labels={"tenant": "acme"}))
    assert acme == _expected(lambda s: s.labels.get("tenant") == "acme")
    pro = await _ids(search_store, TaskFilter(labels={"tenant": "acme", "plan": "pro"}))
    assert pro == _expected(lambda s: s.labels.get("plan") == "pro")
    assert await _ids(search_store, TaskFilter(labels={"tenant": "other"})) == []


async def test_filter_by_created_range(search_store: PostgresStore) -> None:
    """created_after <= created_at < created_before."""
    flt = TaskFilter(created_after=at(30), created_before=at(80))
    assert await _ids(search_store, flt) == _expected(lambda s: at(30) <= s.created < at(80))


async def test_filter_by_finished_range(search_store: PostgresStore) -> None:
    """finished_after/before select finished tasks only, by when they finished."""
    flt = TaskFilter(finished_after=at(1005), finished_before=at(1020))
    got = await _ids(search_store, flt)
    assert got == _expected(lambda s: s.finished is not None and at(1005) <= s.finished < at(1020))
    assert got, "the dataset must have tasks in this range"


async def test_text_matches_id_prefix_or_type_substring(search_store: PostgresStore) -> None:
    """text= matches an id prefix or a case-insensitive part of the type; % is literal."""
    assert await _ids(search_store, TaskFilter(text="job-1")) == _expected(
        lambda s: s.id.startswith("job-1")
    )
    assert await _ids(search_store, TaskFilter(text="RESIZE")) == _expected(
        lambda s: "resize" in s.type
    )
    assert await _ids(search_store, TaskFilter(text="%")) == []


async def test_filters_combine_with_and(search_store: PostgresStore) -> None:
    """Several filters select the tasks matching all of them."""
    flt = TaskFilter(queue="default", states={S.COMPLETED, S.DEAD}, labels={"tenant": "acme"})
    assert await _ids(search_store, flt) == _expected(
        lambda s: (
            s.queue == "default"
            and s.state in (S.COMPLETED, S.DEAD)
            and s.labels.get("tenant") == "acme"
        )
    )


async def test_sort_ascending_and_by_updated(search_store: PostgresStore) -> None:
    """descending=False reverses the order; sort=UPDATED orders by the newest event."""
    oldest_first = await _ids(search_store, TaskFilter(), descending=False)
    assert oldest_first == list(reversed(_expected(lambda s: True)))
    by_update = await _ids(search_store, TaskFilter(), sort=SortField.UPDATED)
    page = await search_store.search(TaskFilter(), sort=SortField.UPDATED, limit=1000)
    stamps = [(t.updated_at, t.id) for t in page.items]
    assert stamps == sorted(stamps, reverse=True)
    assert sorted(by_update) == sorted(s.id for s in DATASET)


@pytest.mark.parametrize("sort", list(SortField))
@pytest.mark.parametrize("descending", [True, False])
async def test_keyset_pages_have_no_duplicates_or_gaps(
    search_store: PostgresStore, sort: SortField, descending: bool
) -> None:
    """Walking pages by cursor returns every task once, in one order, despite ties."""
    flt = TaskFilter(queue="default")
    whole = await _ids(search_store, flt, sort=sort, descending=descending)
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        page: TaskPage = await search_store.search(
            flt, sort=sort, descending=descending, limit=3, cursor=cursor
        )
        seen.extend(task.id for task in page.items)
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == whole
    assert pages == -(-len(whole) // 3)


async def test_count_matches_search(search_store: PostgresStore) -> None:
    """count(filter) is the number of tasks search(filter) would list."""
    for flt in (TaskFilter(), TaskFilter(queue="critical", states={S.PENDING, S.DEAD})):
        assert await search_store.count(flt) == len(await _ids(search_store, flt))


async def test_bad_cursor_and_limit_are_refused(search_store: PostgresStore) -> None:
    """A garbled cursor, one from another sort, or a limit out of range raise early."""
    page = await search_store.search(limit=2)
    assert page.next_cursor is not None
    with pytest.raises(ConfigurationError, match="another sort"):
        await search_store.search(limit=2, cursor=page.next_cursor, descending=False)
    with pytest.raises(ConfigurationError, match="invalid cursor"):
        await search_store.search(cursor="not-a-cursor")
    with pytest.raises(ConfigurationError, match="limit"):
        await search_store.search(limit=0)


async def test_unknown_task_is_none(search_store: PostgresStore) -> None:
    """get() of an id never recorded returns None."""
    assert await search_store.get("no-such-task") is None


def test_filter_normalises_states_and_validates_labels() -> None:
    """TaskFilter turns state strings into TaskState and rejects non-str labels."""
    assert TaskFilter(states=["dead"]).states == frozenset({S.DEAD})  # type: ignore[list-item]
    with pytest.raises(ConfigurationError):
        TaskFilter(states=["zombie"])  # type: ignore[list-item]
    with pytest.raises(ConfigurationError):
        TaskFilter(labels={"n": 1})  # type: ignore[dict-item]


async def test_main_search_uses_the_queue_state_index(fresh_dsn: str) -> None:
    """EXPLAIN: "dead tasks in queue Q, newest first, after a cursor" is an index scan."""
    async with await psycopg.AsyncConnection.connect(fresh_dsn, autocommit=True) as conn:
        await conn.execute(
            "INSERT INTO strego_tasks (id, queue, type, state, created_at, updated_at)"
            " SELECT 'gen-' || i, 'q' || (i % 20), 'type:' || (i % 7),"
            "  (ARRAY['completed','completed','completed','dead','pending'])[1 + i % 5],"
            "  now() - i * interval '1 second', now()"
            " FROM generate_series(1, 50000) AS i"
        )
        await conn.execute("ANALYZE strego_tasks")
        async with PostgresStore(fresh_dsn) as store:
            first = await store.search(TaskFilter(queue="q3", states={S.DEAD}), limit=50)
        assert first.next_cursor is not None
        query, params = build_search(
            TaskFilter(queue="q3", states={S.DEAD}),
            sort=SortField.CREATED,
            descending=True,
            limit=50,
            cursor=first.next_cursor,
        )
        cur = await conn.execute("EXPLAIN (FORMAT JSON) " + query, params)
        row = await cur.fetchone()
    assert row is not None
    plan = json.dumps(row[0])
    assert "strego_tasks_queue_state_created" in plan, plan
    assert '"Node Type": "Sort"' not in plan, "keyset order must come from the index"
