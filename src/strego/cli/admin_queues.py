"""``strego stats``, ``strego queues ...`` and ``strego dead ...``: whole queues at a time."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

from strego.cli.connect import CommandError, admin_session, require_queue
from strego.cli.render import ProgressBar, queue_table, record_to_json, task_rows
from strego.errors import QueueInUseError
from strego.inspector import Inspector
from strego.records import QueueInfo, TaskRecord, WorkerInfo
from strego.redaction import redact
from strego.task import TaskState

__all__ = [
    "dead_delete",
    "dead_list",
    "dead_purge",
    "dead_retry",
    "dead_retry_all",
    "delete_queue",
    "list_queues",
    "pause",
    "purge",
    "resume",
    "stats",
    "unserved_warnings",
]

_CHUNK = 500
_CLEAR = "\x1b[H\x1b[2J"  # cursor home + clear screen: a plain-ANSI "refresh in place"


# -- stats and queues --------------------------------------------------------


async def _stats_lines(inspector: Inspector, url: str) -> list[str]:
    queues = await inspector.queues()
    workers = await inspector.workers()
    minute = (await inspector.throughput(minutes=2))[:1]  # the last *complete* minute
    now = datetime.now(UTC).strftime("%H:%M:%S UTC")
    running = sum(q.active for q in queues)  # the queues' count, not 5 s old heartbeats
    slots = sum(w.concurrency for w in workers)
    processed = minute[0].processed if minute else 0
    failed = minute[0].failed if minute else 0
    lines = [
        f"strego stats  {redact(url)}  {now}",
        f"workers: {len(workers)} ({running} of {slots} slots busy)   "
        f"last minute: {processed} processed, {failed} failed",
        "",
    ]
    if not queues:
        return [*lines, "no queues yet: enqueue a task or start a worker"]
    return [*lines, *queue_table(queues), *unserved_warnings(queues, workers)]


def unserved_warnings(queues: Sequence[QueueInfo], workers: Sequence[WorkerInfo]) -> list[str]:
    """One line per queue no live worker reads (its tasks wait for nobody; often a typo)."""
    served = {q for w in workers for q in w.queues}
    lines = []
    for q in queues:
        if q.name in served:
            continue
        waiting = q.pending + q.scheduled + q.retry
        tasks = f"{waiting} task{'s wait' if waiting != 1 else ' waits'} for nobody"
        lines.append(
            f"warning: no consumer reads queue {q.name!r} ({tasks if waiting else 'empty'}): "
            f"start a worker with --queues {q.name}, or if the name is a typo: "
            f"strego queues delete {q.name}"
        )
    return ["", *lines] if lines else []


async def _stats_json(inspector: Inspector) -> str:
    found, workers = await inspector.queues(), await inspector.workers()
    served = {q for w in workers for q in w.queues}
    queues = [dataclasses.asdict(q) | {"served": q.name in served} for q in found]
    return json.dumps(
        {"queues": queues, "workers": [dataclasses.asdict(w) for w in workers]},
        default=str,
        indent=2,
    )


async def stats(args: argparse.Namespace) -> int:
    async with admin_session(args) as inspector:
        if args.json and not args.watch:
            print(await _stats_json(inspector))
            return 0
        if not args.watch:
            print("\n".join(await _stats_lines(inspector, args.redis)))
            return 0
        shown = 0
        in_place = sys.stdout.isatty()
        while args.count is None or shown < args.count:
            lines = await _stats_lines(inspector, args.redis)
            block = "\n".join(lines)
            sys.stdout.write(f"{_CLEAR}{block}\n" if in_place else f"{block}\n\n")
            sys.stdout.flush()
            shown += 1
            if args.count is None or shown < args.count:
                await asyncio.sleep(args.interval)
    return 0


async def list_queues(args: argparse.Namespace) -> int:
    async with admin_session(args) as inspector:
        queues = await inspector.queues()
    if args.json:
        print(json.dumps([dataclasses.asdict(q) for q in queues], indent=2))
    elif not queues:
        print("no queues yet: enqueue a task or start a worker")
    else:
        print("\n".join(queue_table(queues)))
    return 0


async def pause(args: argparse.Namespace) -> int:
    async with admin_session(args) as inspector:
        await require_queue(inspector, args.queue)
        await inspector.pause(args.queue)
    print(f"paused queue {args.queue!r}: workers stop fetching from it (enqueue still works)")
    return 0


async def resume(args: argparse.Namespace) -> int:
    async with admin_session(args) as inspector:
        await require_queue(inspector, args.queue)
        await inspector.resume(args.queue)
    print(f"resumed queue {args.queue!r}")
    return 0


def confirm(question: str, assume_yes: bool) -> None:
    """Ask ``question`` on the terminal; raise CommandError unless the answer is yes."""
    if assume_yes:
        return
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        answer = ""
    if answer.strip().lower() not in ("y", "yes"):
        raise CommandError("aborted: nothing deleted (pass --yes to skip this question)")


async def purge(args: argparse.Namespace) -> int:
    async with admin_session(args) as inspector:
        await require_queue(inspector, args.queue)
        info = await inspector.queue_info(args.queue)
        waiting = info.pending + info.scheduled + info.retry
        if waiting == 0:
            print(f"queue {args.queue!r} has no waiting, scheduled or retry tasks")
            return 0
        confirm(
            f"Delete {waiting} waiting, scheduled and retry tasks of queue {args.queue!r}?",
            args.yes,
        )
        removed = await inspector.purge_queue(args.queue)
    print(f"purged {removed} tasks from queue {args.queue!r}")
    return 0


async def delete_queue(args: argparse.Namespace) -> int:
    async with admin_session(args) as inspector:
        await require_queue(inspector, args.queue)
        info = await inspector.queue_info(args.queue)
        total = info.pending + info.scheduled + info.retry + info.dead + info.completed
        confirm(f"Delete queue {args.queue!r} and its {total} tasks?", args.yes)
        try:
            removed = await inspector.delete_queue(args.queue)
        except QueueInUseError as exc:
            raise CommandError(f"not deleted: {exc}") from exc
    print(f"deleted queue {args.queue!r} and its {removed} tasks")
    return 0


# -- dead letters ------------------------------------------------------------


async def dead_list(args: argparse.Namespace) -> int:
    async with admin_session(args) as inspector:
        if args.queue is None:
            records, total, where = await _dead_everywhere(inspector, args.offset, args.limit)
        else:
            await require_queue(inspector, args.queue)
            records = await inspector.dead_letters(args.queue, offset=args.offset, limit=args.limit)
            total, where = (await inspector.queue_info(args.queue)).dead, f"queue {args.queue!r}"
    if args.json:
        print(json.dumps([record_to_json(r) for r in records], indent=2))
    elif not records:
        print(f"no dead tasks in {where}")
    else:
        print("\n".join(task_rows(records, with_queue=args.queue is None)))
        shown = f"{args.offset + 1}-{args.offset + len(records)}"
        print(f"\n{shown} of {total} dead tasks in {where}")
    return 0


async def _dead_everywhere(
    inspector: Inspector, offset: int, limit: int
) -> tuple[list[TaskRecord], int, str]:
    """Dead tasks of every queue, newest first: each queue's first offset+limit, merged."""
    with_dead = [q for q in await inspector.queues() if q.dead]
    pages = await asyncio.gather(
        *(inspector.dead_letters(q.name, limit=offset + limit) for q in with_dead)
    )
    merged = sorted(
        (r for page in pages for r in page),
        key=lambda r: r.completed_at or datetime.min.replace(tzinfo=UTC),
        reverse=True,
    )
    where = f"{len(with_dead)} queue{'s' if len(with_dead) != 1 else ''}"
    return merged[offset : offset + limit], sum(q.dead for q in with_dead), where


