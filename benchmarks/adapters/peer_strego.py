"""strego itself, through the public API of SPEC section 1 only.

Defaults everywhere (``batch_size=10``, JSON serializer); ``Server(concurrency=C)``
run by ``server.run()``. Bulk enqueue is ``Client.enqueue_many`` (one pipelined
round trip per chunk). ``enqueue_at`` feeds the scheduled-task precision workload.
"""

from __future__ import annotations

from datetime import UTC, datetime

import _common
from _common import dist_version, handle_async, handle_sync, main

import strego

GROUP = "bench"


class Strego:
    def __init__(self) -> None:
        self.broker: strego.RedisBroker | None = None
        self.client: strego.Client | None = None

    def version(self) -> str:
        return dist_version("strego", "redis", "hiredis")

    async def open(self, url: str) -> None:
        self.broker = strego.RedisBroker(url, group=GROUP)
        self.client = strego.Client(self.broker)

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()
        if self.broker is not None:
            await self.broker.aclose()

    async def enqueue_one(self, ts: float) -> None:
        assert self.client is not None
        await self.client.enqueue(strego.Task("noop", _payload(ts)))

    async def enqueue_batch(self, stamps: list[float]) -> None:
        assert self.client is not None
        await self.client.enqueue_many([strego.Task("noop", _payload(ts)) for ts in stamps])

    async def enqueue_at(self, due: float) -> None:
        assert self.client is not None
        when = datetime.fromtimestamp(due, UTC)
        await self.client.enqueue(strego.Task("noop", {"ts": due}, process_at=when))

    async def round_trip(self) -> object:
        """Client.result: the waiter registers, the ack script pushes the value."""
        assert self.client is not None
        info = await self.client.enqueue(strego.Task("answer", 21))
        return await self.client.result(info.id, timeout=10)

    def work(self, url: str, concurrency: int) -> None:
        broker = strego.RedisBroker(url, group=GROUP)
        server = strego.Server(broker, queues=["default"], concurrency=concurrency)

        @server.handle("answer")
        async def answer(payload: int) -> int:
            return payload * 2

        if _common.HANDLER == "sleep_sync":  # a sync handler: runs in the thread pool

            @server.handle("noop")
            def noop_sync(task: strego.Task) -> None:
                handle_sync(float(task.payload["ts"]))

        else:

            @server.handle("noop")
            async def noop(task: strego.Task) -> None:
                await handle_async(float(task.payload["ts"]))

        server.run()


def _payload(ts: float) -> dict[str, object]:
    """The task's JSON payload: the stamp, plus the workload's padding if any."""
    return {"ts": ts, "p": _common.PAYLOAD} if _common.PAYLOAD else {"ts": ts}


if __name__ == "__main__":
    main(Strego())
