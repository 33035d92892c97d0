"""History-store benchmark: search latency at 1 M rows, and batch write throughput.

    .venv/bin/python -m benchmarks.store_search [--rows 1000000] [--keep]

Creates a scratch database (random name) on the local PostgreSQL, migrates it, fills
``strego_tasks`` with COPY (indexes in place, as in production), then times the
queries the UI runs through the public ``PostgresStore`` API: median of several runs
after one warm-up. Finally it records task events through ``record()`` and times how
fast the writer merges them. The database is dropped at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import random
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from strego.events import TaskEvent
from strego.store.postgres import PostgresStore, migrate_database
from strego.store.postgres.search import encode_cursor
from strego.store.query import SortField, TaskFilter
from strego.task import TaskState

ADMIN_DSN = os.environ.get(
    "STREGO_BENCH_POSTGRES_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
)
QUEUES = ["default"] * 8 + ["critical"] * 4 + [f"q{i}" for i in range(18)]
STATES = (
    ["completed"] * 80 + ["dead"] * 3 + ["retry"] * 2 + ["pending"] * 5
    + ["scheduled"] * 3 + ["active"] * 2 + ["cancelled"] * 5
)  # fmt: skip
TYPES = [f"{kind}:{verb}" for kind in ("email", "report", "image", "invoice", "sync")
         for verb in ("send", "build", "resize", "refresh", "import", "export")]  # fmt: skip
NOW = datetime.now(UTC).replace(microsecond=0)
SPAN_S = 30 * 86400  # created_at spread over the last 30 days
FINISHED = {"completed", "dead", "cancelled"}
ROWS = 1_000_000


def _row(i: int, rows: int, rng: random.Random) -> str:
    """One COPY text line of strego_tasks (ids sort by creation, like ULIDs)."""
    created = NOW - timedelta(seconds=SPAN_S * (1 - i / rows))
    state = rng.choice(STATES)
    done = state in FINISHED
    duration = rng.lognormvariate(3.5, 1.0)
    finished = created + timedelta(milliseconds=duration + 5)
    labels = f'{{"tenant": "t{rng.randrange(1000)}"' + (
        ', "plan": "pro"}' if rng.random() < 0.1 else "}"
    )
    stamp = created.isoformat()
    fin = finished.isoformat() if done else r"\N"
    timeline = (
        f'[{{"at": {created.timestamp():.6f}, "state": "pending", "retry_count": 0}}, '
        f'{{"at": {created.timestamp() + 0.001:.6f}, "state": "active", "retry_count": 0}}]'
    )
    return "\t".join(
        (
            f"{i:012d}{uuid.UUID(int=rng.getrandbits(128)).hex[:14].upper()}",
            rng.choice(QUEUES),
            rng.choice(TYPES),
            state,
            "0",
            "3",
            str(rng.randrange(11)),
            labels,
            r"\\x7b22746f223a20226140622e63227d",  # {"to": "a@b.c"} as bytea hex
            "json",
            stamp,
            stamp,
            fin,
            fin if done else stamp,
            f"worker-{rng.randrange(8)}",
            f"{duration:.3f}" if done else r"\N",
            timeline,
        )
    )


_COLUMNS = (
    "id, queue, type, state, retry_count, max_retry, priority, labels, payload, serializer,"
    " created_at, started_at, finished_at, updated_at, worker, duration_ms, timeline"
)


async def fill(dsn: str, rows: int) -> float:
    """COPY ``rows`` tasks in; returns seconds taken (including VACUUM ANALYZE)."""
    rng = random.Random(42)
    started = time.perf_counter()
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        async with (
            conn.cursor() as cur,
            cur.copy(f"COPY strego_tasks ({_COLUMNS}) FROM STDIN") as copy,
        ):
            chunk: list[str] = []
            for i in range(rows):
                chunk.append(_row(i, rows, rng))
                if len(chunk) == 10_000:
                    await copy.write("\n".join(chunk) + "\n")
                    chunk.clear()
            if chunk:
                await copy.write("\n".join(chunk) + "\n")
        await conn.execute("VACUUM ANALYZE strego_tasks")
    return time.perf_counter() - started


async def timed(run: Callable[[], Awaitable[Any]], repeat: int) -> tuple[float, Any]:
    """Median milliseconds of ``repeat`` runs after one warm-up, and the last result."""
    result = await run()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = await run()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), result


async def deep_cursor(dsn: str, flt_queue: str, state: str, offset: int) -> str:
    """A cursor pointing ``offset`` rows into a result, as page N of a walk would."""
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cur = await conn.execute(
            "SELECT created_at, id FROM strego_tasks WHERE queue = %s AND state = %s"
            " ORDER BY created_at DESC, id DESC OFFSET %s LIMIT 1",
            (flt_queue, state, offset),
        )
        row = await cur.fetchone()
    assert row is not None, "dataset too small for this offset"
    return encode_cursor(SortField.CREATED, True, row[0], row[1])


async def search_latencies(
    store: PostgresStore, dsn: str, rows: int, repeat: int
) -> list[tuple[str, float]]:
    """The UI's queries, timed through the public API."""
    main = TaskFilter(queue="default", states={TaskState.DEAD})
    offset = rows // 200  # 5 000 rows deep at 1 M: page 101 of 50
    cursor = await deep_cursor(dsn, "default", "dead", offset)
    some_id = (await store.search(main, limit=1)).items[0].id
    labelled = TaskFilter(queue="default", states={TaskState.COMPLETED}, labels={"tenant": "t7"})
    pro = TaskFilter(labels={"tenant": "t7", "plan": "pro"})
    dead = TaskFilter(states={TaskState.DEAD})
    day = TaskFilter(
        type="report:build",
        created_after=NOW - timedelta(days=3),
        created_before=NOW - timedelta(days=2),
    )
    text = TaskFilter(text="invoice:imp")
    no_match = TaskFilter(text="no-such-thing")
    cases: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
        ("search queue+state, page 1 (main)", lambda: store.search(main)),
        (f"search queue+state, page {offset // 50 + 1}", lambda: store.search(main, cursor=cursor)),
        ("search queue+state+label", lambda: store.search(labelled)),
        ("search labels only (GIN)", lambda: store.search(pro)),
        ("search state across queues", lambda: store.search(dead)),
        ("search type + created range", lambda: store.search(day)),
        ("search text (id prefix / type part)", lambda: store.search(text)),
        ("search everything, sort by updated", lambda: store.search(sort=SortField.UPDATED)),
        ("count queue+state", lambda: store.count(main)),
        ("get(task_id) with timeline", lambda: store.get(some_id)),
        ("queue_stats (last 1 h)", lambda: store.queue_stats(since=timedelta(hours=1))),
        ("throughput (60 min)", lambda: store.throughput(minutes=60)),
        ("state_counts('default') [full scan]", lambda: store.state_counts("default")),
        ("worst: text matching nothing [scan]", lambda: store.search(no_match)),
        ("worst: count() of everything [scan]", lambda: store.count()),
    ]
    results = []
    for name, run in cases:
        median_ms, _ = await timed(run, repeat)
        results.append((name, median_ms))
    return results


