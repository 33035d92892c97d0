"""``strego enqueue`` and ``strego task get|cancel``: one task at a time."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from strego.cli.connect import CommandError, UsageError, admin_session, broker_session
from strego.cli.render import ago, record_to_json, task_detail
from strego.client import Client
from strego.errors import DuplicateTaskError
from strego.task import Task

__all__ = ["cancel", "enqueue", "get"]


def read_payload(value: str) -> Any:
    """``--payload``: JSON text, ``@file`` or ``-`` (stdin), parsed as JSON."""
    if value == "-":
        text, source = sys.stdin.read(), "stdin"
    elif value.startswith("@"):
        try:
            text, source = Path(value[1:]).read_text(), value[1:]
        except OSError as exc:
            raise CommandError(f"cannot read --payload file: {exc}") from exc
    else:
        text, source = value, "--payload"
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{source} is not valid JSON: {exc}") from exc


def _process_at(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise UsageError(f"--process-at is not an ISO 8601 time: {value!r}") from exc
    if moment.tzinfo is None:
        raise UsageError("--process-at needs a timezone, e.g. 2030-01-01T09:00:00+00:00")
    return moment


def build_task(args: argparse.Namespace) -> Task:
    """The Task the arguments describe; bad options fail here, before connecting, as
    usage errors (exit 2)."""
    payload, process_at = read_payload(args.payload), _process_at(args.process_at)
    try:
        return Task(
            args.type,
            payload,
            id=args.id,
            queue=args.queue,
            max_retry=args.max_retry,
            timeout=args.timeout,
            process_in=args.process_in,
            process_at=process_at,
            priority=args.priority,
            unique_key=args.unique_key,
            unique_ttl=args.unique_ttl,
            labels=dict(args.label),
        )
    except (ValueError, TypeError) as exc:  # ConfigurationError is a ValueError
        raise UsageError(str(exc)) from exc


async def enqueue(args: argparse.Namespace) -> int:
    task = build_task(args)
    async with broker_session(args) as broker:
        try:
            info = await Client(broker).enqueue(task)
        except DuplicateTaskError as exc:
            raise CommandError(
                f"duplicate: unique key {exc.unique_key!r} in queue {exc.queue!r} "
                f"is held by task {exc.task_id}"
            ) from exc
    if args.json:
        at = info.process_at.isoformat() if info.process_at else None
        print(
            json.dumps({"id": info.id, "queue": info.queue, "state": info.state, "process_at": at})
        )
    else:
        when = f", runs {ago(info.process_at)}" if info.process_at else ""
        print(f"enqueued {task.type} as {info.id} in queue {info.queue!r} ({info.state}{when})")
    return 0


async def get(args: argparse.Namespace) -> int:
    async with admin_session(args) as inspector:
        record = await inspector.get_task(args.task_id, args.queue)
    if record is None:
        raise CommandError(_not_found(args.task_id, args.queue))
    if args.json:
        print(json.dumps(record_to_json(record), indent=2, sort_keys=True))
    else:
        print(task_detail(record))
    return 0


async def cancel(args: argparse.Namespace) -> int:
    async with admin_session(args) as inspector:
        record = await inspector.get_task(args.task_id, args.queue)
        if record is None:
            raise CommandError(_not_found(args.task_id, args.queue))
        if not await inspector.cancel(args.task_id, record.queue):
            raise CommandError(f"task {args.task_id} is {record.state}: nothing to cancel")
    if record.state == "active":
        print(f"cancel requested for running task {args.task_id}: its worker stops it")
    else:
        print(f"cancelled task {args.task_id} (was {record.state})")
    return 0


def _not_found(task_id: str, queue: str | None) -> str:
    where = f"in queue {queue!r}" if queue else "in any queue"
    return (
        f"task {task_id} not found {where} "
        "(finished tasks are kept only for a while; a history store keeps them longer)"
    )
