"""Task history in PostgreSQL: search finished tasks and see each one's timeline.

    createdb strego_examples   # once; or point STREGO_POSTGRES_DSN at a database of yours
    python examples/postgres_history.py

Redis keeps what is running and a short tail of what finished; a PostgresStore
records every transition (enqueued, started, retried, completed, dead...) for as
long as you like, written in batches off the hot path. Needs ``strego[postgres]``.
"""

from __future__ import annotations

import asyncio
import os

from _redis import redis_url

import strego
from strego.store.postgres import PostgresStore
from strego.store.query import TaskFilter

DEFAULT_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=strego_examples"


async def main(url: str, dsn: str) -> None:
    store = PostgresStore(dsn)
    print("schema migrations applied:", await store.migrate() or "none (up to date)")
    async with strego.RedisBroker(url, group="example-history") as broker:
        server = strego.Server(broker, store=store, retry_base=0.1, retry_max=0.2)

        @server.handle("invoice:send")
        async def send(task: strego.Task) -> None:
            if task.labels.get("customer") == "acme" and task.retry_count == 0:
                raise ConnectionError("mail server busy")

        async with strego.Client(broker, store=store) as client:
            infos = [
                await client.enqueue(
                    strego.Task("invoice:send", {"n": n}, labels={"customer": customer})
                )
                for n, customer in enumerate(["acme", "globex", "initech"])
            ]
            inspector = strego.Inspector(broker)
            async with server:
                for info in infos:
                    while (
                        r := await inspector.get_task(info.id)
                    ) is None or r.state != "completed":
                        await asyncio.sleep(0.05)
            await store.flush()

            page = await store.search(TaskFilter(type="invoice:send", labels={"customer": "acme"}))
            print(f"history search customer=acme: {[t.id for t in page.items]}")
            detail = await store.get(infos[0].id)
            assert detail is not None
            print(f"timeline of {detail.id} ({detail.state}, {detail.retry_count} retry):")
            for entry in detail.timeline:
                error = f"  error: {entry.error}" if entry.error else ""
                print(f"  {entry.at:%H:%M:%S.%f}"[:-3] + f"  {entry.state}{error}")
            print(
                "completed invoices in history:",
                await store.count(TaskFilter(states={strego.TaskState.COMPLETED})),
            )


if __name__ == "__main__":
    with redis_url() as url:
        asyncio.run(main(url, os.environ.get("STREGO_POSTGRES_DSN", DEFAULT_DSN)))