async def _each_dead(
    args: argparse.Namespace, verb: str, act: Callable[[Inspector, str], Awaitable[bool]]
) -> int:
    """Apply ``act`` to each named dead task; report every failure, exit 1 if any."""
    failures = []
    async with admin_session(args) as inspector:
        await require_queue(inspector, args.queue)
        for task_id in args.task_ids:
            record = await inspector.get_task(task_id, args.queue)
            if record is None:
                failures.append(f"task {task_id} not found in queue {args.queue!r}")
            elif record.state != TaskState.DEAD:
                failures.append(f"task {task_id} is {record.state}, not dead")
            elif not await act(inspector, task_id):
                failures.append(f"task {task_id} changed state meanwhile; nothing done")
            else:
                print(f"{verb} {task_id}")
    for failure in failures:
        print(f"strego: error: {failure}", file=sys.stderr)
    return 1 if failures else 0


async def dead_retry(args: argparse.Namespace) -> int:
    return await _each_dead(args, "retried", lambda i, t: i.retry(t, args.queue))


async def dead_delete(args: argparse.Namespace) -> int:
    return await _each_dead(args, "deleted", lambda i, t: i.delete(t, args.queue))


async def dead_retry_all(args: argparse.Namespace) -> int:
    async with admin_session(args) as inspector:
        await require_queue(inspector, args.queue)
        total = (await inspector.queue_info(args.queue)).dead
        show = args.progress
        if show is None:
            show = sys.stderr.isatty() and total > _CHUNK
        bar = ProgressBar(total, label=f"retrying dead tasks of {args.queue!r}") if show else None
        if bar:
            bar.update(0)
        moved = await inspector.retry_all_dead(args.queue, progress=bar.update if bar else None)
        if bar:
            bar.finish()
    print(f"retried {moved} dead tasks of queue {args.queue!r}")
    return 0


async def dead_purge(args: argparse.Namespace) -> int:
    async with admin_session(args) as inspector:
        await require_queue(inspector, args.queue)
        total = (await inspector.queue_info(args.queue)).dead
        if total == 0:
            print(f"no dead tasks in queue {args.queue!r}")
            return 0
        confirm(f"Delete {total} dead tasks of queue {args.queue!r}?", args.yes)
        removed = await inspector.purge_dead(args.queue)
    print(f"deleted {removed} dead tasks of queue {args.queue!r}")
    return 0
