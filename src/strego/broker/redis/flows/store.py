"""Enqueueing a workflow's graph, finding it again, cancelling it (producer side).

Enqueue is two phases so that a producer dying half-way leaves nothing visible:
``flow_put`` stores every task's spec and body in its queue's workflow hash (chunks,
pipelined, invisible to workers), then ``flow_start`` in the *home* queue (where the
first task lives) commits atomically: the meta record, an outbox entry per other
queue (any worker opens them later if the producer dies now) and this queue's first
steps released. The producer then opens the other queues itself (idempotent) so
``Client.result`` finds every task at once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from strego.broker.redis.connection import text
from strego.broker.redis.flows.scripts import flow_scripts
from strego.broker.redis.scripts import ScriptCall
from strego.envelope import encode
from strego.workflows.graph import Graph

if TYPE_CHECKING:
    from strego.broker.redis.broker import RedisBroker

__all__ = [
    "cancel_workflow",
    "enqueue_workflow",
    "find_workflow",
    "open_workflow",
    "upstream_results",
]

_CHUNK = 500  # tasks per flow_put call
PENDING_TTL_MS = 7 * 86400 * 1000  # an unfinished workflow's graph lives at most this


async def enqueue_workflow(broker: RedisBroker, graph: Graph, workflow_id: str) -> None:
    """Phase 1, commit, then open the other queues (see the module docstring)."""
    chunks = await put_parts(broker, graph, workflow_id)
    await start_workflow(broker, graph, workflow_id)
    await open_parts(broker, workflow_id, chunks, home=_home(graph))


def _by_queue(graph: Graph) -> dict[str, list[int]]:
    by_queue: dict[str, list[int]] = {}
    for i, node in enumerate(graph.nodes):
        by_queue.setdefault(node.task.queue, []).append(i)
    return by_queue


def _home(graph: Graph) -> str:
    return graph.nodes[graph.roots[0]].task.queue


async def put_parts(broker: RedisBroker, graph: Graph, workflow_id: str) -> dict[str, int]:
    """Phase 1: every queue's part of the graph, invisible until the commit; returns
    how many chunks each queue's part has."""
    nodes = graph.nodes
    down = graph.downstream()
    by_queue = _by_queue(graph)
    await _register_queues(broker, list(by_queue))
    calls: list[ScriptCall] = []
    chunks: dict[str, int] = {}
    for queue, members in by_queue.items():
        flow_key = broker.keys(queue).flow(workflow_id)
        for n, first in enumerate(range(0, len(members), _CHUNK), start=1):
            chunks[queue] = n
            args: list[Any] = [PENDING_TTL_MS, n, len(members)]
            for i in members[first : first + _CHUNK]:
                task = nodes[i].task
                message = task.to_message().evolve(
                    workflow_id=workflow_id, upstream_count=len(nodes[i].deps)
                )
                edges = [[nodes[d.node].task.id, nodes[d.node].task.queue, d.position]
                         for d in down[i]]  # fmt: skip
                args += [task.id, _spec(task, len(nodes[i].deps)),
                         json.dumps(edges) if edges else "", encode(message)]  # fmt: skip
            calls.append((flow_scripts().put, [flow_key], args))
    _raise_any(await broker.scripts.run_many(broker.redis, calls))
    return chunks


async def start_workflow(broker: RedisBroker, graph: Graph, workflow_id: str) -> None:
    """Phase 2, one atomic script in the home queue (it opens its first chunk)."""
    nodes = graph.nodes
    home = _home(graph)
    meta = {
        "ids": [[n.task.id, n.task.queue, n.task.type, n.deps] for n in nodes],
        "out": graph.output,
        "home": home,
    }
    keys = broker.keys(home)
    _raise_any(await broker.scripts.run_many(broker.redis, [(
        flow_scripts().start,
        [*keys.layout(), keys.flow(workflow_id), keys.flow_outbox],
        [workflow_id, json.dumps(meta), keys.channel, *_by_queue(graph)],
    )]))  # fmt: skip


