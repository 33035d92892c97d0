"""What the PostgreSQL history costs a worker: throughput with the store on vs off.

    .venv/bin/python -m benchmarks.store_overhead [--tasks 20000] [--concurrency 10]

Starts a private redis-server and a scratch PostgreSQL database, pre-fills ``--tasks``
no-op tasks, and drains them with one in-process ``Server`` — once without a store,
once with ``PostgresStore`` (the worker records active + completed for every task; a
task whose two events share a batch is written as one row, see writes.py).
Both runs use the same process and Redis, so the ratio is the store's cost on the
worker's event loop. Target: store on >= 70 % of store off. Each mode runs
``--rounds`` times (alternating) and the best rate of each is kept.

With PostgreSQL on this host, it also prints the CPU time every ``postgres`` process
used during each store-on drain (from /proc; other databases' work on the host counts).

``--writer-cpu`` skips the worker runs and times only the SQL side: ``--tasks`` fast
tasks' "active" + "completed" written with ``write_events`` in batches of 500, once as
new rows and once onto rows that already hold "pending", reporting the CPU time of
the PostgreSQL backend (read from /proc, so only when PostgreSQL runs on this host).

``--stub-writes`` keeps everything the store does on the event loop (record, batch,
encode) but skips the SQL, to separate the store's own cost from PostgreSQL competing
for the same CPU when the database runs on the benchmark host.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import time
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg import sql

import strego
from strego.embedded import EmbeddedRedis
from strego.events import TaskEvent
from strego.store.postgres import PostgresStore, migrate_database, writer, writes
from strego.store.query import TaskFilter
from strego.task import TaskState
from strego.testing import drain

ADMIN_DSN = os.environ.get(
    "STREGO_BENCH_POSTGRES_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
)


async def one_run(
    url: str, dsn: str | None, tasks: int, concurrency: int
) -> tuple[float, int, float | None]:
    """Tasks/s for one drain; with ``dsn``, the rows the store wrote and PostgreSQL's CPU."""
    queue = f"bench{uuid.uuid4().hex[:8]}"
    broker = strego.RedisBroker(url, group="bench")
    store = PostgresStore(dsn) if dsn else None
    server = strego.Server(broker, queues=[queue], concurrency=concurrency, store=store)

    @server.handle("noop")
    async def noop(task: strego.Task) -> None:
        return None

    try:
        async with strego.Client(broker) as client:  # enqueue without history: not measured
            for start in range(0, tasks, 1000):
                batch = [strego.Task("noop", None, queue=queue) for _ in range(start, start + 1000)]
                await client.enqueue_many(batch[: tasks - start])
        started, cpu_before = time.perf_counter(), _postgres_cpu_s()
        await drain(server, timeout=600)  # stops the server: the store writes everything
        rate = tasks / (time.perf_counter() - started)
        cpu_after = _postgres_cpu_s()
        pg_cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
        rows = 0
        if dsn:
            async with PostgresStore(dsn) as reader:
                rows = await reader.count(TaskFilter(queue=queue))
        return rate, rows, pg_cpu
    finally:
        await broker.aclose()


async def _encode_only(conn: object, events: list[TaskEvent]) -> None:
    for round_ in writes.split_rounds(events):
        for rows in (round_.singles, round_.pairs):
            if rows:
                writes.encode_rows(rows)


def _postgres_cpu_s() -> float | None:
    """CPU seconds used so far by every ``postgres`` process on this host (Linux)."""
    total, found = 0.0, False
    for pid in filter(str.isdigit, os.listdir("/proc") if os.path.isdir("/proc") else ()):
        with contextlib.suppress(OSError):
            with open(f"/proc/{pid}/comm") as comm:
                if comm.read().strip() != "postgres":
                    continue
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            total += sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")
            found = True
    return total if found else None


def _backend_cpu_s(pid: int) -> float | None:
    with contextlib.suppress(OSError):
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return None


