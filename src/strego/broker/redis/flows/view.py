"""Reading a workflow back for Inspector.workflow: its meta record, then each task's
index record (one pipelined HGET per task) and the per-queue flags."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from strego.broker.redis.connection import text
from strego.broker.redis.flows.store import find_workflow
from strego.workflows.view import WorkflowTask, WorkflowView, overall

if TYPE_CHECKING:
    from strego.broker.redis.broker import RedisBroker

__all__ = ["read_workflow"]

_STATES = {
    "p": "pending",
    "k": "active",
    "s": "scheduled",
    "r": "retry",
    "d": "dead",
    "c": "completed",
    "x": "cancelled",
    "w": "waiting",
}


async def read_workflow(broker: RedisBroker, workflow_id: str) -> WorkflowView | None:
    meta = await find_workflow(broker, workflow_id)
    if meta is None:
        return None
    ids: list[list[Any]] = meta["ids"]
    queues = sorted({str(entry[1]) for entry in ids})
    pipe = broker.redis.pipeline(transaction=False)
    for task_id, queue, *_ in ids:
        keys = broker.keys(queue)
        pipe.hget(keys.index, task_id)
        pipe.hexists(keys.flow(workflow_id), f"ok:{task_id}")
        pipe.hget(keys.bodies, task_id)
    for queue in queues:
        pipe.hexists(broker.keys(queue).flow(workflow_id), "cancel")
    replies = await pipe.execute()
    tasks: list[WorkflowTask] = []
    for n, (task_id, queue, task_type, deps) in enumerate(ids):
        record, ok, body = replies[3 * n : 3 * n + 3]
        letter = text(record)[:1] if record is not None else ""
        state = _STATES.get(letter, "completed" if ok else "expired")
        if state == "pending" and ok:  # an index record trimmed and reused: trust ok
            state = "completed"
        tasks.append(
            WorkflowTask(
                id=task_id,
                type=task_type,
                queue=queue,
                state=state,
                deps=[ids[d][0] for d in deps],
                reason=_reason(body) if state in ("dead", "cancelled") else None,
            )
        )
    cancelled = any(replies[3 * len(ids) :])
    return WorkflowView(
        id=workflow_id, state=overall([t.state for t in tasks], cancelled), tasks=tasks
    )


def _reason(body: bytes | None) -> str | None:
    if not body:
        return None
    head = body.split(b"\n", 1)[0]
    try:
        header = json.loads(head)
    except ValueError:
        return None
    reason = header.get("dr") if isinstance(header, dict) else None
    return reason if isinstance(reason, str) else ("cancelled" if header.get("e") else None)