async def write_rate(dsn: str, tasks: int) -> float:
    """Events merged per second: pending+active+completed for ``tasks`` new tasks."""
    async with PostgresStore(dsn, buffer_limit=10 * tasks) as store:
        events = []
        for n in range(tasks):
            tid = f"W{n:09d}"
            base = datetime.now(UTC)
            start = TaskEvent(
                task_id=tid, queue="default", type="email:send", state=TaskState.PENDING, at=base
            )
            events.append(dataclasses.replace(start, payload=b"{}"))
            events.append(dataclasses.replace(start, state=TaskState.ACTIVE, worker="w"))
            events.append(dataclasses.replace(start, state=TaskState.COMPLETED, duration_ms=3.0))
        started = time.perf_counter()
        for item in events:
            store.record(item)
        assert await store.flush(timeout=600)
        elapsed = time.perf_counter() - started
        assert store.dropped == 0
    return len(events) / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--write-tasks", type=int, default=20_000)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()
    rows = args.rows

    name = f"strego_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    params = psycopg.conninfo.conninfo_to_dict(ADMIN_DSN) | {"dbname": name}
    dsn = psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in params.items()})
    try:
        await migrate_database(dsn)
        fill_s = await fill(dsn, rows)
        print(f"filled {rows:,} rows with COPY (+ VACUUM ANALYZE) in {fill_s:.1f} s")
        async with PostgresStore(dsn) as store:
            latencies = await search_latencies(store, dsn, rows, args.repeat)
        print(f"\nquery latency, median of {args.repeat} runs at {rows:,} rows:")
        for label, ms in latencies:
            print(f"  {label:<40} {ms:8.2f} ms")
        rate = await write_rate(dsn, args.write_tasks)
        print(f"\nwriter: {rate:,.0f} events/s merged ({args.write_tasks:,} tasks x 3 events)")
    finally:
        if args.keep:
            print(f"kept database {name}")
        else:
            with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


if __name__ == "__main__":
    asyncio.run(main())
