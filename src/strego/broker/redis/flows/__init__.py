"""Workflows on Redis: storing a flow's graph, releasing dependents, reading it back.

See docs/workflows.md for the design: the graph is stored per queue
(``P:{q}:flow:<workflow id>``), a member's finish is an outbox record written by
the outcome script itself, and workers apply those records idempotently.
"""

from strego.broker.redis.flows.drain import FlowDrainer
from strego.broker.redis.flows.store import (
    cancel_workflow,
    enqueue_workflow,
    find_workflow,
    open_workflow,
    upstream_results,
)
from strego.broker.redis.flows.view import read_workflow

__all__ = [
    "FlowDrainer",
    "cancel_workflow",
    "enqueue_workflow",
    "find_workflow",
    "open_workflow",
    "read_workflow",
    "upstream_results",
]
