"""Admin commands: ``enqueue``, ``stats``, ``queues``, ``dead`` and ``task``.

This module only declares the arguments (with examples in every ``--help``); the
work is done in :mod:`strego.cli.admin_queues` and :mod:`strego.cli.admin_tasks`.
Every command takes ``--redis/--group/--prefix`` (env ``STREGO_REDIS_URL``).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from strego.cli import admin_queues, admin_tasks, result_cmd
from strego.cli.common import (
    add_action,
    add_postgres_option,
    add_redis_option,
    non_negative_int,
    parse_duration,
    positive_int,
)

__all__ = ["add_parsers"]

if TYPE_CHECKING:  # subscripting _SubParsersAction fails at run time on Python 3.11
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]


def add_parsers(subparsers: Subparsers) -> None:
    redis = argparse.ArgumentParser(add_help=False)
    add_redis_option(redis)
    _add_enqueue(subparsers, redis)
    _add_stats(subparsers, redis)
    _add_queues(subparsers, redis)
    _add_dead(subparsers, redis)
    _add_task(subparsers, redis)


def _command(
    subparsers: Subparsers,
    name: str,
    help: str,
    epilog: str,
    parents: list[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    return subparsers.add_parser(
        name,
        help=help,
        description=help[0].upper() + help[1:] + ".",
        epilog=epilog,
        parents=parents,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _group(parser: argparse.ArgumentParser, title: str) -> Subparsers:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", title=title)
    actions.required = True
    return actions


def _label(value: str) -> tuple[str, str]:
    key, sep, val = value.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"labels are KEY=VALUE, got {value!r}")
    return key, val


def _add_enqueue(subparsers: Subparsers, redis: argparse.ArgumentParser) -> None:
    parser = _command(
        subparsers,
        "enqueue",
        "enqueue one task",
        """examples:
  strego enqueue email:send --payload '{"to": "a@example.com", "subject": "Hi"}'
  strego enqueue report:build --payload @report.json --queue low --timeout 10m
  strego enqueue reminder --payload '"call Bob"' --process-in 2h --label team=sales
  strego enqueue invoice:send --payload '{"id": 42}' --unique-key invoice-42 --priority 8
  echo '{"id": 7}' | strego enqueue sync:user --payload -
""",
        [redis],
    )
    parser.add_argument("type", metavar="TYPE", help="task type (names its handler)")
    parser.add_argument(
        "--payload",
        default="null",
        metavar="JSON",
        help="payload as JSON text, @FILE to read a file, or - for stdin (default null)",
    )
    parser.add_argument("--queue", default="default", help="queue (default %(default)s)")
    parser.add_argument("--id", help="explicit task id (an idempotency key)")
    when = parser.add_mutually_exclusive_group()
    when.add_argument("--process-in", type=parse_duration, metavar="DURATION", help="e.g. 30s, 5m")
    when.add_argument("--process-at", metavar="ISO8601", help="e.g. 2030-01-01T09:00:00+00:00")
    parser.add_argument("--unique-key", metavar="KEY", help="drop duplicates while KEY is held")
    parser.add_argument(
        "--unique-ttl", type=parse_duration, default=3600.0, metavar="DURATION", help="default 1h"
    )
    parser.add_argument("--priority", type=int, default=0, help="0-10, higher first (default 0)")
    parser.add_argument("--max-retry", type=int, default=3, help="retries after the first run")
    parser.add_argument("--timeout", type=parse_duration, metavar="DURATION", help="per attempt")
    parser.add_argument(
        "--label", type=_label, action="append", default=[], metavar="KEY=VALUE", help="repeatable"
    )
    parser.add_argument("--json", action="store_true", help="print the TaskInfo as JSON")
    parser.set_defaults(func=admin_tasks.enqueue)


def _add_stats(subparsers: Subparsers, redis: argparse.ArgumentParser) -> None:
    parser = _command(
        subparsers,
        "stats",
        "show every queue's counts, workers and throughput",
        """examples:
  strego stats
  strego stats --watch                 # refresh every second until Ctrl-C
  strego stats --watch --interval 5
  strego stats --json | jq '.queues[] | {name, pending, dead}'
