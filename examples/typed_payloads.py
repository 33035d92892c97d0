"""Typed payloads: the handler's annotation decides how the payload is decoded.

    python examples/typed_payloads.py

A pydantic model is validated, a dataclass or TypedDict is built, ``bytes`` gets the
raw payload. A payload that fails validation goes straight to the dead letters with
the validation error: retrying cannot fix it.
"""

from __future__ import annotations

import asyncio
import dataclasses

import pydantic
from _redis import redis_url
from typing_extensions import TypedDict  # pydantic needs this one before Python 3.12

import strego


class Order(pydantic.BaseModel):
    id: int
    amount_cents: int = pydantic.Field(gt=0)
    email: str


@dataclasses.dataclass
class Resize:
    url: str
    width: int = 640


class Ping(TypedDict):
    host: str
    port: int


def build_server(broker: strego.RedisBroker, done: asyncio.Queue[str]) -> strego.Server:
    server = strego.Server(broker)

    @server.handle("order:confirm")
    async def confirm(order: Order) -> None:
        await done.put(f"order {order.id}: {order.amount_cents / 100:.2f} EUR for {order.email}")

    @server.handle("image:resize")
    def resize(job: Resize) -> None:  # a plain def runs in a thread pool
        done.put_nowait(f"resize {job.url} to {job.width}px")

    @server.handle("net:ping")
    async def ping(target: Ping) -> None:
        await done.put(f"ping {target['host']}:{target['port']}")

    @server.handle("blob:store")
    async def store(data: bytes) -> None:
        await done.put(f"stored {len(data)} raw bytes: {data[:12]!r}")

    return server


async def main(url: str) -> None:
    async with strego.RedisBroker(url, group="example-typed") as broker:
        client = strego.Client(broker)
        await client.enqueue(
            strego.Task("order:confirm", Order(id=1, amount_cents=1999, email="a@b.c"))
        )
        await client.enqueue(strego.Task("image:resize", Resize("https://example.com/cat.png")))
        await client.enqueue(strego.Task("net:ping", Ping(host="example.com", port=443)))
        await client.enqueue(strego.Task("blob:store", b"\x89PNG\r\n\x1a\n..."))
        # A producer that sends the wrong shape (say, an old version of your app):
        bad = await client.enqueue(strego.Task("order:confirm", {"id": 2, "amount_cents": -5}))

        done: asyncio.Queue[str] = asyncio.Queue()
        inspector = strego.Inspector(broker)
        async with build_server(broker, done):
            for _ in range(4):
                print(" ", await asyncio.wait_for(done.get(), 10))
            while (record := await inspector.get_task(bad.id)) is None or record.state != "dead":
                await asyncio.sleep(0.05)
        print(f"invalid payload dead-lettered at once ({record.dead_reason}):")
        print("   ", (record.last_error or "").splitlines()[0])


if __name__ == "__main__":
    with redis_url() as url:
        asyncio.run(main(url))
