"""``strego workflow get|cancel ID``: a workflow's tasks and states, or cancel it."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from strego.cli.common import add_redis_option
from strego.cli.connect import CommandError, admin_session
from strego.workflows.view import WorkflowView

__all__ = ["add_parsers", "cancel", "get"]

if TYPE_CHECKING:  # subscripting _SubParsersAction fails at run time on Python 3.11
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]


def add_parsers(subparsers: Subparsers) -> None:
    redis = argparse.ArgumentParser(add_help=False)
    add_redis_option(redis)
    parser = subparsers.add_parser(
        "workflow",
        help="show or cancel a workflow (chain, group, chord)",
        description="Show or cancel a workflow (chain, group, chord).",
        epilog="examples:\n  strego workflow get wf_01J8ZQ4R6T0000000000000000\n"
        "  strego workflow get wf_01J8ZQ4R6T0000000000000000 --json | jq .state\n"
        "  strego workflow cancel wf_01J8ZQ4R6T0000000000000000\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", title="actions")
    actions.required = True
    get_parser = _action(
        actions,
        "get",
        "print the workflow's state and each task's (state, queue, dependencies)",
        "strego workflow get wf_01J8ZQ4R6T0000000000000000 --json",
        redis,
    )
    get_parser.add_argument("workflow_id", metavar="WORKFLOW_ID")
    get_parser.add_argument("--json", action="store_true", help="machine-readable output")
    get_parser.set_defaults(func=get)
    cancel_parser = _action(
        actions,
        "cancel",
        "cancel every task of the workflow not finished yet",
        "strego workflow cancel wf_01J8ZQ4R6T0000000000000000",
        redis,
    )
    cancel_parser.add_argument("workflow_id", metavar="WORKFLOW_ID")
    cancel_parser.set_defaults(func=cancel)


def _action(
    actions: Subparsers, name: str, help: str, example: str, redis: argparse.ArgumentParser
) -> argparse.ArgumentParser:
    return actions.add_parser(
        name,
        help=help,
        description=help[0].upper() + help[1:] + ".",
        epilog=f"examples:\n  {example}\n",
        parents=[redis],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


async def get(args: argparse.Namespace) -> int:
    async with admin_session(args) as inspector:
        view = await inspector.workflow(args.workflow_id)
    if view is None:
        raise CommandError(_not_found(args.workflow_id))
    print(json.dumps(to_json(view), indent=2) if args.json else render(view))
    return 0


async def cancel(args: argparse.Namespace) -> int:
    async with admin_session(args) as inspector:
        view = await inspector.workflow(args.workflow_id)
        if view is None:
            raise CommandError(_not_found(args.workflow_id))
        count = await inspector.cancel_workflow(args.workflow_id)
    print(f"cancelled workflow {args.workflow_id}: {count} task(s) cancelled")
    return 0


def to_json(view: WorkflowView) -> dict[str, object]:
    return {
        "id": view.id,
        "state": str(view.state),
        "tasks": [
            {
                "id": t.id,
                "type": t.type,
                "queue": t.queue,
                "state": t.state,
                "deps": t.deps,
                "reason": t.reason,
            }
            for t in view.tasks
        ],
    }


def render(view: WorkflowView) -> str:
    lines = [f"workflow {view.id}: {view.state} ({len(view.tasks)} tasks)"]
    for task in view.tasks:
        after = f"  after {', '.join(task.deps)}" if task.deps else ""
        why = f" ({task.reason})" if task.reason else ""
        lines.append(f"  {task.id}  {task.type:<20} {task.queue:<12} {task.state}{why}{after}")
    return "\n".join(lines)


def _not_found(workflow_id: str) -> str:
    return f"workflow {workflow_id} not found (unknown, or finished and expired)"