""",
        [redis],
    )
    parser.add_argument("--watch", action="store_true", help="refresh in place until Ctrl-C")
    parser.add_argument(
        "--interval", type=parse_duration, default=1.0, metavar="DURATION", help="--watch period"
    )
    parser.add_argument(
        "--count", type=positive_int, metavar="N", help="with --watch: stop after N"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(func=admin_queues.stats)


def _add_queues(subparsers: Subparsers, redis: argparse.ArgumentParser) -> None:
    parser = _command(
        subparsers,
        "queues",
        "list, pause, resume, purge or delete queues",
        """examples:
  strego queues list
  strego queues pause emails          # workers stop fetching within a second
  strego queues resume emails
  strego queues purge emails --yes    # delete waiting, scheduled and retry tasks
  strego queues delete defualt        # a queue nobody serves (a typo), with its tasks
""",
        [],
    )
    actions = _group(parser, "actions")
    _add_queue_actions(actions, redis)


def _add_queue_actions(actions: Subparsers, redis: argparse.ArgumentParser) -> None:
    listing = add_action(
        actions,
        "list",
        "list queues with their counts",
        "strego queues list\nstrego queues list --json | jq '.[] | {name, pending}'",
        redis,
    )
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(func=admin_queues.list_queues)
    pause = add_action(
        actions,
        "pause",
        "stop workers fetching from QUEUE (enqueue still works)",
        "strego queues pause emails",
        redis,
    )
    pause.add_argument("queue", metavar="QUEUE")
    pause.set_defaults(func=admin_queues.pause)
    resume = add_action(
        actions,
        "resume",
        "let workers fetch from QUEUE again",
        "strego queues resume emails",
        redis,
    )
    resume.add_argument("queue", metavar="QUEUE")
    resume.set_defaults(func=admin_queues.resume)
    purge = add_action(
        actions,
        "purge",
        "delete QUEUE's waiting, scheduled and retry tasks (running and dead ones stay)",
        "strego queues purge emails         # asks first\nstrego queues purge emails --yes",
        redis,
    )
    purge.add_argument("queue", metavar="QUEUE")
    purge.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    purge.set_defaults(func=admin_queues.purge)
    delete = add_action(
        actions,
        "delete",
        "delete QUEUE with all its tasks (refused while a live worker reads it)",
        "strego queues delete defualt      # asks first\nstrego queues delete defualt --yes",
        redis,
    )
    delete.add_argument("queue", metavar="QUEUE")
    delete.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    delete.set_defaults(func=admin_queues.delete_queue)


def _add_dead(subparsers: Subparsers, redis: argparse.ArgumentParser) -> None:
    parser = _command(
        subparsers,
        "dead",
        "inspect and act on dead letters (tasks that failed for good)",
        """examples:
  strego dead list                   # every queue, newest first
  strego dead list default --limit 100 --json
  strego dead retry default 01J8ZQ4R6T0000000000000000    # run it again, attempts reset
  strego dead retry-all default
  strego dead delete default 01J8ZQ4R6T0000000000000000
  strego dead purge default --yes
