"""``strego periodic list|pause|resume|trigger|delete``: periodic schedules."""

from __future__ import annotations

import argparse
import json
from collections.abc import Awaitable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo

from strego.cli.common import add_redis_option
from strego.cli.connect import admin_session
from strego.cli.errors import CommandError
from strego.cli.render import ago, table
from strego.errors import PeriodicNotFoundError
from strego.periodic.info import PeriodicInfo

__all__ = ["add_parsers"]

T = TypeVar("T")

if TYPE_CHECKING:  # subscripting _SubParsersAction fails at run time on Python 3.11
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]


def add_parsers(subparsers: Subparsers) -> None:
    redis = argparse.ArgumentParser(add_help=False)
    add_redis_option(redis)
    parser = subparsers.add_parser(
        "periodic",
        help="list, pause, resume, trigger or delete periodic schedules",
        description="List, pause, resume, trigger or delete periodic schedules.",
        epilog="""examples:
  strego periodic list
  strego periodic pause reports:daily          # stops firing until resumed
  strego periodic resume reports:daily         # from its next tick; missed ones are not run
  strego periodic trigger heartbeat --queue critical   # run it now, outside the schedule
  strego periodic delete old-report            # an orphaned schedule no worker declares
""",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", title="actions")
    actions.required = True
    listing = _action(
        actions,
        "list",
        "list schedules: next run in each one's zone, last run, paused or orphaned",
        "strego periodic list\nstrego periodic list --queue critical --json",
        redis,
    )
    listing.add_argument("--queue", help="only this queue's schedules")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(func=list_schedules)
    for name, help_, func in (
        ("pause", "stop firing a schedule", pause),
        ("resume", "fire a paused schedule again from its next tick", resume),
        ("trigger", "run a schedule's task now, outside the schedule", trigger),
        ("delete", "forget a schedule (its enqueued runs stay)", delete),
    ):
        example = (
            f"strego periodic {name} reports:daily\nstrego periodic {name} hb --queue critical"
        )
        action = _action(actions, name, help_, example, redis)
        action.add_argument("name", help="the schedule's name (its task type unless named)")
        action.add_argument("--queue", default="default", help="its queue (default: default)")
        action.set_defaults(func=func)


def _action(
    actions: Subparsers, name: str, help_: str, examples: str, redis: argparse.ArgumentParser
) -> argparse.ArgumentParser:
    lines = "\n".join(f"  {line}" for line in examples.splitlines())
    return actions.add_parser(
        name,
        help=help_,
        description=help_[0].upper() + help_[1:] + ".",
        epilog=f"examples:\n{lines}\n",
        parents=[redis],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


async def list_schedules(args: argparse.Namespace) -> int:
    async with admin_session(args) as inspector:
        infos = await inspector.periodic(args.queue)
    if args.json:
        print(json.dumps([info_to_json(i) for i in infos], indent=2))
        return 0
    if not infos:
        print("no periodic schedules" + (f" in queue {args.queue!r}" if args.queue else ""))
        return 0
    for line in schedule_table(infos):
        print(line)
    return 0


def schedule_table(infos: Sequence[PeriodicInfo]) -> list[str]:
    rows = [
        (
            i.name,
            i.queue,
            i.type,
            when(i),
            _state(i),
            _in_zone(i.next_run, i.tz),
            ago(i.last_run),
            i.last_task_id,
        )
        for i in infos
    ]
    headers = ("NAME", "QUEUE", "TYPE", "SCHEDULE", "STATE", "NEXT RUN", "LAST RUN", "LAST TASK")
    return table(headers, rows)


def when(info: PeriodicInfo) -> str:
    if info.cron is not None:
        return f"{info.cron} ({info.tz})"
    if info.every is not None:
        return f"every {info.every:g}s"
    return "unreadable"


def _state(info: PeriodicInfo) -> str:
    flags = ["paused" if info.paused else "active"]
    if info.orphaned:
        flags.append("orphaned")
    return ",".join(flags)


def _in_zone(moment: datetime | None, tz: str) -> str | None:
    if moment is None:
        return None
    local = moment.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M:%S %Z")
    return f"{local} ({ago(moment).split('(')[-1].rstrip(')')})"


def info_to_json(info: PeriodicInfo) -> dict[str, Any]:
    def iso(moment: datetime | None) -> str | None:
        return None if moment is None else moment.astimezone(UTC).isoformat()

    return {
        "name": info.name,
        "type": info.type,
        "queue": info.queue,
        "cron": info.cron,
        "every": info.every,
        "tz": info.tz,
        "catchup": info.catchup,
        "overlap": info.overlap,
        "next_run": iso(info.next_run),
        "last_run": iso(info.last_run),
        "last_task_id": info.last_task_id,
        "paused": info.paused,
        "orphaned": info.orphaned,
        "error": info.error,
        "runs": [
            {"tick": iso(r.tick), "at": iso(r.at), "outcome": r.outcome, "task_id": r.task_id}
            for r in info.runs
        ],
    }


async def pause(args: argparse.Namespace) -> int:
    async with admin_session(args) as inspector:
        await _known(inspector.pause_periodic(args.name, args.queue))
    print(f"paused periodic {args.name!r} in queue {args.queue!r}")
    return 0


async def resume(args: argparse.Namespace) -> int:
    async with admin_session(args) as inspector:
        await _known(inspector.resume_periodic(args.name, args.queue))
    print(f"resumed periodic {args.name!r} in queue {args.queue!r} (from its next tick)")
    return 0


async def trigger(args: argparse.Namespace) -> int:
    async with admin_session(args) as inspector:
        info = await _known(inspector.trigger_periodic(args.name, args.queue))
    print(f"enqueued {info.id} in queue {info.queue!r}")
    return 0


async def delete(args: argparse.Namespace) -> int:
    async with admin_session(args) as inspector:
        await _known(inspector.delete_periodic(args.name, args.queue))
    print(f"deleted periodic {args.name!r} from queue {args.queue!r}")
    return 0


async def _known(call: Awaitable[T]) -> T:
    try:
        return await call
    except PeriodicNotFoundError as exc:
        raise CommandError(f"{exc} (see: strego periodic list)") from exc
