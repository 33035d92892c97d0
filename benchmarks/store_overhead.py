"""What the PostgreSQL history costs a worker: throughput with the store on vs off.

    .venv/bin/python -m benchmarks.store_overhead [--tasks 20000] [--concurrency 10]

Starts a private redis-server and a scratch PostgreSQL database, pre-fills ``--tasks``
no-op tasks, and drains them with one in-process ``Server`` — once without a store,
once with ``PostgresStore`` (the worker records active + completed for every task).
Both runs use the same process and Redis, so the ratio is the store's cost on the
worker's event loop. Target: store on >= 70 % of store off. Each mode runs
``--rounds`` times (alternating) and the best rate of each is kept.

``--stub-writes`` keeps everything the store does on the event loop (record, batch,
encode) but skips the SQL, to separate the store's own cost from PostgreSQL competing
for the same CPU when the database runs on the benchmark host.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid

import psycopg
from psycopg import sql

import strego
from strego.embedded import EmbeddedRedis
from strego.events import TaskEvent
from strego.store.postgres import PostgresStore, migrate_database, writer, writes
from strego.store.query import TaskFilter
from strego.testing import drain

ADMIN_DSN = os.environ.get(
    "STREGO_BENCH_POSTGRES_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
)


async def one_run(url: str, dsn: str | None, tasks: int, concurrency: int) -> tuple[float, int]:
    """Tasks per second for one drain; with ``dsn``, also the rows the store wrote."""
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
        started = time.perf_counter()
        await drain(server, timeout=600)
        rate = tasks / (time.perf_counter() - started)
        rows = 0
        if dsn:
            async with PostgresStore(dsn) as reader:
                rows = await reader.count(TaskFilter(queue=queue))
        return rate, rows
    finally:
        await broker.aclose()


async def _encode_only(conn: object, events: list[TaskEvent]) -> None:
    for rows in writes.split_rounds(events):
        writes.encode_rows(rows)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--stub-writes", action="store_true", help="encode but skip the SQL")
    args = parser.parse_args()
    if args.stub_writes:
        writer.write_events = _encode_only  # type: ignore[attr-defined,assignment]

    name = f"strego_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    params = psycopg.conninfo.conninfo_to_dict(ADMIN_DSN) | {"dbname": name}
    dsn = psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in params.items()})
    redis = EmbeddedRedis().start()
    try:
        await migrate_database(dsn)
        off: list[float] = []
        on: list[float] = []
        for _ in range(args.rounds):
            rate, _rows = await one_run(redis.url, None, args.tasks, args.concurrency)
            off.append(rate)
            rate, rows = await one_run(redis.url, dsn, args.tasks, args.concurrency)
            on.append(rate)
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
    finally:
        redis.cleanup()
        with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


if __name__ == "__main__":
    asyncio.run(main())
