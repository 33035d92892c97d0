"""A producer process whose wall clock is off: ``python -m tests.faults.skewed_producer``.

Enqueues tasks with ``process_in`` and with ``process_at`` (computed from its own,
skewed, clock) and prints one JSON line per task: its id, kind, and
the *real* time the enqueue happened, so the test can compare with when it ran.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from datetime import UTC, timedelta

import strego
from tests.faults.skew import skew_clock

_real_time = time.time  # captured before the clock is skewed


async def produce(args: argparse.Namespace) -> list[dict[str, object]]:
    skewed = skew_clock(args.skew)
    broker = strego.RedisBroker(args.redis, prefix=args.prefix, group="faults")
    rows = []
    async with broker, strego.Client(broker) as client:
        for i in range(args.count):
            task = strego.Task("work", {}, process_in=args.delay + i * 0.05)
            rows.append(await _enqueue(client, task, "in", task.delay_s))
        for _ in range(args.count_at):
            at = skewed.now(UTC) + timedelta(seconds=args.delay)
            task = strego.Task("work", {}, process_at=at)
            rows.append(await _enqueue(client, task, "at", at.timestamp()))
    return rows


async def _enqueue(
    client: strego.Client, task: strego.Task, kind: str, due: float | None
) -> dict[str, object]:
    before = _real_time()
    info = await client.enqueue(task)
    return {
        "id": info.id,
        "kind": kind,
        "due": due,  # process_in: seconds after enqueue; process_at: epoch (skewed clock)
        "enqueued_at": (before + _real_time()) / 2,
        "process_at": info.process_at.timestamp() if info.process_at else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--skew", type=float, required=True)
    parser.add_argument("--delay", type=float, default=3.0)
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--count-at", type=int, default=5)
    for row in asyncio.run(produce(parser.parse_args())):
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
