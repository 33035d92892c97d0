"""Task listings, one page at a time, without reading what the page skips.

See ``strego.paging`` for the cursors. Every page costs at most one bounded range read
per priority band (``COUNT limit + 1``: the extra row says whether a next page exists)
plus one pipeline for the bodies, whatever the queue's length or the page's position.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from strego.broker.redis.connection import text
from strego.paging import LAST, Cursor, TaskPage, id_key
from strego.records import TaskRecord
from strego.task import TaskState

if TYPE_CHECKING:
    from strego.broker.redis.admin import RedisAdmin

__all__ = ["TaskPager"]

Entry = tuple[int, str, Any]  # (band, stream id, fields or pending-list line)


class TaskPager:
    """Pages of one admin's queues (it loads the records)."""

    def __init__(self, admin: RedisAdmin) -> None:
        self._admin = admin
        self._redis: Any = admin.redis

    async def page(self, queue: str, state: str, cursor: Cursor | None, limit: int) -> TaskPage:
        if state == "pending":
            if cursor is None or (cursor.rank is None and cursor.after and not cursor.last):
                return await self._pending_forward(queue, cursor, limit)
            if cursor.rank is None:
                return await self._pending_backward(queue, cursor, limit)
        elif state == "active":
            if cursor is None or (cursor.rank is None and cursor.after and not cursor.last):
                return await self._active_forward(queue, cursor, limit)
            raise ValueError("the active list pages forward only (use next_cursor)")
        elif cursor is None or cursor.rank is not None or cursor.last:
            return await self._ranked(queue, state, cursor, limit)
        raise ValueError(f"that cursor does not page the {state} list")

    # -- pending: stream positions ------------------------------------------------

    async def _pending_forward(self, queue: str, after: Cursor | None, limit: int) -> TaskPage:
        """Bands from the highest, each from its first undelivered entry (or ``after``)."""
        rows: list[Entry] = []
        for band, stream, last in await self._admin.waiting_ranges(queue):
            if after is not None and band > after.band:
                continue  # shown before the cursor's band
            start = last
            if after is not None and band == after.band and after.id_key > id_key(last):
                start = after.entry_id
            found = await self._redis.xrange(stream, min=f"({start}", count=limit + 1 - len(rows))
            rows += [(band, text(eid), fields) for eid, fields in found]
            if len(rows) > limit:
                break
        shown = rows[:limit]
        records = self._pending_records(shown)
        return TaskPage(
            records=records,
            next_cursor=_position(shown[-1], after=True) if len(rows) > limit else None,
            prev_cursor=(_position(shown[0], after=False) if shown else LAST) if after else None,
        )

    async def _pending_backward(self, queue: str, before: Cursor, limit: int) -> TaskPage:
        """From the lowest band's newest entry (``last``) or from before ``before``."""
        rows: list[Entry] = []
        for band, stream, last in reversed(await self._admin.waiting_ranges(queue)):
            if not before.last and band < before.band:
                continue  # shown after the cursor's band
            end = "+"
            if not before.last and band == before.band:
                end = f"({before.entry_id}"
            found = await self._redis.xrevrange(
                stream, max=end, min=f"({last}", count=limit + 1 - len(rows)
            )
            rows += [(band, text(eid), fields) for eid, fields in found]
            if len(rows) > limit:
                break
        shown = list(reversed(rows[:limit]))
        return TaskPage(
            records=self._pending_records(shown),
            next_cursor=None if before.last or not shown else _position(shown[-1], after=True),
            prev_cursor=_position(shown[0], after=False) if len(rows) > limit else None,
        )

    def _pending_records(self, rows: Sequence[Entry]) -> list[TaskRecord]:
        records = (self._admin.record_from_fields(fields, TaskState.PENDING) for *_, fields in rows)
        return [r for r in records if r is not None]

    # -- active: the pending lists, forward only ----------------------------------

    async def _active_forward(self, queue: str, after: Cursor | None, limit: int) -> TaskPage:
        group = await self._admin.group(queue)
        rows: list[Entry] = []
        for band, stream in enumerate(self._admin.keys(queue).streams):
            if after is not None and band < after.band:
                continue
            low = f"({after.entry_id}" if after is not None and band == after.band else "-"
            try:
                found = await self._redis.xpending_range(
                    stream, group, min=low, max="+", count=limit + 1 - len(rows)
                )
            except Exception as exc:  # NOGROUP: no worker read this band yet
                if "NOGROUP" not in str(exc):
                    raise
                continue
            rows += [(band, text(line["message_id"]), line) for line in found]
            if len(rows) > limit:
                break
        shown = rows[:limit]
        records = await self._admin.active_records(queue, [(b, line) for b, _, line in shown])
        return TaskPage(
            records=records,
            next_cursor=_position(shown[-1], after=True) if len(rows) > limit else None,
        )

    # -- sorted sets and the completed list: ranks ---------------------------------

    async def _ranked(self, queue: str, state: str, cursor: Cursor | None, limit: int) -> TaskPage:
        keys = self._admin.keys(queue)
        key = {
            "scheduled": keys.scheduled,
            "retry": keys.retry,
            "dead": keys.dead,
            "completed": keys.finished,
        }[state]
        count = self._redis.llen if state == "completed" else self._redis.zcard
        total = int(await count(key))
        if cursor is None:
            start = 0
        elif cursor.last:  # aligned with the forward pages, so walking back repeats none
            start = (total - 1) // limit * limit if total else 0
        else:
            start = int(cursor.rank or 0)
        stop = start + limit - 1
        if state == "completed":
            raw = await self._redis.lrange(key, start, stop)
        elif state == "dead":  # newest first
            raw = await self._redis.zrevrange(key, start, stop)
        else:  # due soonest first
            raw = await self._redis.zrange(key, start, stop)
        records = await self._admin.records(queue, [text(i) for i in raw])
        return TaskPage(
            records=records,
            next_cursor=f"r{start + limit}" if start + limit < total else None,
            prev_cursor=(f"r{max(0, start - limit)}" if start < total else LAST) if start else None,
            first_row=start + 1,
        )


def _position(row: Entry, *, after: bool) -> str:
    band, entry_id, _ = row
    return str(Cursor(after=after, band=band, entry_id=entry_id))
