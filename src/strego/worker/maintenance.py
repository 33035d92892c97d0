"""Background loops every worker runs: scheduler, lease renewal, reclaim, heartbeat,
consumer cleanup. Each loop logs and retries on errors; none can kill the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

from strego.broker.base import WorkerBroker

__all__ = ["every", "run_scheduler"]

log = logging.getLogger("strego")
_ERROR_BACKOFF_CAP_S = 5.0


async def every(name: str, interval_s: float, job: Callable[[], Awaitable[object]]) -> None:
    """Run ``job`` every ``interval_s`` seconds, forever; errors are logged, not raised."""
    failures = 0
    while True:
        try:
            await job()
            failures = 0
            await asyncio.sleep(interval_s)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            failures += 1
            delay = min(_ERROR_BACKOFF_CAP_S, 0.1 * 2**failures, interval_s)
            log.warning("%s failed (%s); retrying in %.1fs", name, exc, delay)
            await asyncio.sleep(delay)


async def run_scheduler(
    broker: WorkerBroker,
    queues: Sequence[str],
    sooner: asyncio.Event,
    max_sleep_s: float,
    also_due: Callable[[], Awaitable[float | None]] | None = None,
) -> None:
    """Promote due scheduled/retry tasks, then sleep until the next one is due.

    No fixed tick: the sleep ends at the earliest due time (measured on Redis's clock)
    or when a producer publishes that something sooner was scheduled. ``max_sleep_s``
    only bounds the damage of a missed notification. ``also_due`` (periodic schedules)
    runs at each wake-up too and says how long until it has work again.
    """
    failures = 0
    while True:
        sooner.clear()
        try:
            waits = [await broker.promote_due(queue) for queue in queues]
            if also_due is not None:
                waits.append(await also_due())
            failures = 0
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            failures += 1
            delay = min(_ERROR_BACKOFF_CAP_S, 0.1 * 2**failures)
            log.warning("scheduler failed (%s); retrying in %.1fs", exc, delay)
            await asyncio.sleep(delay)
            continue
        due = [w for w in waits if w is not None]
        sleep_s = min([max_sleep_s, *due])
        if sleep_s <= 0:
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(sooner.wait(), sleep_s)
