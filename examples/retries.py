"""Retries and dead letters: backoff, RetryAfter, SkipRetry, then retry from the dead.

    python examples/retries.py

A handler that raises is retried with exponential backoff up to ``max_retry`` times,
then dead-lettered. ``RetryAfter(seconds)`` picks the delay; ``SkipRetry`` gives up
at once. Dead tasks keep their error and traceback and can be run again.
"""

from __future__ import annotations

import asyncio

from _redis import redis_url

import strego


class Gateway:
    """A dependency that is down until someone fixes it."""

    up = False


def build_server(broker: strego.RedisBroker, log: list[str], gateway: Gateway) -> strego.Server:
    # Short delays so the example is quick; the defaults are 1 s doubling up to 10 min.
    server = strego.Server(broker, retry_base=0.2, retry_max=1.0)

    @server.handle("flaky:call")
    async def flaky(task: strego.Task) -> None:
        log.append(f"flaky attempt {task.retry_count}")
        if task.retry_count < 2:
            raise ConnectionError("upstream reset the connection")

    @server.handle("rate:limited")
    async def limited(task: strego.Task) -> None:
        log.append(f"rate-limited attempt {task.retry_count}")
        if task.retry_count == 0:
            raise strego.RetryAfter(0.5, "429: come back in 0.5 s")

    @server.handle("card:charge")
    async def charge(card: str) -> None:
        raise strego.SkipRetry(f"card {card} declined: retrying cannot help")

    @server.handle("gateway:call")
    async def call_gateway(task: strego.Task) -> None:
        log.append(f"gateway attempt {task.retry_count}")
        if not gateway.up:
            raise TimeoutError("gateway timed out")

    return server


async def wait_for_state(
    inspector: strego.Inspector, task_id: str, state: str
) -> strego.TaskRecord:
    while (record := await inspector.get_task(task_id)) is None or record.state != state:
        await asyncio.sleep(0.05)
    return record


async def main(url: str) -> None:
    async with strego.RedisBroker(url, group="example-retries") as broker:
        client = strego.Client(broker)
        inspector = strego.Inspector(broker)
        log: list[str] = []
        gateway = Gateway()
        server = build_server(broker, log, gateway)
        flaky = await client.enqueue(strego.Task("flaky:call", max_retry=5))
        limited = await client.enqueue(strego.Task("rate:limited"))
        card = await client.enqueue(strego.Task("card:charge", "4000-0000-0000-0002"))
        call = await client.enqueue(strego.Task("gateway:call", max_retry=2))

        async with server:
            await wait_for_state(inspector, flaky.id, "completed")
            await wait_for_state(inspector, limited.id, "completed")
            declined = await wait_for_state(inspector, card.id, "dead")
            dead = await wait_for_state(inspector, call.id, "dead")
            print("\n".join(log))
            print(f"card:charge is dead ({declined.dead_reason}): {declined.last_error}")
            print(f"gateway:call is dead ({dead.dead_reason}) after {dead.retry_count} retries")
            print("dead letters:", [t.type for t in await inspector.dead_letters("default")])

            gateway.up = True  # ...someone deploys a fix
            await inspector.retry(call.id)  # runs again now, attempts reset to 0
            await wait_for_state(inspector, call.id, "completed")
            print("after the fix, gateway:call retried from the dead letters: completed")


if __name__ == "__main__":
    with redis_url() as url:
        asyncio.run(main(url))