async def open_parts(
    broker: RedisBroker, workflow_id: str, chunks: dict[str, int], *, home: str
) -> None:
    """Open every part now, chunk by chunk (one pipeline; workers interleave between
    the scripts and start on the first tasks). The outbox would, later; idempotent."""
    opens = [
        open_call(broker, queue, workflow_id, k)
        for queue, count in chunks.items()
        for k in range(1, count + 1)
        if not (queue == home and k == 1)  # opened by flow_start
    ]
    if opens:
        _raise_any(await broker.scripts.run_many(broker.redis, opens))


def open_call(broker: RedisBroker, queue: str, workflow_id: str, chunk: int = 0) -> ScriptCall:
    """Open chunk ``chunk`` of the queue's part (0: every chunk)."""
    keys = broker.keys(queue)
    return (flow_scripts().open, [*keys.layout(), keys.flow(workflow_id)], [keys.channel, chunk])


def _spec(task: Any, need: int) -> str:
    delay = -1 if task.delay_s is None else int(task.delay_s * 1000)
    at = -1 if task.process_at is None else int(task.process_at.timestamp() * 1000)
    return f"{task.priority}|{need}|{delay}|{at}"


async def _register_queues(broker: RedisBroker, queues: list[str]) -> None:
    await broker.redis.sadd(broker.global_keys.queues, *queues)


def _raise_any(replies: Sequence[Any]) -> None:
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply


async def find_workflow(broker: RedisBroker, workflow_id: str) -> dict[str, Any] | None:
    """The workflow's meta record (ids, output, home), looked up in every known queue
    (one pipelined HGET each); None when unknown or expired."""
    queues = await broker.known_queues()
    if not queues:
        return None
    pipe = broker.redis.pipeline(transaction=False)
    for queue in queues:
        pipe.hget(broker.keys(queue).flow(workflow_id), "meta")
    for raw in await pipe.execute():
        if raw is not None:
            meta: dict[str, Any] = json.loads(text(raw))
            return meta
    return None


async def open_workflow(broker: RedisBroker, workflow_id: str, meta: dict[str, Any]) -> None:
    """Open every part of a committed workflow (idempotent, what the home queue's
    outbox does later). A result waiter calls this first: if the producer died between
    the commit and opening the parts, their tasks have no record yet and would read
    as unknown instead of waiting."""
    queues = sorted({entry[1] for entry in meta["ids"]})
    _raise_any(await broker.scripts.run_many(
        broker.redis, [open_call(broker, queue, workflow_id) for queue in queues]
    ))  # fmt: skip


async def upstream_results(
    broker: RedisBroker, queue: str, workflow_id: str, task_id: str
) -> list[bytes | None]:
    """The stored results of a task's dependencies, in order (None: returned None)."""
    reply = await flow_scripts().upstream(
        broker.redis, [broker.keys(queue).flow(workflow_id)], [task_id]
    )
    return [raw if raw else None for raw in reply]


async def cancel_workflow(broker: RedisBroker, workflow_id: str) -> int:
    """Cancel everything of the workflow not finished yet; the number of tasks
    cancelled (held ones and released ones that were still cancellable)."""
    meta = await find_workflow(broker, workflow_id)
    if meta is None:
        return 0
    queues = sorted({entry[1] for entry in meta["ids"]})
    keep = broker.retention.keep_completed
    calls: list[ScriptCall] = []
    for queue in queues:
        keys = broker.keys(queue)
        calls.append((flow_scripts().cancel, [*keys.layout(), keys.flow(workflow_id)], [keep]))
    replies = await broker.scripts.run_many(broker.redis, calls)
    _raise_any(replies)
    cancelled = 0
    for queue, reply in zip(queues, replies, strict=True):
        cancelled += int(reply[0])
        for tid in reply[1:]:
            if await broker.cancel(text(tid), queue):
                cancelled += 1
    return cancelled
