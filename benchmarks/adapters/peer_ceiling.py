"""The raw-Redis ceiling: redis-py (hiredis) asyncio on one stream, no queue library.

Enqueue is XADD (one per await, or pipelined in batches); a worker is one consumer
loop of XREADGROUP COUNT n + XACK. ``CEILING_COUNT`` picks the variant: 100 reads
100 entries per round trip and acks them in one pipeline; 1 reads one entry and
acks it with its own round trip. The worker has no concurrency knob: one loop.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid

import _common
import redis.asyncio as aioredis
from _common import dist_version, main
from redis.exceptions import ResponseError

STREAM = "ceiling:stream"
GROUP = "ceiling"


async def ensure_group(client: aioredis.Redis) -> None:
    try:
        await client.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    except ResponseError as exc:  # BUSYGROUP: another process made it first
        if "BUSYGROUP" not in str(exc):
            raise


async def consume(client: aioredis.Redis, count: int) -> None:
    consumer = f"{socket.gethostname()}-{os.getpid()}"
    await ensure_group(client)
    while True:
        reply = await client.xreadgroup(GROUP, consumer, {STREAM: ">"}, count=count, block=1000)
        ids, replies = [], []
        for _stream, entries in reply or ():
            for entry_id, fields in entries:
                await _common.handle_async(float(fields[b"ts"]))
                ids.append(entry_id)
                if b"reply" in fields:  # a round trip: answer with n * 2
                    replies.append((fields[b"reply"], int(fields[b"n"]) * 2))
        if not ids:
            continue
        if replies:
            async with client.pipeline(transaction=False) as pipe:
                for entry_id in ids:
                    pipe.xack(STREAM, GROUP, entry_id)
                for key, value in replies:
                    pipe.rpush(key, value)
                    pipe.expire(key, 60)
                await pipe.execute()
            continue
        if count == 1:
            await client.xack(STREAM, GROUP, ids[0])
            continue
        async with client.pipeline(transaction=False) as pipe:
            for entry_id in ids:
                pipe.xack(STREAM, GROUP, entry_id)
            await pipe.execute()


class Ceiling:
    def __init__(self) -> None:
        self.client: aioredis.Redis | None = None
        count = int(os.environ.get("CEILING_COUNT", "100"))
        # Big payloads: about 1 MB per read, so a rate is never one read's worth of
        # entries timed by the handlers alone (the transfer would go unmeasured).
        payload = int(os.environ.get("BENCH_PAYLOAD_BYTES", "0"))
        self.count = max(1, min(count, 2**20 // payload)) if payload else count

    def version(self) -> str:
        return dist_version("redis", "hiredis")

    async def open(self, url: str) -> None:
        self.client = aioredis.Redis.from_url(url)
        await ensure_group(self.client)

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()

    async def enqueue_one(self, ts: float) -> None:
        assert self.client is not None
        await self.client.xadd(STREAM, _fields(ts))

    async def enqueue_batch(self, stamps: list[float]) -> None:
        assert self.client is not None
        async with self.client.pipeline(transaction=False) as pipe:
            for ts in stamps:
                pipe.xadd(STREAM, _fields(ts))
            await pipe.execute()

    async def round_trip(self) -> int:
        """XADD and BLPOP on the task's own result list in one pipeline (1 round trip
        plus the worker's hop): the least any queue on Redis can do."""
        assert self.client is not None
        key = f"ceiling:result:{uuid.uuid4().hex}"
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.xadd(STREAM, {"ts": 0, "reply": key, "n": 21})
            pipe.blpop([key], timeout=10)
            _, popped = await pipe.execute()
        return int(popped[1])

    def work(self, url: str, concurrency: int) -> None:
        async def run() -> None:
            client = aioredis.Redis.from_url(url)
            await consume(client, self.count)

        asyncio.run(run())


def _fields(ts: float) -> dict[str, float | str]:
    return {"ts": ts, "p": _common.PAYLOAD} if _common.PAYLOAD else {"ts": ts}


if __name__ == "__main__":
    main(Ceiling())
