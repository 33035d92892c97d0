"""The basics: enqueue tasks, run a worker, watch them complete.

    python examples/basic.py

In production the producer (your web app) and the worker are separate processes:
the worker is ``strego worker yourapp.tasks:server``; see docs/quickstart.md.
"""

from __future__ import annotations

import asyncio
import dataclasses

from _redis import redis_url

import strego


@dataclasses.dataclass
class Email:
    to: str
    subject: str


def build_server(broker: strego.RedisBroker) -> strego.Server:
    server = strego.Server(broker, queues=["default"], concurrency=5)

    @server.handle("email:send")
    async def send_email(email: Email, task: strego.Task) -> None:
        # The payload arrives decoded into the annotated type.
        await asyncio.sleep(0.1)  # pretend to talk to an SMTP server
        print(f"  sent {email.subject!r} to {email.to}  (task {task.id})")

    return server


async def main(url: str) -> None:
    async with strego.RedisBroker(url, group="example-basic") as broker:
        client = strego.Client(broker)
        infos = [
            await client.enqueue(
                strego.Task("email:send", Email(f"user{i}@example.com", "Welcome!"))
            )
            for i in range(3)
        ]
        print(f"enqueued {len(infos)} tasks: {', '.join(i.id for i in infos)}")

        inspector = strego.Inspector(broker)
        async with build_server(broker):  # a worker, inside this process
            for info in infos:
                while (record := await inspector.get_task(info.id)) is None or (
                    record.state != strego.TaskState.COMPLETED
                ):
                    await asyncio.sleep(0.05)
        print(f"done: all {len(infos)} tasks completed")


if __name__ == "__main__":
    with redis_url() as url:
        asyncio.run(main(url))
