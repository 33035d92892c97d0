"""Enqueues one big workflow over three queues, to be SIGKILLed part-way
(tests/workflows/test_enqueue_crash.py). STREGO_REDIS_URL, STREGO_PREFIX.
Run: python -m tests.workflows.flow_producer
"""

from __future__ import annotations

import asyncio
import os

import strego

QUEUES = ("fa", "fb", "fc")


async def main() -> None:
    broker = strego.RedisBroker(os.environ["STREGO_REDIS_URL"], prefix=os.environ["STREGO_PREFIX"])
    client = strego.Client(broker)
    members = [strego.Task("member", n, queue=QUEUES[n % 3]) for n in range(3000)]
    flow = strego.chain(
        strego.chord(members, strego.Task("total", queue="fb")), strego.Task("total", queue="fc")
    )
    print("enqueueing", flush=True)
    info = await client.enqueue(flow)
    print(info.id, flush=True)
    await broker.aclose()


if __name__ == "__main__":
    asyncio.run(main())
