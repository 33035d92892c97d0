"""Periodic tasks: a heartbeat every second and a daily report in Berlin time.

    python examples/periodic.py

Two workers declare the same schedules; no leader: Redis lets exactly one of them fire
each tick (the run's id is periodic:<name>:<tick ms>). It also shows the DST rules
(the report's ticks around a spring-forward day) and the Inspector's view.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from _redis import redis_url

import strego

SCHEDULES = [
    strego.Periodic("heartbeat", every=1, name="heartbeat-1s"),
    strego.Periodic("reports:daily", {"kind": "daily"}, cron="30 2 * * *", tz="Europe/Berlin"),
]


def build(broker: strego.RedisBroker, ran: asyncio.Queue[tuple[str, str]]) -> strego.Server:
    server = strego.Server(broker, periodic=SCHEDULES)

    @server.handle("heartbeat")
    async def heartbeat(task: strego.Task) -> None:
        await ran.put((task.id, broker.consumer))

    @server.handle("reports:daily")
    async def report(payload: dict[str, str]) -> None:
        print("building the", payload["kind"], "report")

    return server


async def main(url: str) -> None:
    berlin = ZoneInfo("Europe/Berlin")
    start = datetime(2026, 3, 28, tzinfo=berlin)  # 29 March 2026: 02:00 → 03:00
    for tick in SCHEDULES[1].ticks(start, start + timedelta(days=3)):
        print("report tick:", tick.strftime("%a %d %b %H:%M %Z"))

    ran: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    async with (
        strego.RedisBroker(url, group="example-periodic", consumer="worker-a") as a,
        strego.RedisBroker(url, group="example-periodic", consumer="worker-b") as b,
        build(a, ran),
        build(b, ran),
    ):
        seen: list[str] = []
        while len(seen) < 4:
            task_id, worker = await asyncio.wait_for(ran.get(), 10)
            print(f"{worker} ran {task_id}")
            seen.append(task_id)
        print(f"{len(seen)} ticks, {len(set(seen))} distinct: each ran exactly once")
        for info in await strego.Inspector(a).periodic():
            when = info.cron or f"every {info.every:g}s"
            nxt = info.next_run.astimezone(ZoneInfo(info.tz)) if info.next_run else None
            print(f"schedule {info.name}: {when} ({info.tz}), next {nxt:%Y-%m-%d %H:%M %Z}")
    # No worker declares them any more: remove them (a live worker would declare them
    # again at once; to stop a schedule your code still declares, pause it).
    async with strego.RedisBroker(url, group="example-periodic") as broker:
        for schedule in SCHEDULES:
            await strego.Inspector(broker).delete_periodic(schedule.name)


if __name__ == "__main__":
    with redis_url() as url:
        asyncio.run(main(url))