def _fast_task(task_id: str, at: datetime) -> list[TaskEvent]:
    def one(state: TaskState, when: datetime, duration_ms: float | None) -> TaskEvent:
        return TaskEvent(
            task_id=task_id, queue="bench", type="noop", state=state, at=when,
            worker="w1", duration_ms=duration_ms,
        )  # fmt: skip

    return [
        one(TaskState.ACTIVE, at, None),
        one(TaskState.COMPLETED, at + timedelta(milliseconds=1), 0.5),
    ]


async def writer_cost(dsn: str, tasks: int) -> None:
    """PostgreSQL time for the worker's events of ``tasks`` fast tasks."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        cur = await conn.execute("SELECT pg_backend_pid()")
        pid = int((await cur.fetchone() or (0,))[0])
        for label, pending in (("new rows", False), ("onto pending rows", True)):
            now, prefix = datetime.now(UTC), uuid.uuid4().hex[:8]
            ids = [f"{prefix}-{n}" for n in range(tasks)]
            if pending:
                created = [
                    TaskEvent(task_id=i, queue="bench", type="noop", state=TaskState.PENDING,
                              at=now, payload=b"{}", serializer="json", created_at=now)
                    for i in ids
                ]  # fmt: skip
                for start in range(0, tasks, 500):
                    await writes.write_events(conn, created[start : start + 500])
            events = [e for i in ids for e in _fast_task(i, now)]
            cpu_before, started = _backend_cpu_s(pid), time.perf_counter()
            for start in range(0, len(events), 500):
                await writes.write_events(conn, events[start : start + 500])
            wall, cpu_after = time.perf_counter() - started, _backend_cpu_s(pid)
            cpu = (
                "n/a"
                if cpu_before is None or cpu_after is None
                else f"{cpu_after - cpu_before:.2f} s"
            )
            print(f"  {tasks:,} tasks, {label:18} wall {wall:.2f} s, PostgreSQL CPU {cpu}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--stub-writes", action="store_true", help="encode but skip the SQL")
    parser.add_argument("--writer-cpu", action="store_true", help="time only the SQL side")
    args = parser.parse_args()
    if args.stub_writes:
        writer.write_events = _encode_only  # type: ignore[attr-defined,assignment]

    name = f"strego_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    params = psycopg.conninfo.conninfo_to_dict(ADMIN_DSN) | {"dbname": name}
    dsn = psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in params.items()})
    if args.writer_cpu:
        try:
            await migrate_database(dsn)
            for _ in range(args.rounds):
                await writer_cost(dsn, args.tasks)
        finally:
            _drop(name)
        return
    redis = EmbeddedRedis().start()
    try:
        await migrate_database(dsn)
        off: list[float] = []
        on: list[float] = []
        pg_cpu: list[float] = []
        for _ in range(args.rounds):
            rate, _rows, _cpu = await one_run(redis.url, None, args.tasks, args.concurrency)
            off.append(rate)
            rate, rows, cpu = await one_run(redis.url, dsn, args.tasks, args.concurrency)
            on.append(rate)
            pg_cpu += [cpu] if cpu is not None else []
            if not args.stub_writes:
                assert rows == args.tasks, f"store wrote {rows} of {args.tasks} tasks"
        print(f"{args.tasks:,} no-op tasks, concurrency {args.concurrency}, best of {args.rounds}")
        print(
            f"  store off: {max(off):9,.0f} tasks/s   (runs: {', '.join(f'{r:,.0f}' for r in off)})"
        )
        print(
            f"  store on:  {max(on):9,.0f} tasks/s   (runs: {', '.join(f'{r:,.0f}' for r in on)})"
        )
        print(f"  on/off:    {max(on) / max(off):9.0%}   (target >= 70%)")
        if pg_cpu:
            runs = ", ".join(f"{c:.2f}" for c in pg_cpu)
            print(f"  PostgreSQL CPU per store-on run: {min(pg_cpu):.2f} s   (runs: {runs})")
    finally:
        redis.cleanup()
        _drop(name)


def _drop(name: str) -> None:
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


if __name__ == "__main__":
    asyncio.run(main())
