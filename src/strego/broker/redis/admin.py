"""Admin reads and actions on Redis, behind the Inspector (UI and CLI use them)."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from redis.exceptions import ResponseError

from strego.broker.redis.broker import RedisBroker
from strego.broker.redis.connection import text
from strego.broker.redis.gauges import queue_gauges
from strego.broker.redis.keys import QueueKeys
from strego.broker.redis.limits_admin import read_limits
from strego.broker.redis.pages import TaskPager
from strego.broker.redis.topology import server_info
from strego.envelope import MalformedTaskError, TaskMessage, decode, encode
from strego.errors import QueueInUseError
from strego.paging import MAX_PAGE, MAX_STREAM_OFFSET, Cursor, TaskPage, parse_cursor
from strego.records import (
    ClusterGauges,
    ConsumerInfo,
    LimitInfo,
    QueueGauges,
    QueueInfo,
    TaskRecord,
    TaskTypeStats,
    ThroughputPoint,
    WorkerInfo,
    ms_to_datetime,
    record_from_message,
)
from strego.results import split_stored
from strego.serializers import SerializerRegistry
from strego.task import TaskState

__all__ = ["RedisAdmin"]

log = logging.getLogger("strego")

_CHUNK = 500
_REQUEUE_BYTES = 8 << 20  # bodies read per requeue batch (one body may exceed it alone)
OnMoved = Callable[[Sequence[TaskMessage]], Awaitable[None]]
_FINISHED_STATES = {"c": TaskState.COMPLETED, "x": TaskState.CANCELLED}
_THROUGHPUT_HOURS = 26  # tp:<hour> keys expire after 25 h
_LISTABLE = ("pending", "active", "scheduled", "retry", "dead", "completed")
_STREAM_STATES = ("pending", "active")
_MAX_EPOCH_MS = 253_402_300_799_999  # 9999-12-31: the last time a datetime holds
#: Listings decode payloads up to this size; above, ``payload`` is None (the bytes stay).
LISTING_DECODE_BYTES = 64 * 1024


class RedisAdmin:
    def __init__(self, broker: RedisBroker, serializers: SerializerRegistry | None = None) -> None:
        self._broker = broker
        self._redis: Any = broker.redis
        self.redis: Any = broker.redis
        self.pager = TaskPager(self)
        self._scripts = broker.scripts
        self._serializers = serializers or SerializerRegistry()

    def _keys(self, queue: str) -> QueueKeys:
        return self._broker.keys(queue)

    def keys(self, queue: str) -> QueueKeys:
        return self._broker.keys(queue)

    # -- queues -----------------------------------------------------------------

    async def ping(self) -> None:
        await self._redis.ping()

    async def limits(self) -> list[LimitInfo]:
        return await read_limits(self._redis, self._broker.config.prefix)

    async def known_queues(self) -> list[str]:
        return await self._broker.known_queues()

    async def group(self, queue: str) -> str:
        """The consumer group recorded for ``queue`` (see ``RedisBroker.group_for``)."""
        return await self._broker.group_for(queue)

    async def queues(self) -> list[QueueInfo]:
        """Every known queue's counts in one pipeline (one round trip, however many)."""
        names = await self._broker.known_queues()
        if not names:
            return []
        groups = await self._broker.groups_for(names)
        pipe = self._redis.pipeline(transaction=False)
        for name in names:
            self._queue_info_commands(pipe, name, groups[name])
        replies = await pipe.execute(raise_on_error=False)
        per_queue = len(replies) // len(names)
        return [
            self._queue_info_from(name, replies[n * per_queue : (n + 1) * per_queue])
            for n, name in enumerate(names)
        ]

    async def queue_info(self, queue: str) -> QueueInfo:
        group = await self.group(queue)
        pipe = self._redis.pipeline(transaction=False)
        self._queue_info_commands(pipe, queue, group)
        return self._queue_info_from(queue, await pipe.execute(raise_on_error=False))

    def _queue_info_commands(self, pipe: Any, queue: str, group: str) -> None:
        """Queue the reads behind one QueueInfo (parsed by ``_queue_info_from``)."""
        keys = self._keys(queue)
        for stream in keys.streams:
            pipe.xlen(stream)
        for stream in keys.streams:
            pipe.execute_command("XPENDING", stream, group)
        for stream in keys.streams:
            pipe.xrange(stream, count=1)
        pipe.zcard(keys.scheduled)
        pipe.zcard(keys.retry)
        pipe.zcard(keys.dead)
        pipe.llen(keys.finished)
        pipe.exists(keys.paused)
        pipe.hgetall(keys.stats)

    def _queue_info_from(self, queue: str, replies: Sequence[Any]) -> QueueInfo:
        """Counts from the replies; one that Redis refused (a key of the wrong type,
        garbage someone else wrote) counts as 0, so one bent queue cannot take down
        every page that lists queues."""
        n = len(self._keys(queue).streams)
        replies = [_readable(reply) for reply in replies]
        lengths = [int(r) if isinstance(r, int) else 0 for r in replies[:n]]
        active = sum(_pending_count(r) for r in replies[n : 2 * n])
        firsts = [r[0][0] for r in replies[2 * n : 3 * n] if isinstance(r, list) and r]
        scheduled, retry, dead, completed, paused, stats = replies[3 * n :]
        stats = {text(k): _int(v) for k, v in (stats or {}).items()}  # garbage counts as 0
        oldest = None
        if firsts and sum(lengths) > active:
            first_ms = min(int(text(e).split("-")[0]) for e in firsts)
            oldest = max(0.0, time.time() - first_ms / 1000)
        return QueueInfo(
            name=queue,
            pending=max(0, sum(lengths) - active),
            active=active,
            scheduled=_int(scheduled),
            retry=_int(retry),
            dead=_int(dead),
            completed=_int(completed),
            paused=bool(paused),
            enqueued=stats.get("enqueued", 0),
            processed=stats.get("processed", 0),
            failed=stats.get("failed", 0),
            retried=stats.get("retried", 0),
            dead_total=stats.get("dead", 0),
            cancelled=stats.get("cancelled", 0),
            oldest_pending_s=oldest,
            rate_limited=stats.get("rate_limited", 0),
        )

    async def pause(self, queue: str) -> None:
        await self._redis.set(self._keys(queue).paused, b"1")

    async def resume(self, queue: str) -> None:
        keys = self._keys(queue)
        await self._redis.delete(keys.paused)
        # execute_command: redis-py 5's asyncio RedisCluster has no publish() method.
        await self._redis.execute_command("PUBLISH", keys.channel, b"w")

    # -- task listings ----------------------------------------------------------

    async def list_tasks(
        self, queue: str, state: str, *, offset: int = 0, limit: int = 50
    ) -> list[TaskRecord]:
        """Rows ``offset``.. of one state. Over a stream (pending, active) every skipped
        row is read, so ``offset`` stops at ``MAX_STREAM_OFFSET``: page further with
        ``list_page`` and a cursor."""
        _check_listing(state, limit)
        if offset < 0:
            raise ValueError(f"offset must be >= 0, got {offset}")
        if state in _STREAM_STATES:
            if offset > MAX_STREAM_OFFSET:
                raise ValueError(
                    f"offset over the {state} list stops at {MAX_STREAM_OFFSET} (it reads "
                    "every skipped task): page with a cursor (list_page) instead"
                )
            page = await self.pager.page(queue, state, None, offset + limit)
            return page.records[offset:]
        return (await self.pager.page(queue, state, Cursor(rank=offset), limit)).records

    async def list_page(
        self, queue: str, state: str, *, cursor: str | None = None, limit: int = 50
    ) -> TaskPage:
        """One page of one state and the cursors of its neighbours (see strego.paging)."""
        _check_listing(state, limit)
        return await self.pager.page(queue, state, parse_cursor(cursor), limit)

    async def records(self, queue: str, ids: Sequence[str]) -> list[TaskRecord]:
        """Listing records of ``ids`` in their order, in two round trips however many."""
        if not ids:
            return []
        raws = await self._redis.hmget(self._keys(queue).index, list(ids))
        found = [(i, text(r)) for i, r in zip(ids, raws, strict=True) if r is not None]
        loaded = await self._load(queue, found, LISTING_DECODE_BYTES)
        return [r for r in loaded if r is not None]

    async def waiting_ranges(self, queue: str) -> list[tuple[int, str, str]]:
        """(band, stream, last delivered id) for each band, highest band first."""
        streams = self._keys(queue).streams
        group = await self.group(queue)
        pipe = self._redis.pipeline(transaction=False)
        for stream in streams:
            pipe.xinfo_groups(stream)
        replies = await pipe.execute(raise_on_error=False)
        out = []
        for band in reversed(range(len(streams))):
            last = "0-0"
            groups = replies[band]
            for info in groups if isinstance(groups, list) else []:  # an error: no stream
                if isinstance(info, dict) and text(info.get("name", b"")) == group:
                    last = text(info.get("last-delivered-id", b"0-0"))
            out.append((band, streams[band], last))
        return out

    async def active_records(
        self, queue: str, lines: Sequence[tuple[int, dict[str, Any]]]
    ) -> list[TaskRecord]:
        """Records of delivered entries (band, pending-list line): one pipeline."""
        streams = self._keys(queue).streams
        pipe = self._redis.pipeline(transaction=False)
        for band, line in lines:
            pipe.xrange(streams[band], line["message_id"], line["message_id"])
        bodies = await pipe.execute(raise_on_error=False) if lines else []
        records = [
            self._active_record(_body(found), line, LISTING_DECODE_BYTES)
            for (_band, line), found in zip(lines, bodies, strict=True)
            if isinstance(found, list) and found
        ]
        return [r for r in records if r is not None]

    def record_from_fields(self, fields: Any, state: TaskState) -> TaskRecord | None:
        """A stream entry's listing record, or None when it holds no readable task."""
        blob = fields.get(b"d") if isinstance(fields, dict) else None
        return self._from_blob(blob, state, LISTING_DECODE_BYTES)

    def _active_record(
        self, blob: bytes | None, pending: dict[str, Any], limit: int | None = None
    ) -> TaskRecord | None:
        try:
            since_ms = int(pending["time_since_delivered"])
        except (KeyError, TypeError, ValueError):
            since_ms = 0
        started = ms_to_datetime(time.time() * 1000 - since_ms)
        worker = text(pending.get("consumer") or b"") or None
        return self._from_blob(blob, TaskState.ACTIVE, limit, started_at=started, worker=worker)

    def _from_blob(
        self, blob: bytes | None, state: TaskState, limit: int | None = None, **times: Any
    ) -> TaskRecord | None:
        """The record of a task blob; its payload decoded only up to ``limit`` bytes (a
        listing of 50 tasks with 20 MB payloads must not decode a gigabyte)."""
        if blob is None:
            return None
        try:
            message = decode(blob)
        except MalformedTaskError:
            return None
        if limit is None or len(message.payload) <= limit:
            return record_from_message(message, state, self._serializers, **times)
        record = record_from_message(message.evolve(payload=b""), state, self._serializers, **times)
        return dataclasses.replace(record, payload=None, payload_bytes=message.payload)

    # -- one task ---------------------------------------------------------------

    async def get_task(self, task_id: str, queue: str | None = None) -> TaskRecord | None:
        found = await self._broker.locate(task_id, queue)
        record: TaskRecord | None = None
        for _ in range(3):
            if found is None:
                return None
            name, raw = found
            (record,) = await self._load(name, [(task_id, text(raw))])
            if record is not None:
                break
            # The index said where the task was, but it moved before its entry was
            # read (acknowledged, retried, dead-lettered): read it again where it went.
            # An unreadable record that stays put (garbage) is None, as before.
            moved = await self._broker.locate(task_id, name)
            if moved == found:
                return None
            found = moved
        if record is not None and record.state is TaskState.COMPLETED:
            stored = await self._redis.get(self._keys(name).result(task_id))
            if isinstance(stored, bytes):
                record = _with_result(record, stored, self._serializers)
        return record

    async def _load(
        self, queue: str, found: Sequence[tuple[str, str]], limit: int | None = None
    ) -> list[TaskRecord | None]:
        """Records for (task id, index record) pairs of one queue, in one pipeline.

        A task in a stream needs its entry and its pending-list line (delivered = active);
        any other state keeps its body in the bodies hash. An index record that is not
        one strego writes (garbage) yields None: the task is unreadable, not a 500.
        """
        keys = self._keys(queue)
        parsed = [(task_id, _parse_record(raw, len(keys.streams))) for task_id, raw in found]
        group = await self.group(queue) if any(r and r.in_stream for _, r in parsed) else ""
        pipe = self._redis.pipeline(transaction=False)
        for task_id, rec in parsed:
            if rec is None:
                continue
            if rec.in_stream:
                pipe.xrange(keys.stream(rec.band), rec.ref, rec.ref)
                pipe.xpending_range(keys.stream(rec.band), group, rec.ref, rec.ref, 1)
            else:
                pipe.hget(keys.bodies, task_id)
        replies = iter(await pipe.execute(raise_on_error=False) if len(pipe) else [])
        out: list[TaskRecord | None] = []
        for _task_id, rec in parsed:
            if rec is None:
                out.append(None)
            elif rec.in_stream:
                entries, pel = next(replies), next(replies)
                out.append(self._in_stream(entries, pel, rec, limit=limit))
            else:
                out.append(self._at_rest(next(replies), rec, limit))
        return out

    def _in_stream(
        self, entries: Any, pel: Any, rec: _IndexRecord, *, limit: int | None
    ) -> TaskRecord | None:
        """A task in a stream: active when delivered (in the pending list), else pending."""
        if not isinstance(entries, list) or not entries:
            return None  # acknowledged meanwhile, or the stream is gone
        blob = _body(entries)
        if isinstance(pel, list) and pel:  # an error is NOGROUP: no worker read this queue yet
            record = self._active_record(blob, pel[0], limit)
            if record is None:
                return None
            return dataclasses.replace(
                record, cancel_requested=rec.state == "k", process_at=rec.due_at
            )
        return self._from_blob(blob, TaskState.PENDING, limit, process_at=rec.due_at)

    def _at_rest(self, blob: Any, rec: _IndexRecord, limit: int | None) -> TaskRecord | None:
        """A task outside the streams: scheduled, retrying, dead or finished."""
        if not isinstance(blob, bytes):
            return None
        at = ms_to_datetime(int(rec.ref))
        if rec.state in ("s", "r"):
            task_state = TaskState.SCHEDULED if rec.state == "s" else TaskState.RETRY
            return self._from_blob(blob, task_state, limit, process_at=at)
        state = TaskState.DEAD if rec.state == "d" else _FINISHED_STATES[rec.state]
        return self._from_blob(
            blob,
            state,
            limit,
            completed_at=at,
            started_at=rec.started_at,
            process_at=rec.due_at,
            worker=rec.worker or None,
        )

    # -- actions ----------------------------------------------------------------

    async def retry(self, task_id: str, queue: str | None = None) -> bool:
        found = await self._broker.locate(task_id, queue)
        if found is None:
            return False
        return await self._requeue(found[0], [(task_id, found[1])]) == 1

    async def retry_all_dead(self, queue: str, *, on_moved: OnMoved | None = None) -> int:
        """Requeue every task that was dead when the call started, each at most once.

        The dead set is walked in score (death time) order up to a cut-off read first:
        a task that dies again while this runs is dead-lettered with a later Redis time
        and is not picked up by the same call (it used to be, so a task that kept dying
        ran again and again and the call never ended). Tasks that fail to move (changed
        meanwhile) stay at the front of the walk and are skipped by rank. ``on_moved``
        is awaited with the tasks each chunk moved (for history and progress).
        """
        keys = self._keys(queue)
        cutoff = await self._dead_cutoff(keys)
        if cutoff is None:
            return 0
        moved = stayed = 0
        while True:
            raw = await self._redis.zrangebyscore(
                keys.dead, "-inf", cutoff, start=stayed, num=_CHUNK
            )
            ids = [text(i) for i in raw]
            if not ids:
                return moved
            records = await self._redis.hmget(keys.index, ids)
            items = [(i, r) for i, r in zip(ids, records, strict=True) if r]
            done = await self._requeue(queue, items, on_moved)
            moved += done
            stayed += len(ids) - done

    async def _dead_cutoff(self, keys: QueueKeys) -> int | None:
        """The newest death time to retry: the newest dead letter's, but before the
        current millisecond, so a task retried by this call that dies again (its score
        is the Redis time of that death) always lands after it."""
        newest = await self._redis.zrevrange(keys.dead, 0, 0, withscores=True)
        if not newest:
            return None
        # TIME after the read: later than any death the read saw. (A cluster answers
        # from some master; their clocks are as close as NTP keeps them.)
        seconds, micros = await self._redis.time()
        now_ms = int(seconds) * 1000 + int(micros) // 1000
        return min(int(newest[0][1]), now_ms - 1)

    async def _requeue(
        self,
        queue: str,
        items: Sequence[tuple[str, bytes]],
        on_moved: OnMoved | None = None,
    ) -> int:
        """Move ``items`` (task id, index record read) back to their streams.

        Bodies are read and rewritten in batches of at most ``_REQUEUE_BYTES`` (a dead
        letter may hold a 100 MB payload: 500 of them must not be read at once).
        """
        moved = 0
        for batch in await self._by_size(queue, items):
            moved += await self._requeue_batch(queue, batch, on_moved)
        return moved

    async def _by_size(
        self, queue: str, items: Sequence[tuple[str, bytes]]
    ) -> list[list[tuple[str, bytes]]]:
        if not items:
            return []
        sizes = await self._hstrlens(self._keys(queue).bodies, [i for i, _ in items])
        batches: list[list[tuple[str, bytes]]] = [[]]
        total = 0
        for item, size in zip(items, sizes, strict=True):
            if batches[-1] and total + size > _REQUEUE_BYTES:
                batches.append([])
                total = 0
            batches[-1].append(item)
            total += size
        return batches

    async def _hstrlens(self, key: str, fields: Sequence[str]) -> list[int]:
        pipe = self._redis.pipeline(transaction=False)
        for field in fields:
            pipe.hstrlen(key, field)
        return [r if isinstance(r, int) else 0 for r in await pipe.execute(raise_on_error=False)]

    async def _requeue_batch(
        self, queue: str, items: Sequence[tuple[str, bytes]], on_moved: OnMoved | None
    ) -> int:
        keys = self._keys(queue)
        bodies = await self._redis.hmget(keys.bodies, [i for i, _ in items])
        args: list[Any] = [keys.channel]
        sent: list[tuple[str, bytes, TaskMessage | None]] = []
        for (task_id, record), blob in zip(items, bodies, strict=True):
            if blob is None or text(record)[:1] not in ("s", "r", "d"):
                continue
            fresh, message = _reset(blob)
            args += [task_id, record, fresh]
            sent.append((task_id, record, message))
        if not sent:
            return 0
        moved = int(await self._scripts.requeue(self._redis, keys.layout(), args))
        if on_moved is not None and moved:
            await on_moved(await self._moved(keys, sent, moved))
        return moved

    async def _moved(
        self, keys: QueueKeys, sent: Sequence[tuple[str, bytes, TaskMessage | None]], moved: int
    ) -> list[TaskMessage]:
        """Which of ``sent`` the script moved: all, or those whose record changed."""
        if moved < len(sent):
            now = await self._redis.hmget(keys.index, [i for i, _, _ in sent])
            sent = [s for s, record in zip(sent, now, strict=True) if record != s[1]]
        return [message for _, _, message in sent if message is not None]

    async def delete(self, task_id: str, queue: str | None = None) -> bool:
        found = await self._broker.locate(task_id, queue)
        if found is None:
            return False
        return await self._delete(found[0], [task_id]) == 1

    async def _delete(self, queue: str, ids: Sequence[str]) -> int:
        keys = self._keys(queue)
        return int(
            await self._scripts.delete(self._redis, keys.layout(), [await self.group(queue), *ids])
        )

    async def purge_dead(self, queue: str) -> int:
        return await self._purge_zset(queue, self._keys(queue).dead)

    async def _purge_zset(self, queue: str, zset: str) -> int:
        removed = 0
        while True:
            ids = [text(i) for i in await self._redis.zrange(zset, 0, _CHUNK - 1)]
            if not ids:
                return removed
            done = await self._delete(queue, ids)
            if done == 0:  # stale members without records: drop them
                await self._redis.zrem(zset, *ids)
            removed += done

    async def purge_queue(self, queue: str) -> int:
        """Delete every waiting, scheduled and retry task (running and dead ones stay)."""
        keys = self._keys(queue)
        removed = await self._purge_zset(queue, keys.scheduled)
        removed += await self._purge_zset(queue, keys.retry)
        for _band, stream, last in await self.waiting_ranges(queue):
            start = f"({last}"
            while True:
                entries = await self._redis.xrange(stream, min=start, count=_CHUNK)
                if not entries:
                    break
                ids = [_task_id(fields.get(b"d")) for _, fields in entries]
                removed += await self._delete(queue, [i for i in ids if i])
                orphans = [eid for (eid, fields), i in zip(entries, ids, strict=True) if not i]
                if orphans:  # garbage entries with no task id: delete them directly
                    removed += int(await self._redis.xdel(stream, *orphans))
                start = f"({text(entries[-1][0])}"
        return removed

    async def delete_queue(self, queue: str) -> int:
        """Delete every key of ``queue`` and forget its name; the number of tasks removed.

        For queues nobody serves (a typo such as ``defualt`` lives for ever otherwise):
        refused while a live worker reads the queue or one of its tasks is running.
        Unique-key and processed markers are left to expire on their own TTLs; the
        queue's periodic schedules go with it (a worker declaring them brings them back).
        """
        readers = sorted(w.name for w in await self.workers() if queue in w.queues)
        if readers:
            raise QueueInUseError(queue, f"served by live workers {', '.join(readers)}")
        info = await self.queue_info(queue)
        if info.active:
            raise QueueInUseError(queue, f"{info.active} tasks are running")
        keys = self._keys(queue)
        now_hour = int(time.time() // 3600)
        doomed = [
            *keys.streams,
            *(keys.throughput(h) for h in range(now_hour - _THROUGHPUT_HOURS, now_hour + 1)),
            keys.index,
            keys.bodies,
            keys.scheduled,
            keys.retry,
            keys.dead,
            keys.finished,
            keys.stats,
            keys.paused,
            keys.idle,
            keys.handoff,  # (an idle worker's inbox expires on its own)
            keys.sync,
            keys.group,
            keys.flow_outbox,  # workflow graphs (flow:<id>) expire with their results
            *await self._broker.periodics.keys_of(queue),
        ]
        # One slot (hash tag), so one MULTI on a cluster too: readers see all or nothing.
        pipe = self._redis.pipeline(transaction=True)
        pipe.hlen(keys.index)
        pipe.delete(*doomed)
        removed = (await pipe.execute())[0]
        await self._redis.srem(self._broker.global_keys.queues, queue)
        return int(removed)

    async def cancel(self, task_id: str, queue: str | None = None) -> bool:
        return await self._broker.cancel(task_id, queue)

    # -- workers and consumers ---------------------------------------------------

    async def workers(self) -> list[WorkerInfo]:
        global_keys = self._broker.global_keys
        names = [text(n) for n in await self._redis.zrange(global_keys.workers, 0, -1)]
        pipe = self._redis.pipeline(transaction=False)
        for name in names:
            pipe.hgetall(global_keys.worker(name))
        found = []
        for raw in await pipe.execute():
            if raw:
                found.append(_worker_info({text(k): text(v) for k, v in raw.items()}))
        return found

    async def gauges(self) -> ClusterGauges:
        """Every known queue's gauges (broker/redis/gauges.py: three pipelined round
        trips per 500 queues) and the live workers, counted without reading their
        descriptions."""
        names = await self._broker.known_queues()
        queues: list[QueueGauges] = []
        for start in range(0, len(names), _CHUNK):
            chunk = names[start : start + _CHUNK]
            queues += await queue_gauges(self._redis, self._broker, chunk)
        return ClusterGauges(queues=queues, workers=await self._live())

    async def _live(self) -> int:
        """Workers whose description has not expired (what ``workers()`` lists)."""
        global_keys = self._broker.global_keys
        names = [text(n) for n in await self._redis.zrange(global_keys.workers, 0, -1)]
        if not names:
            return 0
        pipe = self._redis.pipeline(transaction=False)
        for name in names:
            pipe.exists(global_keys.worker(name))
        return sum(1 for found in await pipe.execute() if found)

    async def consumers(self, queue: str) -> list[ConsumerInfo]:
        alive = {w.name for w in await self.workers()}
        group = await self.group(queue)
        merged: dict[str, tuple[int, float]] = {}
        for stream in self._keys(queue).streams:
            try:
                consumers = await self._redis.xinfo_consumers(stream, group)
            except ResponseError:
                continue
            for c in consumers:
                name = text(c["name"])
                pending, idle = merged.get(name, (0, float("inf")))
                merged[name] = (pending + int(c["pending"]), min(idle, int(c["idle"]) / 1000))
        return [
            ConsumerInfo(name=n, pending=p, idle_s=i, alive=n in alive)
            for n, (p, i) in sorted(merged.items())
        ]

    async def remove_consumer(self, queue: str, consumer: str) -> bool:
        """Remove a consumer; everything it holds is handed over for reclaim first (in
        the same script as the removal), so no delivered task is ever dropped."""
        if consumer not in {c.name for c in await self.consumers(queue)}:
            return False
        await self._broker.hand_over(queue, consumer, remove=True)
        return True

    async def throughput(
        self, queue: str | None = None, minutes: int = 60
    ) -> list[ThroughputPoint]:
        queues = [queue] if queue else await self._broker.known_queues()
        now_minute = int(time.time() // 60)
        first = now_minute - minutes + 1
        hours = sorted({m // 60 for m in range(first, now_minute + 1)})
        pipe = self._redis.pipeline(transaction=False)
        for name in queues:
            for hour in hours:
                pipe.hgetall(self._keys(name).throughput(hour))
        totals: dict[str, int] = {}
        for raw in await pipe.execute():
            for k, v in raw.items():
                totals[text(k)] = totals.get(text(k), 0) + _int(v)
        return [
            ThroughputPoint(
                minute=ms_to_datetime(m * 60_000),  # type: ignore[arg-type]
                processed=totals.get(f"{m}:p", 0),
                failed=totals.get(f"{m}:f", 0),
            )
            for m in range(first, now_minute + 1)
        ]

    async def redis_info(self) -> dict[str, Any]:
        """Version, memory, clients... (each None when Redis does not say: a read-only
        ACL user without INFO still gets every other page and panel)."""
        try:
            info = await server_info(self._redis)  # a cluster: every master, summed
        except ResponseError as exc:  # NOPERM
            log.warning("strego admin: no Redis INFO (%s)", exc)
            info = {}
        wanted = (
            "redis_version",
            "used_memory_human",
            "used_memory",
            "connected_clients",
            "uptime_in_seconds",
            "maxmemory_policy",
            "cluster_masters",
        )
        return {
            k: (text(info[k]) if isinstance(info.get(k), bytes) else info.get(k))
            for k in wanted
            if k in info or k != "cluster_masters"
        }


def _worker_info(info: dict[str, str]) -> WorkerInfo:
    """A worker's heartbeat hash (see presence.py). ``processed``, ``failed`` and
    ``types`` (JSON: ``[{"queue", "type", "processed", "failed", "buckets"}]``) are
    optional: a worker that does not publish them shows zeros."""
    return WorkerInfo(
        name=info["name"],
        host=info.get("host", ""),
        pid=_int(info.get("pid")),
        queues=[q for q in info.get("queues", "").split(",") if q],
        concurrency=_int(info.get("concurrency")),
        in_flight=_int(info.get("in_flight")),
        started_at=ms_to_datetime(_int(info.get("started_ms"))),  # type: ignore[arg-type]
        last_heartbeat=ms_to_datetime(_int(info.get("heartbeat_ms"))),  # type: ignore[arg-type]
        processed=_int(info.get("processed")),
        failed=_int(info.get("failed")),
        task_types=_task_types(info.get("types")),
    )


def _readable(reply: Any) -> Any:
    """A pipeline reply, or None for one Redis refused (WRONGTYPE and the like)."""
    if isinstance(reply, ResponseError):
        if "NOGROUP" not in str(reply):  # that one is normal: no worker read the band yet
            log.warning("strego admin: Redis refused a read (%s): foreign data in a key", reply)
        return None
    return reply


def _int(value: str | bytes | int | None) -> int:
    """A counter Redis holds as text; anything else (garbage) counts as 0."""
    try:
        return int(value or 0)
    except (ValueError, TypeError):
        return 0


def _task_types(raw: str | None) -> tuple[TaskTypeStats, ...]:
    """Per-type numbers from a heartbeat; anything unreadable is skipped, never fatal."""
    try:
        items = json.loads(raw) if raw else []
    except (ValueError, RecursionError):
        return ()
    found = []
    for item in items if isinstance(items, list) else []:
        try:
            found.append(
                TaskTypeStats(
                    queue=str(item["queue"]),
                    type=str(item["type"]),
                    processed=int(item.get("processed", 0)),
                    failed=int(item.get("failed", 0)),
                    buckets=tuple(int(n) for n in item.get("buckets", ())),
                )
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
    return tuple(found)


def _pending_count(reply: Any) -> int:
    """Entries delivered and not acknowledged, from an XPENDING summary reply.

    redis-py parses the summary into a dict (``{"pending": n, ...}``); a raw reply
    is a list whose first item is the count; an error (NOGROUP: no worker yet) is 0.
    """
    if isinstance(reply, dict):
        return int(reply.get("pending") or 0)
    if isinstance(reply, list | tuple) and reply:
        return int(reply[0])
    return 0


def _check_listing(state: str, limit: int) -> None:
    if state not in _LISTABLE:
        raise ValueError(f"state must be one of {', '.join(_LISTABLE)}, got {state!r}")
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be 1-{MAX_PAGE}, got {limit}")


def _body(entries: list[Any]) -> bytes | None:
    """The task blob of an XRANGE reply's first entry (None: no such field)."""
    fields = entries[0][1]
    blob = fields.get(b"d") if isinstance(fields, dict) else None
    return blob if isinstance(blob, bytes) else None


@dataclasses.dataclass(frozen=True, slots=True)
class _IndexRecord:
    """Where the index says a task is: ``state|band|ref|started|due|worker`` (the last
    three may be missing or empty; see lua/_lib.lua)."""

    state: str  # p(ending) k(cancel requested) s r d c(ompleted) x (cancelled)
    band: int
    ref: str  # the stream entry id (p, k), else a time in epoch ms
    started_ms: str = ""  # when its last attempt began (finished and dead tasks)
    due_ms: str = ""  # when it was scheduled to run, if it was
    worker: str = ""  # who finished it

    @property
    def in_stream(self) -> bool:
        return self.state in ("p", "k")

    @property
    def started_at(self) -> Any:
        return _epoch(self.started_ms)

    @property
    def due_at(self) -> Any:
        return _epoch(self.due_ms)


def _epoch(value: str) -> Any:
    """A time field of a record as a datetime; empty or garbage → None (not a 500)."""
    return ms_to_datetime(int(value)) if _EPOCH_MS.match(value) else None


_STREAM_ID = re.compile(r"^\d{1,20}-\d{1,20}$")
_EPOCH_MS = re.compile(r"^\d{1,15}$")  # before year 33658: datetime can hold it


def _with_result(record: TaskRecord, stored: bytes, serializers: SerializerRegistry) -> TaskRecord:
    """The record with its kept result; decoded as payloads are (raw bytes stay bytes)."""
    try:
        name, data = split_stored(stored)
    except ValueError:  # not written by strego: shown as bytes
        return dataclasses.replace(record, result_bytes=stored)
    value: Any = None
    serializer = serializers.get(name)
    if serializer is not None and name != "raw":
        try:
            value = serializer.loads(data)
        except Exception:  # shown raw: an undecodable result must not break the page
            value = None
    return dataclasses.replace(record, result=value, result_bytes=data, result_serializer=name)


def _parse_record(record: str, bands: int) -> _IndexRecord | None:
    """The index record, or None when it is not one strego writes (garbage in Redis)."""
    parts = record.split("|", 5)
    parts += [""] * (6 - len(parts))
    state, band, ref, started, due, worker = parts
    if not band.isdigit() or int(band) >= bands:
        return None
    if state in ("p", "k"):
        ok = bool(_STREAM_ID.match(ref))
    else:
        ok = state in ("s", "r", "d", *_FINISHED_STATES) and bool(_EPOCH_MS.match(ref))
        ok = ok and int(ref) <= _MAX_EPOCH_MS
    return _IndexRecord(state, int(band), ref, started, due, worker) if ok else None


def _reset(blob: bytes) -> tuple[bytes, TaskMessage | None]:
    """The task with attempts reset to 0 and failure fields cleared (admin retry)."""
    try:
        message = decode(blob)
    except MalformedTaskError:
        return blob, None
    message = message.evolve(retry_count=0, dead_reason=None, failed_ms=None)
    return encode(message), message


def _task_id(blob: bytes | None) -> str | None:
    if blob is None:
        return None
    try:
        return decode(blob).id
    except MalformedTaskError:
        return None
