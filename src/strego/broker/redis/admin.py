"""Admin reads and actions on Redis, behind the Inspector (UI and CLI use them)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from redis.exceptions import ResponseError

from strego.broker.redis.broker import RedisBroker
from strego.broker.redis.connection import text
from strego.broker.redis.keys import QueueKeys
from strego.broker.redis.topology import server_info
from strego.envelope import MalformedTaskError, decode, encode
from strego.records import (
    ConsumerInfo,
    QueueInfo,
    TaskRecord,
    ThroughputPoint,
    WorkerInfo,
    ms_to_datetime,
    record_from_message,
)
from strego.serializers import SerializerRegistry
from strego.task import TaskState

__all__ = ["RedisAdmin"]

_CHUNK = 500
_FINISHED_STATES = {"c": TaskState.COMPLETED, "x": TaskState.CANCELLED}
_LISTABLE = ("pending", "active", "scheduled", "retry", "dead", "completed")


class RedisAdmin:
    def __init__(self, broker: RedisBroker, serializers: SerializerRegistry | None = None) -> None:
        self._broker = broker
        self._redis: Any = broker.redis
        self._scripts = broker.scripts
        self._serializers = serializers or SerializerRegistry()

    def _keys(self, queue: str) -> QueueKeys:
        return self._broker.keys(queue)

    # -- queues -----------------------------------------------------------------

    async def queues(self) -> list[QueueInfo]:
        return [await self.queue_info(q) for q in await self._broker.known_queues()]

    async def queue_info(self, queue: str) -> QueueInfo:
        keys = self._keys(queue)
        group = await self._broker.group_for(queue)
        pipe = self._redis.pipeline(transaction=False)
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
        replies = await pipe.execute(raise_on_error=False)
        n = len(keys.streams)
        lengths = [int(r) if isinstance(r, int) else 0 for r in replies[:n]]
        active = sum(_pending_count(r) for r in replies[n : 2 * n])
        firsts = [r[0][0] for r in replies[2 * n : 3 * n] if isinstance(r, list) and r]
        scheduled, retry, dead, completed, paused, stats = replies[3 * n :]
        stats = {text(k): int(v) for k, v in stats.items()}
        oldest = None
        if firsts and sum(lengths) > active:
            first_ms = min(int(text(e).split("-")[0]) for e in firsts)
            oldest = max(0.0, time.time() - first_ms / 1000)
        return QueueInfo(
            name=queue,
            pending=max(0, sum(lengths) - active),
            active=active,
            scheduled=int(scheduled),
            retry=int(retry),
            dead=int(dead),
            completed=int(completed),
            paused=bool(paused),
            enqueued=stats.get("enqueued", 0),
            processed=stats.get("processed", 0),
            failed=stats.get("failed", 0),
            retried=stats.get("retried", 0),
            dead_total=stats.get("dead", 0),
            cancelled=stats.get("cancelled", 0),
            oldest_pending_s=oldest,
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
        if state not in _LISTABLE:
            raise ValueError(f"state must be one of {', '.join(_LISTABLE)}, got {state!r}")
        if offset < 0 or limit < 1:
            raise ValueError("offset must be >= 0 and limit >= 1")
        keys = self._keys(queue)
        if state == "pending":
            return await self._list_waiting(queue, offset, limit)
        if state == "active":
            return await self._list_active(queue, offset, limit)
        if state == "completed":
            ids = [
                text(i) for i in await self._redis.lrange(keys.finished, offset, offset + limit - 1)
            ]
        elif state == "dead":
            ids = [
                text(i) for i in await self._redis.zrevrange(keys.dead, offset, offset + limit - 1)
            ]
        else:
            zset = keys.scheduled if state == "scheduled" else keys.retry
            ids = [text(i) for i in await self._redis.zrange(zset, offset, offset + limit - 1)]
        return await self._records(queue, ids)

    async def _records(self, queue: str, ids: Sequence[str]) -> list[TaskRecord]:
        found = [await self.get_task(task_id, queue) for task_id in ids]
        return [r for r in found if r is not None]

    async def _waiting_ranges(self, queue: str) -> list[tuple[int, str, str]]:
        """(band, stream, last delivered id) for each band, highest band first."""
        group = await self._broker.group_for(queue)
        out = []
        for band, stream in reversed(list(enumerate(self._keys(queue).streams))):
            last = "0-0"
            try:
                for info in await self._redis.xinfo_groups(stream):
                    if text(info["name"]) == group:
                        last = text(info["last-delivered-id"])
            except ResponseError:
                pass
            out.append((band, stream, last))
        return out

    async def _list_waiting(self, queue: str, offset: int, limit: int) -> list[TaskRecord]:
        records: list[TaskRecord] = []
        skip = offset
        for _band, stream, last in await self._waiting_ranges(queue):
            if len(records) >= limit:
                break
            entries = await self._redis.xrange(stream, min=f"({last}", count=skip + limit)
            for _entry_id, fields in entries[skip:]:
                skip = 0
                record = self._from_blob(fields.get(b"d"), TaskState.PENDING)
                if record is not None and len(records) < limit:
                    records.append(record)
            skip = max(0, skip - len(entries))
        return records

    async def _list_active(self, queue: str, offset: int, limit: int) -> list[TaskRecord]:
        records: list[TaskRecord] = []
        seen = 0
        group = await self._broker.group_for(queue)
        for band, stream in enumerate(self._keys(queue).streams):
            try:
                pending = await self._redis.xpending_range(
                    stream, group, min="-", max="+", count=offset + limit
                )
            except ResponseError:
                continue
            for entry in pending:
                seen += 1
                if seen <= offset or len(records) >= limit:
                    continue
                entries = await self._redis.xrange(stream, entry["message_id"], entry["message_id"])
                if entries:
                    records.append(self._active_record(entries[0][1].get(b"d"), entry))
            del band
        return [r for r in records if r is not None]

    def _active_record(self, blob: bytes | None, pending: dict[str, Any]) -> TaskRecord:
        started = ms_to_datetime(time.time() * 1000 - int(pending["time_since_delivered"]))
        record = self._from_blob(
            blob, TaskState.ACTIVE, started_at=started, worker=text(pending["consumer"])
        )
        assert record is not None
        return record

    def _from_blob(self, blob: bytes | None, state: TaskState, **times: Any) -> TaskRecord | None:
        if blob is None:
            return None
        try:
            message = decode(blob)
        except MalformedTaskError:
            return None
        return record_from_message(message, state, self._serializers, **times)

    # -- one task ---------------------------------------------------------------

    async def get_task(self, task_id: str, queue: str | None = None) -> TaskRecord | None:
        found = await self._broker.locate(task_id, queue)
        if found is None:
            return None
        name, raw = found
        keys = self._keys(name)
        record = _split(text(raw))
        if record.state in ("p", "k"):
            stream = keys.stream(record.band)
            entries = await self._redis.xrange(stream, record.ref, record.ref)
            if not entries:
                return None
            blob = entries[0][1].get(b"d")
            group = await self._broker.group_for(name)
            try:
                pel = await self._redis.xpending_range(stream, group, record.ref, record.ref, 1)
            except ResponseError:  # NOGROUP: no worker has read this queue yet
                pel = []
            due = record.due_at
            if pel:
                active = self._active_record(blob, pel[0])
                return _with(active, cancel_requested=record.state == "k", process_at=due)
            return self._from_blob(blob, TaskState.PENDING, process_at=due)
        blob = await self._redis.hget(keys.bodies, task_id)
        if record.state in ("s", "r"):
            task_state = TaskState.SCHEDULED if record.state == "s" else TaskState.RETRY
            return self._from_blob(blob, task_state, process_at=ms_to_datetime(int(record.ref)))
        return self._from_blob(
            blob,
            TaskState.DEAD
            if record.state == "d"
            else _FINISHED_STATES.get(record.state, TaskState.COMPLETED),
            completed_at=ms_to_datetime(int(record.ref)),
            started_at=record.started_at,
            process_at=record.due_at,
            worker=record.worker or None,
        )

    # -- actions ----------------------------------------------------------------

    async def retry(self, task_id: str, queue: str | None = None) -> bool:
        found = await self._broker.locate(task_id, queue)
        if found is None:
            return False
        return await self._requeue(found[0], [(task_id, found[1])]) == 1

    async def retry_all_dead(self, queue: str) -> int:
        keys = self._keys(queue)
        moved = 0
        while True:
            ids = [text(i) for i in await self._redis.zrange(keys.dead, 0, _CHUNK - 1)]
            if not ids:
                return moved
            records = await self._redis.hmget(keys.index, ids)
            batch = moved
            moved += await self._requeue(
                queue, [(i, r) for i, r in zip(ids, records, strict=True) if r]
            )
            if moved == batch:  # nothing could move (raced): avoid spinning
                return moved

    async def _requeue(self, queue: str, items: Sequence[tuple[str, bytes]]) -> int:
        keys = self._keys(queue)
        bodies = await self._redis.hmget(keys.bodies, [i for i, _ in items])
        args: list[Any] = [keys.channel]
        for (task_id, record), blob in zip(items, bodies, strict=True):
            if blob is None or text(record)[:1] not in ("s", "r", "d"):
                continue
            args += [task_id, record, _reset(blob)]
        if len(args) == 1:
            return 0
        return int(await self._scripts.requeue(self._redis, keys.layout(), args))

    async def delete(self, task_id: str, queue: str | None = None) -> bool:
        found = await self._broker.locate(task_id, queue)
        if found is None:
            return False
        return await self._delete(found[0], [task_id]) == 1

    async def _delete(self, queue: str, ids: Sequence[str]) -> int:
        keys = self._keys(queue)
        return int(
            await self._scripts.delete(
                self._redis, keys.layout(), [await self._broker.group_for(queue), *ids]
            )
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
        for _band, stream, last in await self._waiting_ranges(queue):
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

    # -- workers and consumers ---------------------------------------------------

    async def workers(self) -> list[WorkerInfo]:
        global_keys = self._broker.global_keys
        names = [text(n) for n in await self._redis.zrange(global_keys.workers, 0, -1)]
        pipe = self._redis.pipeline(transaction=False)
        for name in names:
            pipe.hgetall(global_keys.worker(name))
        found = []
        for raw in await pipe.execute():
            if not raw:
                continue
            info = {text(k): text(v) for k, v in raw.items()}
            found.append(
                WorkerInfo(
                    name=info["name"],
                    host=info.get("host", ""),
                    pid=int(info.get("pid", 0)),
                    queues=[q for q in info.get("queues", "").split(",") if q],
                    concurrency=int(info.get("concurrency", 0)),
                    in_flight=int(info.get("in_flight", 0)),
                    started_at=ms_to_datetime(int(info.get("started_ms", 0))),  # type: ignore[arg-type]
                    last_heartbeat=ms_to_datetime(int(info.get("heartbeat_ms", 0))),  # type: ignore[arg-type]
                )
            )
        return found

    async def consumers(self, queue: str) -> list[ConsumerInfo]:
        alive = {w.name for w in await self.workers()}
        group = await self._broker.group_for(queue)
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
                totals[text(k)] = totals.get(text(k), 0) + int(v)
        return [
            ThroughputPoint(
                minute=ms_to_datetime(m * 60_000),  # type: ignore[arg-type]
                processed=totals.get(f"{m}:p", 0),
                failed=totals.get(f"{m}:f", 0),
            )
            for m in range(first, now_minute + 1)
        ]

    async def redis_info(self) -> dict[str, Any]:
        info = await server_info(self._redis)  # a cluster: every master, summed
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


@dataclasses.dataclass(frozen=True, slots=True)
class _Record:
    """An index record: ``state|band|ref[|started ms|due ms|worker]`` (see lua/_lib.lua)."""

    state: str
    band: int
    ref: str
    started_ms: str = ""
    due_ms: str = ""
    worker: str = ""

    @property
    def started_at(self) -> datetime | None:
        return _ms(self.started_ms)

    @property
    def due_at(self) -> datetime | None:
        return _ms(self.due_ms)


def _ms(value: str) -> datetime | None:
    try:
        return ms_to_datetime(int(float(value))) if value else None
    except (ValueError, OverflowError):  # garbage in a record is not a page error
        return None


def _split(record: str) -> _Record:
    parts = record.split("|", 5)
    try:
        band = int(parts[1]) if len(parts) > 1 and parts[1] else 0
    except ValueError:
        band = 0
    parts += [""] * (6 - len(parts))
    return _Record(parts[0], band, parts[2], parts[3], parts[4], parts[5])


def _reset(blob: bytes) -> bytes:
    """The task with attempts reset to 0 and failure fields cleared (admin retry)."""
    try:
        message = decode(blob)
    except MalformedTaskError:
        return blob
    return encode(message.evolve(retry_count=0, dead_reason=None, failed_ms=None))


def _task_id(blob: bytes | None) -> str | None:
    if blob is None:
        return None
    try:
        return decode(blob).id
    except MalformedTaskError:
        return None


def _with(record: TaskRecord, **changes: Any) -> TaskRecord:
    return dataclasses.replace(record, **changes)
