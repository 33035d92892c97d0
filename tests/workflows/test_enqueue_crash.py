"""Enqueue is atomic where workers can see it: a producer dying part-way leaves either
a complete, runnable flow or nothing visible to workers (and what it wrote expires)."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import strego
from strego.broker.redis.flows.store import put_parts, start_workflow
from strego.workflows.graph import compile_flow
from tests.conftest import wait_until
from tests.integration.conftest import ServerFactory, make_server  # noqa: F401
from tests.workflows.flow_producer import QUEUES

ROOT = Path(__file__).resolve().parents[2]


def handlers() -> dict[str, Any]:
    async def member(payload: int) -> int:
        return payload

    async def total(task: strego.Task) -> int:
        return sum(r if isinstance(r, int) else 0 for r in task.upstream_results)

    return {"member": member, "total": total}


def small_flow() -> strego.workflows.Chain:
    return strego.chain(
        strego.chord(
            [strego.Task("member", n, queue=QUEUES[n % 3]) for n in range(9)],
            strego.Task("total", queue="fb"),
        ),
        strego.Task("total", queue="fc"),
    )


def start_producer(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.workflows.flow_producer"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip


async def visible(broker: strego.RedisBroker) -> list[str]:
    """Stream entries and index records in the flow's queues (what workers and
    Client.result would see)."""
    seen: list[str] = []
    for queue in QUEUES:
        keys = broker.keys(queue)
        for stream in keys.streams:
            if await broker.redis.exists(stream) and await broker.redis.xlen(stream):
                seen.append(stream)
        if await broker.redis.hlen(keys.index):
            seen.append(keys.index)
    return seen


async def test_producer_dead_before_commit_leaves_nothing_visible(
    make_server: ServerFactory, broker: strego.RedisBroker, client: strego.Client
) -> None:
    """Phase 1 only: no task runs, Client.result says not found, the parts expire."""
    graph = compile_flow(small_flow())
    await put_parts(broker, graph, "wf_crashed")
    assert await visible(broker) == []
    with pytest.raises(strego.TaskNotFoundError):
        await client.result("wf_crashed", timeout=0)
    for queue in QUEUES:
        assert await broker.redis.pttl(broker.keys(queue).flow("wf_crashed")) > 0
    server = await make_server(handlers(), queues=list(QUEUES))
    await server.stop()  # a worker came and went: it found nothing to run or open
    assert await visible(broker) == []
    for queue in QUEUES:
        assert await broker.redis.hget(broker.keys(queue).stats, "processed") is None


async def test_producer_dead_after_commit_leaves_a_runnable_flow(
    make_server: ServerFactory, broker: strego.RedisBroker, client: strego.Client
) -> None:
    """Committed but the other queues never opened by the producer: the workers of the
    home queue open them from its outbox and the flow completes."""
    graph = compile_flow(small_flow())
    await put_parts(broker, graph, "wf_half")
    await start_workflow(broker, graph, "wf_half")
    await make_server(handlers(), queues=list(QUEUES))
    assert await client.result("wf_half", timeout=30) == 36


async def test_producer_sigkilled_mid_enqueue(
    redis_url: str, prefix: str, broker: strego.RedisBroker, make_server: ServerFactory
) -> None:
    """A producer SIGKILLed at random points while enqueueing a flow of 3 002 tasks over
    three queues: every time, the flow either completes or was never visible."""
    client = strego.Client(broker)
    env = {**os.environ, "STREGO_REDIS_URL": redis_url, "STREGO_PREFIX": prefix}
    rng = random.Random(20)
    outcomes = []
    took = 0.0  # how long a whole enqueue takes here (round 0 is not killed)
    done: set[bytes] = set()  # workflows of earlier rounds
    for round_ in range(5):
        for queue in QUEUES:  # each round starts from empty queues
            assert await visible(broker) == [], queue
        proc = start_producer(env)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"enqueueing"
        if round_ == 0:
            began = time.monotonic()
            proc.stdout.readline()
            took = time.monotonic() - began
        else:  # somewhere inside the enqueue (the commit comes near its end)
            await asyncio.sleep(rng.uniform(0.3, 1.1) * took)
            proc.send_signal(signal.SIGKILL)
        proc.wait()
        started = [
            key
            async for key in broker.redis.scan_iter(match=f"{prefix}:*:flow:wf_*")
            if await broker.redis.hexists(key, "meta") and key not in done
        ]
        if not started:
            assert await visible(broker) == []
            outcomes.append("nothing")
            async for key in broker.redis.scan_iter(match=f"{prefix}:*:flow:wf_*"):
                await broker.redis.delete(key)  # (they would expire)
            continue
        assert len(started) == 1
        done.add(started[0])
        workflow_id = started[0].decode().rsplit(":", 1)[1]
        server = await make_server(handlers(), queues=list(QUEUES), concurrency=50)
        assert await client.result(workflow_id, timeout=120) == sum(range(3000))
        await server.stop()
        outcomes.append("completed")
        for queue in QUEUES:  # leave no finished records for the next round's check
            await broker.redis.delete(broker.keys(queue).index)

        async def drained() -> bool:
            return await visible(broker) == []

        await wait_until(drained)
    assert len(outcomes) == 5  # each round ended in one of the two allowed ways
    assert outcomes[0] == "completed"


async def test_result_waits_for_a_committed_flow_whose_parts_were_never_opened(
    make_server: ServerFactory, broker: strego.RedisBroker, client: strego.Client
) -> None:
    """The producer died between the commit and opening the other queues' parts, and
    no worker has drained the outbox yet: Client.result must wait for the flow (its
    tasks exist), not answer "not found" because the output task has no record yet."""
    graph = compile_flow(small_flow())
    await put_parts(broker, graph, "wf_unopened")
    await start_workflow(broker, graph, "wf_unopened")
    with pytest.raises(strego.ResultTimeoutError):
        await client.result("wf_unopened", timeout=0.2)
    await make_server(handlers(), queues=list(QUEUES))
    assert await client.result("wf_unopened", timeout=30) == 36