""",
        [],
    )
    actions = _group(parser, "actions")
    _add_dead_reads(actions, redis)
    _add_dead_writes(actions, redis)


def _add_dead_reads(actions: Subparsers, redis: argparse.ArgumentParser) -> None:
    listing = add_action(
        actions,
        "list",
        "list dead tasks of QUEUE (or of every queue), newest first",
        "strego dead list                  # every queue\nstrego dead list default\n"
        "strego dead list default --limit 100 --offset 100 --json",
        redis,
    )
    listing.add_argument(
        "queue", metavar="QUEUE", nargs="?", help="one queue (default: every queue, merged)"
    )
    listing.add_argument("--limit", type=positive_int, default=20, help="default %(default)s")
    listing.add_argument("--offset", type=non_negative_int, default=0)
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(func=admin_queues.dead_list)


def _add_dead_writes(actions: Subparsers, redis: argparse.ArgumentParser) -> None:
    retry = add_action(
        actions,
        "retry",
        "run dead tasks again now, attempts reset to 0",
        "strego dead retry default 01J8ZQ4R6T0000000000000000 01J8ZQ4R6V0000000000000000",
        redis,
    )
    delete = add_action(
        actions,
        "delete",
        "delete dead tasks",
        "strego dead delete default 01J8ZQ4R6T0000000000000000",
        redis,
    )
    for action, func in ((retry, admin_queues.dead_retry), (delete, admin_queues.dead_delete)):
        action.add_argument("queue", metavar="QUEUE")
        action.add_argument("task_ids", nargs="+", metavar="TASK_ID")
        action.set_defaults(func=func)
    retry_all = add_action(
        actions,
        "retry-all",
        "run every dead task of QUEUE again",
        "strego dead retry-all default\nstrego dead retry-all default --no-progress",
        redis,
    )
    retry_all.add_argument("queue", metavar="QUEUE")
    for action in (retry, retry_all):  # a retry is a new chapter of the task's history
        add_postgres_option(action)
    retry_all.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar (default: on a terminal, for more than 500 tasks)",
    )
    retry_all.set_defaults(func=admin_queues.dead_retry_all)
    purge = add_action(
        actions,
        "purge",
        "delete every dead task of QUEUE",
        "strego dead purge default         # asks first\nstrego dead purge default --yes",
        redis,
    )
    purge.add_argument("queue", metavar="QUEUE")
    purge.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    purge.set_defaults(func=admin_queues.dead_purge)


def _add_task(subparsers: Subparsers, redis: argparse.ArgumentParser) -> None:
    parser = _command(
        subparsers,
        "task",
        "show, cancel or get the result of one task",
        """examples:
  strego task get 01J8ZQ4R6T0000000000000000
  strego task get 01J8ZQ4R6T0000000000000000 --json | jq .state
  strego task cancel 01J8ZQ4R6T0000000000000000
  strego task result 01J8ZQ4R6T0000000000000000 --wait 30
""",
        [],
    )
    actions = _group(parser, "actions")
    get = add_action(
        actions,
        "get",
        "print everything Redis knows about a task (with its result, once completed)",
        "strego task get 01J8ZQ4R6T0000000000000000\n"
        "strego task get 01J8ZQ4R6T0000000000000000 --queue emails --json",
        redis,
    )
    get.add_argument("task_id", metavar="TASK_ID")
    get.add_argument("--queue", help="look only in this queue (default: every queue)")
    get.add_argument("--json", action="store_true", help="machine-readable output")
    get.set_defaults(func=admin_tasks.get)
    cancel = add_action(
        actions,
        "cancel",
        "cancel a pending, scheduled, retrying or running task",
        "strego task cancel 01J8ZQ4R6T0000000000000000",
        redis,
    )
    cancel.add_argument("task_id", metavar="TASK_ID")
    cancel.add_argument("--queue", help="look only in this queue (default: every queue)")
    cancel.set_defaults(func=admin_tasks.cancel)
    _add_result(actions, redis)


def _add_result(actions: Subparsers, redis: argparse.ArgumentParser) -> None:
    result = add_action(
        actions,
        "result",
        "print a task's result (JSON), waiting up to --wait seconds for it to finish; "
        "exit 1 if it failed, was cancelled or is unknown, 3 if not finished yet",
        "strego task result 01J8ZQ4R6T0000000000000000\n"
        "strego task result 01J8ZQ4R6T0000000000000000 --wait 30 --json | jq .total",
        redis,
    )
    result.add_argument("task_id", metavar="TASK_ID")
    result.add_argument(
        "--wait",
        type=parse_duration,
        metavar="SECONDS",
        help="wait this long for an unfinished task (default: do not wait)",
    )
    result.add_argument("--json", action="store_true", help="one line of JSON")
    result.set_defaults(func=result_cmd.result)
