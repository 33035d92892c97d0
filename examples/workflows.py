"""Workflows: fan out thumbnails, fan in to a zip, then notify (chain + chord).

    python examples/workflows.py

``strego.chord(members, callback)`` runs the members in parallel and the callback once
after all of them, with their results in order in ``task.upstream_results``.
``strego.chain(a, b)`` runs ``b`` after ``a`` with ``[a's result]``. Flows nest, and
``client.result(workflow_id)`` awaits the whole flow. A member that dies cancels what
depends on it (``upstream_failed``); retrying it resumes the flow.
"""

from __future__ import annotations

import asyncio

from _redis import redis_url

import strego


class Storage:
    """Pretend object storage, with one image that fails until it is re-uploaded."""

    broken = {"img-3.png"}


def build_server(broker: strego.RedisBroker, storage: Storage) -> strego.Server:
    server = strego.Server(broker, concurrency=20)

    @server.handle("thumbnail")
    async def thumbnail(image: str) -> dict[str, str | int]:
        if image in storage.broken:
            raise strego.SkipRetry(f"{image} is corrupt")
        await asyncio.sleep(0.01)  # resizing...
        return {"image": image, "thumb": image.replace(".png", "-128.png"), "bytes": 2048}

    @server.handle("zip")
    async def make_zip(task: strego.Task) -> dict[str, int]:
        thumbs = task.upstream_results  # one per thumbnail, in the group's order
        return {"files": len(thumbs), "bytes": sum(t["bytes"] for t in thumbs)}

    @server.handle("notify")
    async def notify(task: strego.Task) -> str:
        (archive,) = task.upstream_results  # a chain step gets [previous result]
        return f"zip ready: {archive['files']} thumbnails, {archive['bytes']} bytes"

    return server


def pipeline(images: list[str]) -> strego.workflows.Chain:
    return strego.chain(
        strego.chord([strego.Task("thumbnail", image) for image in images], strego.Task("zip")),
        strego.Task("notify"),
    )


async def main(url: str) -> None:
    async with strego.RedisBroker(url, group="example-workflows") as broker:
        client = strego.Client(broker)
        inspector = strego.Inspector(broker)
        storage = Storage()
        async with build_server(broker, storage):
            ok = await client.enqueue(pipeline([f"img-{n}.png" for n in range(1, 3)]))
            print(f"workflow {ok.id}: {len(ok.task_ids)} tasks")
            print(await client.result(ok.id, timeout=30))

            flow = await client.enqueue(pipeline([f"img-{n}.png" for n in range(1, 6)]))
            try:
                await client.result(flow.id, timeout=30)
            except strego.TaskCancelledError as exc:
                print(f"notify was cancelled ({exc.reason}): a thumbnail failed")
            view = await inspector.workflow(flow.id)
            assert view is not None
            print(f"workflow state: {view.state};",
                  ", ".join(f"{t.type}={t.state}" for t in view.tasks[-3:]))  # fmt: skip

            storage.broken.clear()  # ...someone re-uploads the image
            dead = next(t for t in view.tasks if t.state == "dead")
            await inspector.retry(dead.id)  # the flow resumes from there
            while (view := await inspector.workflow(flow.id)) and view.state != "completed":
                await asyncio.sleep(0.05)
            print("after the retry:", await client.result(flow.id, timeout=30))


if __name__ == "__main__":
    with redis_url() as url:
        asyncio.run(main(url))
