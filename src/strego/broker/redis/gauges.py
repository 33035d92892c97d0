"""Every queue's current counts and oldest pending age, for the UI's /metrics.

Three pipelined round trips of read-only commands however many queues (no script, so a
read-only ACL user can export them too): the counts of the delayed sets and the length
of each band's stream; then, for the bands holding entries, the group's pending count
and last-delivered id (XINFO GROUPS); then the first entry after that id: the oldest
task not delivered yet. A task already running does not count, however old its entry.
Keys holding something else (garbage) count as empty.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Any

from strego.broker.redis.broker import RedisBroker
from strego.broker.redis.connection import text
from strego.records import QueueGauges

__all__ = ["queue_gauges"]


@dataclasses.dataclass(slots=True)
class _Band:
    """One band's stream that holds entries."""

    queue: int  # index into the queues read
    stream: str
    length: int
    held: int = 0  # delivered, not acknowledged (the group's pending list)
    last: str = "0-0"  # the group's last-delivered id
    first_ms: int | None = None  # the oldest undelivered entry's time


async def queue_gauges(redis: Any, broker: RedisBroker, names: Sequence[str]) -> list[QueueGauges]:
    """The gauges of ``names`` (one chunk: callers bound how many per call)."""
    if not names:
        return []
    groups, delayed, bands = await _lengths(redis, broker, names)
    await _delivered(redis, bands, groups)
    await _oldest(redis, bands)
    now_ms = time.time() * 1000
    by_queue: dict[int, list[_Band]] = {}
    for band in bands:
        by_queue.setdefault(band.queue, []).append(band)
    out = []
    for index, name in enumerate(names):
        mine = by_queue.get(index, [])
        firsts = [b.first_ms for b in mine if b.first_ms is not None]
        scheduled, retry, dead = delayed[index]
        out.append(
            QueueGauges(
                name=name,
                pending=sum(max(0, b.length - b.held) for b in mine),
                active=sum(b.held for b in mine),
                scheduled=scheduled,
                retry=retry,
                dead=dead,
                oldest_pending_s=max(0.0, (now_ms - min(firsts)) / 1000) if firsts else None,
            )
        )
    return out


async def _lengths(
    redis: Any, broker: RedisBroker, names: Sequence[str]
) -> tuple[list[str], list[tuple[int, int, int]], list[_Band]]:
    """Each queue's group (recorded, else the broker's), delayed counts, and bands."""
    pipe = redis.pipeline(transaction=False)
    all_keys = [broker.keys(name) for name in names]
    for keys in all_keys:
        pipe.get(keys.group)
        pipe.zcard(keys.scheduled)
        pipe.zcard(keys.retry)
        pipe.zcard(keys.dead)
        for stream in keys.streams:
            pipe.xlen(stream)
    replies = await pipe.execute(raise_on_error=False)
    size = 4 + len(all_keys[0].streams)
    groups, delayed, bands = [], [], []
    for index, keys in enumerate(all_keys):
        group, scheduled, retry, dead, *lengths = replies[index * size : (index + 1) * size]
        groups.append(text(group) if isinstance(group, bytes) else broker.group)
        delayed.append((_count(scheduled), _count(retry), _count(dead)))
        bands += [
            _Band(index, stream, _count(length))
            for stream, length in zip(keys.streams, lengths, strict=True)
            if _count(length) > 0
        ]
    return groups, delayed, bands


async def _delivered(redis: Any, bands: Sequence[_Band], groups: Sequence[str]) -> None:
    if not bands:
        return
    pipe = redis.pipeline(transaction=False)
    for band in bands:
        pipe.xinfo_groups(band.stream)
    for band, infos in zip(bands, await pipe.execute(raise_on_error=False), strict=True):
        for info in infos if isinstance(infos, list) else []:
            if isinstance(info, dict) and text(info.get("name", b"")) == groups[band.queue]:
                band.held = _count(info.get("pending"))
                band.last = text(info.get("last-delivered-id") or b"0-0")


async def _oldest(redis: Any, bands: Sequence[_Band]) -> None:
    if not bands:
        return
    pipe = redis.pipeline(transaction=False)
    for band in bands:
        pipe.xrange(band.stream, min=f"({band.last}", count=1)
    for band, entries in zip(bands, await pipe.execute(raise_on_error=False), strict=True):
        if isinstance(entries, list) and entries:
            stamp = text(entries[0][0]).partition("-")[0]
            band.first_ms = int(stamp) if stamp.isdigit() else None


def _count(reply: object) -> int:
    return reply if isinstance(reply, int) and not isinstance(reply, bool) else 0
