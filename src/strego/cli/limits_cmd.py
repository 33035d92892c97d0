"""``strego limits``: every global limiter (strego.RateLimit / ConcurrencyLimit) and its use."""

from __future__ import annotations

import argparse
import dataclasses
import json
from datetime import datetime
from typing import Any

from strego.cli.common import add_redis_option
from strego.cli.connect import admin_session
from strego.cli.render import table
from strego.records import LimitInfo

__all__ = ["add_parsers", "limits_lines", "run_limits"]


def add_parsers(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "limits",
        help="show global rate and concurrency limits and their use",
        description="Show each global limiter the workers declared: its limit, use now, "
        "tasks parked by it and its most recent waits (docs/limits.md).",
        epilog="example: strego limits --keys   (list a keyed limiter's busiest keys)",
    )
    add_redis_option(parser)
    parser.add_argument("--keys", action="store_true", help="list each limiter's keys")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=run_limits)


async def run_limits(args: argparse.Namespace) -> int:
    async with admin_session(args) as inspector:
        limits = await inspector.limits()
    if args.json:
        print(json.dumps([limit_to_json(limit) for limit in limits], indent=2))
    else:
        print("\n".join(limits_lines(limits, keys=args.keys)))
    return 0


def limits_lines(limits: list[LimitInfo], *, keys: bool = False) -> list[str]:
    if not limits:
        return ["no limits declared: attach strego.RateLimit / ConcurrencyLimit to a handler"]
    rows = []
    for lim in limits:
        waits = ", ".join(f"{w.wait_s:.2f}s" for w in lim.recent_waits[:3]) or "-"
        rows.append(
            (
                lim.name,
                lim.kind,
                lim.queue or "(task types)",
                lim.description,
                lim.in_use,
                lim.parked,
                lim.granted,
                lim.held,
                waits,
            )
        )
    lines = table(
        (
            "LIMIT",
            "KIND",
            "SCOPE",
            "LIMIT IS",
            "IN USE",
            "PARKED",
            "GRANTED",
            "HELD",
            "RECENT WAITS",
        ),
        rows,
    )
    if keys:
        for lim in limits:
            if lim.keyed and lim.keys:
                lines += ["", f"{lim.name} by key:"]
                lines += table(
                    ("KEY", "IN USE", "PARKED"), [(k.key, k.in_use, k.parked) for k in lim.keys]
                )
    return lines


def limit_to_json(limit: LimitInfo) -> dict[str, Any]:
    found: dict[str, Any] = _jsonable(dataclasses.asdict(limit))
    return found | {"description": limit.description}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value
