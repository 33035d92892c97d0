"""Enqueue → process: typed handlers, signatures, sync handlers, continuous concurrency."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from typing import Any

import pydantic

import strego
from tests.conftest import wait_until
from tests.integration.conftest import ServerFactory
from tests.integration.probes import processed_at_least


@dataclasses.dataclass
class Email:
    to: str
    subject: str


class Invoice(pydantic.BaseModel):
    number: int
    lines: list[str]


async def test_typed_payloads_reach_handlers(
    client: strego.Client, make_server: ServerFactory
) -> None:
    """Dataclass and pydantic payloads arrive decoded; the task view carries its options."""
    seen: list[Any] = []

    async def email(payload: Email, task: strego.Task) -> None:
        seen.append((payload, task.type, task.retry_count, task.labels, task.max_retry))

    async def invoice(payload: Invoice) -> None:
        seen.append(payload)

    await make_server({"email": email, "invoice": invoice})
    await client.enqueue(strego.Task("email", Email("a@b.c", "Hi"), labels={"k": "v"}, max_retry=2))
    await client.enqueue(strego.Task("invoice", Invoice(number=7, lines=["x"])))
    await wait_until(lambda: len(seen) == 2)
    assert (Email("a@b.c", "Hi"), "email", 0, {"k": "v"}, 2) in seen
    assert Invoice(number=7, lines=["x"]) in seen


async def test_task_only_and_sync_handlers(
    client: strego.Client, make_server: ServerFactory
) -> None:
    """A (task) handler gets the task; a plain def runs in a worker thread."""
    seen: list[Any] = []

    async def by_task(task: strego.Task) -> None:
        seen.append(("task", task.payload))

    def blocking(payload: dict[str, int]) -> None:
        seen.append(("sync", payload, threading.current_thread() is threading.main_thread()))

    await make_server({"a": by_task, "b": blocking})
    await client.enqueue(strego.Task("a", [1, 2]))
    await client.enqueue(strego.Task("b", {"n": 1}))
    await wait_until(lambda: len(seen) == 2)
    assert ("task", [1, 2]) in seen
    assert ("sync", {"n": 1}, False) in seen


async def test_raw_bytes_payload(client: strego.Client, make_server: ServerFactory) -> None:
    """A bytes payload is stored raw and reaches a bytes-annotated handler unchanged."""
    seen: list[bytes] = []

    async def raw(payload: bytes) -> None:
        seen.append(payload)

    await make_server({"raw": raw})
    blob = bytes(range(256))
    await client.enqueue(strego.Task("raw", blob))
    await wait_until(lambda: seen == [blob])


async def test_continuous_concurrency(client: strego.Client, make_server: ServerFactory) -> None:
    """A freed slot is refilled at once: one slow task never holds back the others."""
    finished: list[str] = []

    async def work(payload: dict[str, float]) -> None:
        await asyncio.sleep(payload["s"])
        finished.append(str(payload["s"]))

    await make_server({"w": work}, concurrency=2)
    await client.enqueue(strego.Task("w", {"s": 2.0}))
    await client.enqueue_many([strego.Task("w", {"s": 0.05}) for _ in range(10)])
    await wait_until(lambda: len(finished) == 10)
    assert "2.0" not in finished  # the ten short ones did not wait for the long one


async def test_concurrency_limit_respected(
    client: strego.Client, make_server: ServerFactory
) -> None:
    """No more than `concurrency` handlers run at once."""
    running = 0
    peak = 0
    done = 0

    async def work(task: strego.Task) -> None:
        nonlocal running, peak, done
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.02)
        running -= 1
        done += 1

    await make_server({"w": work}, concurrency=3)
    await client.enqueue_many([strego.Task("w") for _ in range(30)])
    await wait_until(lambda: done == 30)
    assert peak == 3


async def test_enqueue_many_returns_infos(
    client: strego.Client, inspector: strego.Inspector
) -> None:
    """enqueue_many returns one TaskInfo per task, in order, pending or scheduled."""
    tasks = [strego.Task("t", {"i": i}, process_in=60 if i % 2 else None) for i in range(6)]
    infos = await client.enqueue_many(tasks)
    assert [i.id for i in infos if isinstance(i, strego.TaskInfo)] == [t.id for t in tasks]
    states = [i.state for i in infos if isinstance(i, strego.TaskInfo)]
    assert states == ["pending", "scheduled"] * 3
    info = await inspector.queue_info("default")
    assert (info.pending, info.scheduled, info.enqueued) == (3, 3, 6)


async def test_sync_client(redis_url: str, prefix: str, inspector: strego.Inspector) -> None:
    """SyncClient enqueues and cancels from synchronous code."""

    def produce() -> tuple[strego.TaskInfo, bool]:
        with strego.SyncClient(redis_url, prefix=prefix, group="tests") as sync:
            info = sync.enqueue(strego.Task("t", {"x": 1}))
            return info, sync.cancel(info.id)

    info, cancelled = await asyncio.to_thread(produce)
    assert info.state == "pending"
    assert cancelled
    record = await inspector.get_task(info.id)
    assert record is not None and record.state == "cancelled"


async def test_worker_removes_its_consumer_on_clean_exit(
    client: strego.Client, make_server: ServerFactory, inspector: strego.Inspector
) -> None:
    """A worker that stops cleanly leaves no consumer behind in the group."""

    async def noop(task: strego.Task) -> None:
        return None

    server = await make_server({"n": noop})
    await client.enqueue(strego.Task("n"))
    await wait_until(lambda: inspector.queue_info("default"), timeout=5)
    await wait_until(lambda: processed_at_least(inspector, 1))
    assert [c.name for c in await inspector.consumers("default")] == [server.broker.consumer]
    await server.stop()
    assert await inspector.consumers("default") == []
    assert await inspector.workers() == []


async def test_retried_enqueue_of_a_finished_task_is_a_no_op(
    client: strego.Client, make_server: ServerFactory, inspector: strego.Inspector
) -> None:
    """Re-sending an already finished auto-id task (a retry after a lost reply) runs nothing."""
    runs: list[str] = []

    async def work(task: strego.Task) -> None:
        runs.append(task.id)

    task = strego.Task("w")
    await client.enqueue(task)
    await make_server({"w": work})
    await wait_until(lambda: runs == [task.id])
    await wait_until(lambda: processed_at_least(inspector, 1))
    again = await client.enqueue(task)  # what a client retry sends: the same task id
    assert again.state == "completed"
    await asyncio.sleep(0.3)
    assert runs == [task.id]
    assert (await inspector.queue_info("default")).enqueued == 1
