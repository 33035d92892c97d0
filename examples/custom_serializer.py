"""Serializers: msgpack (built in with ``strego[msgpack]``) and one of your own.

    python examples/custom_serializer.py

A serializer is any object with ``name``, ``dumps(obj) -> bytes`` and
``loads(bytes) -> obj``. Its name travels with each task, so the worker decodes
with the right one whatever the producer used. Give the Server the custom ones.
Pickle is not offered, on purpose: a worker must never execute what it reads.
"""

from __future__ import annotations

import asyncio
import json
import zlib
from typing import Any

from _redis import redis_url

import strego


class CompressedJson:
    """JSON, zlib-compressed: for large, repetitive payloads."""

    name = "json+zlib"

    def dumps(self, obj: Any) -> bytes:
        return zlib.compress(json.dumps(obj, separators=(",", ":")).encode())

    def loads(self, data: bytes) -> Any:
        return json.loads(zlib.decompress(data))


async def main(url: str) -> None:
    async with strego.RedisBroker(url, group="example-serializers") as broker:
        server = strego.Server(broker, serializers=[CompressedJson()])
        got: asyncio.Queue[str] = asyncio.Queue()

        @server.handle("metrics:ingest")
        async def ingest(batch: dict[str, Any], task: strego.Task) -> None:
            size = len(task.payload_bytes)
            await got.put(f"{len(batch['points'])} points, {size} bytes in Redis")

        points = {"points": [{"sensor": "temp-1", "value": 21.5 + i % 3} for i in range(200)]}
        client = strego.Client(broker)
        for serializer in (None, strego.MsgpackSerializer(), CompressedJson()):
            task = strego.Task("metrics:ingest", points, serializer=serializer)
            await client.enqueue(task)
            label = serializer.name if serializer else "json (default)"
            print(f"{label:>15}: enqueued {len(task.payload_bytes)} bytes")

        async with server:
            for _ in range(3):
                print("  handled:", await asyncio.wait_for(got.get(), 10))


if __name__ == "__main__":
    with redis_url() as url:
        asyncio.run(main(url))
