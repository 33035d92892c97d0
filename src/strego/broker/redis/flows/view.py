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
    for queue in queues:
        pipe.hexists(broker.keys(queue).flow(workflow_id), "cancel")
    replies = await pipe.execute()
    states: list[str] = []
    for n in range(len(ids)):
        record, ok = replies[2 * n : 2 * n + 2]
        letter = text(record)[:1] if record is not None else ""
        state = _STATES.get(letter, "completed" if ok else "expired")
        states.append("completed" if state == "pending" and ok else state)
    reasons = await _reasons(broker, ids, states)
    tasks = [
        WorkflowTask(
            id=task_id,
            type=task_type,
            queue=queue,
            state=state,
            deps=[ids[d][0] for d in deps],
            reason=reasons.get(n),
        )
        for n, ((task_id, queue, task_type, deps), state) in enumerate(
            zip(ids, states, strict=True)
        )
    ]
    cancelled = any(replies[2 * len(ids) :])
    return WorkflowView(
        id=workflow_id, state=overall([t.state for t in tasks], cancelled), tasks=tasks
    )


async def _reasons(
    broker: RedisBroker, ids: list[list[Any]], states: list[str]
) -> dict[int, str | None]:
    """Why the dead and cancelled tasks ended (their bodies' headers), read only for
    them: a body may be large."""
    failed = [n for n, state in enumerate(states) if state in ("dead", "cancelled")]
    if not failed:
        return {}
    pipe = broker.redis.pipeline(transaction=False)
    for n in failed:
        pipe.hget(broker.keys(ids[n][1]).bodies, ids[n][0])
    return {n: _reason(body) for n, body in zip(failed, await pipe.execute(), strict=True)}


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
