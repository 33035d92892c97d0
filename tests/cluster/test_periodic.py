"""Periodic tasks on one Redis, a Redis Cluster (queues on three masters) and Sentinel."""

from __future__ import annotations

import pytest

import strego
from tests.cluster.conftest import ServerFactory
from tests.conftest import wait_until

pytestmark = pytest.mark.cluster


async def test_schedules_on_every_master_fire_once_per_tick(
    make_server: ServerFactory, inspector: strego.Inspector, queues: list[str]
) -> None:
    """Two workers, a schedule per queue (three masters): each tick runs once; the
    Inspector lists, pauses, triggers and deletes them wherever they live."""
    done: list[str] = []

    async def beat(task: strego.Task) -> None:
        done.append(task.id)

    schedules = [strego.Periodic("beat", every=1, name=f"b-{q}", queue=q) for q in queues]
    servers = []
    for n in range(2):
        server = await make_server(
            {"beat": beat}, queues=queues, periodic=schedules, broker_options={"consumer": f"w{n}"}
        )
        servers.append(server)
    await wait_until(
        lambda: all(sum(i.startswith(f"periodic:b-{q}:") for i in done) >= 2 for q in queues),
        timeout=20,
    )
    assert len(done) == len(set(done)), "a tick ran twice"
    infos = await inspector.periodic()
    assert sorted((i.queue, i.name) for i in infos) == sorted((q, f"b-{q}") for q in queues)
    assert all(not i.orphaned and i.last_task_id for i in infos)
    last = queues[-1]
    await inspector.pause_periodic(f"b-{last}", last)
    triggered = await inspector.trigger_periodic(f"b-{last}", last)
    await wait_until(lambda: triggered.id in done, timeout=10)
    for server in servers:
        await server.stop()  # a live worker would declare a deleted schedule again
    await inspector.delete_periodic(f"b-{last}", last)
    assert [i.queue for i in await inspector.periodic(last)] == []
