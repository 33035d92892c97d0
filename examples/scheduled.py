"""Scheduled tasks: run in N seconds or at a given time, and cancel before they run.

    python examples/scheduled.py

Workers sleep until the next due time (no polling tick), so a task due at T starts
within about 100 ms of T on an idle system.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from _redis import redis_url

import strego


async def main(url: str) -> None:
    async with strego.RedisBroker(url, group="example-scheduled") as broker:
        server = strego.Server(broker)
        ran: asyncio.Queue[tuple[str, datetime]] = asyncio.Queue()

        @server.handle("reminder:send")
        async def remind(text: str) -> None:
            await ran.put((text, datetime.now(UTC)))

        client = strego.Client(broker)
        now = datetime.now(UTC)
        soon = await client.enqueue(strego.Task("reminder:send", "in 1 second", process_in=1))
        at = await client.enqueue(
            strego.Task("reminder:send", "at now + 2s", process_at=now + timedelta(seconds=2))
        )
        never = await client.enqueue(
            strego.Task("reminder:send", "cancelled", process_in=timedelta(hours=1))
        )
        for info in (soon, at, never):
            print(f"enqueued {info.id}: {info.state}, due {info.process_at:%H:%M:%S.%f}"[:-3])
        print("cancel the one-hour reminder:", await client.cancel(never.id))

        async with server:
            for info in (soon, at):
                text, when = await asyncio.wait_for(ran.get(), 10)
                due = info.process_at or now
                late_ms = (when - due).total_seconds() * 1000
                print(f"ran {text!r} at {when:%H:%M:%S.%f}"[:-3] + f" ({late_ms:.0f} ms after due)")

        record = await strego.Inspector(broker).get_task(never.id)
        print(f"the cancelled reminder is {record.state if record else 'gone'}")


if __name__ == "__main__":
    with redis_url() as url:
        asyncio.run(main(url))
