"""Typing test for the public API: mypy --strict checks this file; nobody runs it.

If a public signature changes shape, this file stops type-checking.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import strego


@dataclasses.dataclass
class Email:
    to: str


async def producer() -> None:
    broker = strego.RedisBroker("redis://localhost:6379/0", group="app", block=timedelta(seconds=2))
    async with strego.Client(broker, wait_replicas=0) as client:
        info: strego.TaskInfo = await client.enqueue(
            strego.Task(
                "email:send",
                Email("a@b.c"),
                queue="critical",
                max_retry=5,
                timeout=30,
                process_at=datetime.now(UTC),
                priority=10,
                unique_key="k",
                unique_ttl=timedelta(hours=1),
                labels={"team": "growth"},
            )
        )
        state: strego.TaskState = info.state
        many = await client.enqueue_many([strego.Task("t"), strego.Task("t", process_in=1.5)])
        for item in many:
            if isinstance(item, strego.DuplicateTaskError):
                holder: str = item.task_id
                del holder
        cancelled: bool = await client.cancel(info.id)
        del state, cancelled
        flow = strego.chain(
            strego.Task("a"),
            strego.group(strego.Task("b"), strego.Task("c", queue="other")),
            strego.chord([strego.Task("d"), strego.Task("e")], strego.Task("f")),
        )
        workflow: strego.WorkflowInfo = await client.enqueue(flow)
        first: list[str] = workflow.task_ids
        final = await client.result(workflow.id, timeout=30)
        del first, final
    await broker.aclose()


def worker() -> strego.Server:
    broker = strego.RedisBroker("redis://localhost:6379/0")
    server = strego.Server(broker, queues={"critical": 6, "default": 3}, concurrency=20)

    @server.handle("email:send")
    async def send(payload: Email, task: strego.Task) -> None:
        if task.retry_count > 2:
            raise strego.SkipRetry("giving up")
        raise strego.RetryAfter(timedelta(seconds=10))

    def sync_handler(task: strego.Task) -> None:
        created: datetime = task.created_at
        upstream: list[object] = task.upstream_results
        del created, upstream

    server.handle("sync", sync_handler, retry_policy=lambda task, n, exc: 2.0**n)
    return server


async def admin(broker: strego.RedisBroker) -> None:
    inspector = strego.Inspector(broker)
    queues: list[strego.QueueInfo] = await inspector.queues()
    records: list[strego.TaskRecord] = await inspector.list_tasks("default", "dead", limit=10)
    record: strego.TaskRecord | None = await inspector.get_task("id")
    workers: list[strego.WorkerInfo] = await inspector.workers()
    moved: int = await inspector.retry_all_dead("default")
    del queues, records, record, workers, moved


def sync_producer() -> None:
    with strego.SyncClient("redis://localhost:6379/0", group="app") as client:
        info: strego.TaskInfo = client.enqueue(strego.Task("t", b"raw bytes"))
        del info


def limited_server(broker: strego.RedisBroker) -> strego.Server:
    api = strego.RateLimit("api", 10, per=timedelta(seconds=1), burst=2)
    per_tenant = strego.ConcurrencyLimit("exports", 3, key=lambda task: str(task.payload))
    server = strego.Server(broker, queue_limits={"emails": strego.RateLimit("emails", 100)})

    @server.handle("api:call", limits=[api, per_tenant])
    async def call(task: strego.Task) -> None:
        del task

    return server


async def limits_admin(broker: strego.RedisBroker) -> None:
    from strego.records import LimitInfo

    found: list[LimitInfo] = await strego.Inspector(broker).limits()
    del found


async def periodic(broker: strego.RedisBroker) -> None:
    schedules = [
        strego.Periodic("reports:daily", {"kind": "daily"}, cron="0 9 * * *", tz="Europe/Berlin"),
        strego.Periodic(
            "heartbeat",
            every=timedelta(seconds=5),
            name="hb",
            queue="critical",
            catchup="all",
            max_catchup=3,
            max_lateness=60,
            overlap="skip",
            priority=5,
            max_retry=0,
            timeout=10,
            labels={"kind": "beat"},
        ),
    ]
    server = strego.Server(broker, periodic=schedules)
    ticks: list[datetime] = schedules[0].ticks(datetime.now(UTC), datetime.now(UTC))
    inspector = strego.Inspector(broker)
    infos: list[strego.PeriodicInfo] = await inspector.periodic("critical")
    for info in infos:
        nxt: datetime | None = info.next_run
        orphaned: bool = info.orphaned
    await inspector.pause_periodic("hb", "critical")
    await inspector.resume_periodic("hb", queue="critical")
    run: strego.TaskInfo = await inspector.trigger_periodic("hb", "critical")
    await inspector.delete_periodic("hb", "critical")
    del server, ticks, nxt, orphaned, run
