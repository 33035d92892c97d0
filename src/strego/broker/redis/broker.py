"""RedisBroker: the producer and worker operations on Redis Streams.

Every state change of a task is one Lua script (see ``lua/``); this module only
builds keys and arguments and parses replies.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from redis.exceptions import ResponseError

from strego.broker.base import (
    Delivery,
    EnqueueRequest,
    EnqueueResult,
    QueueSignal,
    Retention,
    WorkerRegistration,
    WorkerTiming,
)
from strego.broker.redis.calls import (
    ack_call,
    dead_call,
    deliveries,
    enqueue_call,
    enqueue_many_call,
    enqueue_result,
    pairs,
    retry_call,
)
from strego.broker.redis.config import BrokerConfig
from strego.broker.redis.connection import (
    default_consumer_name,
    make_client,
    text,
    with_retries,
)
from strego.broker.redis.keys import GlobalKeys, QueueKeys
from strego.broker.redis.presence import Presence
from strego.broker.redis.scripts import ScriptCall, Scripts
from strego.broker.redis.topology import (
    RedisClient,
    masters_for,
    wait_for_replicas,
)
from strego.durations import Duration
from strego.outcome import Cancelled, Dead, Outcome, Retry, Succeeded, lost_entry

__all__ = ["RedisBroker"]

log = logging.getLogger("strego")
_ENQUEUE_CHUNK = 500
_PROMOTE_BATCH = 500


class RedisBroker:
    """Tasks in Redis Streams, shared by one consumer group per application."""

    def __init__(
        self,
        url_or_client: str | RedisClient,
        *,
        group: str = "strego-workers",
        consumer: str | None = None,
        batch_size: int = 10,
        block: Duration = 5.0,
        claim_stale_after: Duration = 300.0,
        claim_check_interval: Duration = 30.0,
        prefix: str = "strego",
        socket_timeout: Duration = 5.0,
        enqueue_attempts: int = 5,
    ) -> None:
        self.config = BrokerConfig.build(
            group=group,
            consumer=consumer or default_consumer_name(),
            batch_size=batch_size,
            block=block,
            claim_stale_after=claim_stale_after,
            claim_check_interval=claim_check_interval,
            prefix=prefix,
            socket_timeout=socket_timeout,
            enqueue_attempts=enqueue_attempts,
        )
        client, self._owns_client = make_client(
            url_or_client, socket_timeout_s=self.config.socket_timeout_s
        )
        # Typed Any on purpose: redis-py types every reply as bytes | str because
        # decode_responses is a runtime flag; strego always reads bytes.
        self.redis: Any = client
        self.scripts = Scripts()
        self.global_keys = GlobalKeys(self.config.prefix)
        self.retention = Retention()
        self._registered_queues: set[str] = set()
        self._presence = Presence(self)

    # -- shared -----------------------------------------------------------------

    @property
    def consumer(self) -> str:
        return self.config.consumer

    @property
    def timing(self) -> WorkerTiming:
        return WorkerTiming(
            block_s=self.config.block_s,
            claim_stale_after_s=self.config.claim_stale_after_s,
            claim_check_interval_s=self.config.claim_check_interval_s,
        )

    @property
    def group(self) -> str:
        return self.config.group

    def keys(self, queue: str) -> QueueKeys:
        return QueueKeys(self.config.prefix, queue)

    async def known_queues(self) -> list[str]:
        members = await self.redis.smembers(self.global_keys.queues)
        return sorted(text(m) for m in members)

    async def aclose(self) -> None:
        """Close the connection pool if this broker created it."""
        if self._owns_client:
            await self.redis.aclose()

    async def __aenter__(self) -> RedisBroker:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- producer ---------------------------------------------------------------

    async def enqueue(self, requests: Sequence[EnqueueRequest]) -> list[EnqueueResult]:
        """Enqueue tasks, pipelined in chunks (one round trip per chunk)."""
        results: list[EnqueueResult] = []
        for start in range(0, len(requests), _ENQUEUE_CHUNK):
            chunk = requests[start : start + _ENQUEUE_CHUNK]
            results.extend(
                await with_retries(
                    "enqueue",
                    lambda chunk=chunk: self._enqueue_chunk(chunk),  # type: ignore[misc]
                    attempts=self.config.enqueue_attempts,
                )
            )
        return results

    async def _enqueue_chunk(self, chunk: Sequence[EnqueueRequest]) -> list[EnqueueResult]:
        new_queues = {r.message.queue for r in chunk} - self._registered_queues
        if new_queues:
            await self.redis.sadd(self.global_keys.queues, *new_queues)
            self._registered_queues |= new_queues
        if len(chunk) == 1:
            script, keys, args = enqueue_call(self, chunk[0])
            return [enqueue_result(chunk[0], await script(self.redis, keys, args))]
        # One script call per queue (pipelined when the chunk spans queues).
        by_queue: dict[str, list[int]] = {}
        for position, request in enumerate(chunk):
            by_queue.setdefault(request.message.queue, []).append(position)
        calls = [
            enqueue_many_call(self, queue, [chunk[p] for p in positions])
            for queue, positions in by_queue.items()
        ]
        replies: list[Any] = [None] * len(chunk)
        for positions, reply in zip(
            by_queue.values(), await self.scripts.run_many(self.redis, calls), strict=True
        ):
            if isinstance(reply, Exception):
                raise reply
            for n, position in enumerate(positions):
                replies[position] = reply[2 * n : 2 * n + 2]
        return [enqueue_result(r, reply) for r, reply in zip(chunk, replies, strict=True)]

    async def wait_replicas(self, replicas: int, timeout_s: float) -> int:
        """WAIT on every master holding a queue this broker enqueued to (see topology).

        WAIT blocks its connection, so it is capped below the socket timeout: else a
        lagging replica turns into a read timeout instead of a count. Retried like
        enqueue (WAIT and its marker write are idempotent).
        """
        timeout_ms = int(min(timeout_s, self.config.socket_timeout_s * 0.8) * 1000)

        async def wait() -> int:
            queues = sorted(self._registered_queues)
            sync_keys = masters_for(self.redis, [self.keys(q).sync for q in queues])
            return await wait_for_replicas(self.redis, sync_keys, replicas, timeout_ms)

        return await with_retries("wait for replicas", wait, attempts=self.config.enqueue_attempts)

    async def locate(self, task_id: str, queue: str | None) -> tuple[str, bytes] | None:
        """(queue, index record) of a task Redis knows, looking in every queue if needed."""
        queues = [queue] if queue else await self.known_queues()
        pipe = self.redis.pipeline(transaction=False)
        for name in queues:
            pipe.hget(self.keys(name).index, task_id)
        records = await pipe.execute()
        for name, record in zip(queues, records, strict=True):
            if record is not None:
                return name, record
        return None

    async def cancel(self, task_id: str, queue: str | None = None) -> bool:
        """Cancel a task (see cancel.lua); retried like enqueue on connection errors."""
        return await with_retries(
            "cancel", lambda: self._cancel(task_id, queue), attempts=self.config.enqueue_attempts
        )

    async def _cancel(self, task_id: str, queue: str | None) -> bool:
        found = await self.locate(task_id, queue)
        if found is None:
            return False
        keys = self.keys(found[0])
        reply = await self.scripts.cancel(
            self.redis,
            [
                *keys.streams,
                keys.index,
                keys.bodies,
                keys.scheduled,
                keys.finished,
                keys.stats,
                keys.retry,
            ],
            [task_id, self.config.group, keys.channel, self.retention.keep_completed],
        )
        return int(reply) > 0

    # -- worker -----------------------------------------------------------------

    async def prepare(self, queues: Sequence[str], retention: Retention | None = None) -> None:
        """Create the consumer group on every band stream (idempotent)."""
        if retention is not None:
            self.retention = retention
        await self.redis.sadd(self.global_keys.queues, *queues)
        pipe = self.redis.pipeline(transaction=False)
        for queue in queues:
            for stream in self.keys(queue).streams:
                pipe.xgroup_create(stream, self.config.group, id="0", mkstream=True)
        for reply in await pipe.execute(raise_on_error=False):
            if isinstance(reply, Exception) and "BUSYGROUP" not in str(reply):
                raise reply

    async def fetch(
        self, wants: Sequence[tuple[str, int]], *, _retrying: bool = False
    ) -> dict[str, list[Delivery] | None]:
        """Up to ``count`` tasks per queue (one pipeline); None for a paused queue."""
        idle_ttl_ms = int(self.config.block_s * 2000)
        calls: list[ScriptCall] = []
        for queue, count in wants:
            keys = self.keys(queue)
            calls.append(
                (
                    self.scripts.fetch,
                    [*keys.streams, keys.paused, keys.idle],
                    [self.config.group, self.config.consumer, count, idle_ttl_ms],
                )
            )
        replies = await self.scripts.run_many(self.redis, calls)
        found: dict[str, list[Delivery] | None] = {}
        regroup = [(q, n) for (q, n), r in zip(wants, replies, strict=True) if _no_group(r)]
        if regroup and not _retrying:
            # The group is gone (Redis lost its data, or someone deleted the stream):
            # recreate it and read again at once rather than after a whole `block`.
            await self.prepare([q for q, _ in regroup])
            found.update(await self.fetch(regroup, _retrying=True))
        for (queue, _), reply in zip(wants, replies, strict=True):
            if _no_group(reply):
                found.setdefault(queue, [])
            elif isinstance(reply, Exception):
                raise reply
            else:
                found[queue] = None if reply == -1 else deliveries(queue, reply)
        return found

    async def own_pending(self, queue: str, count: int) -> list[Delivery]:
        """Entries this consumer already holds (a restart with a stable consumer name)."""
        found: list[Delivery] = []
        for band, stream in enumerate(self.keys(queue).streams):
            reply = await self.redis.xreadgroup(
                self.config.group, self.config.consumer, {stream: "0"}, count=count
            )
            for _, entries in reply or []:
                for entry_id, fields in entries:
                    if fields:
                        found.append(Delivery(queue, band, text(entry_id), fields, 2))
                    else:  # deleted while pending: nothing to run
                        await self.dead_letter_lost(queue, band, text(entry_id))
        return found

    async def apply(self, outcomes: Sequence[tuple[Delivery, Outcome]]) -> list[str]:
        """Apply outcomes in one pipeline; return task ids whose lease had been lost."""
        minute = int(time.time() // 60)
        acks: dict[str, list[tuple[Delivery, str, str, bool]]] = {}
        calls: list[ScriptCall] = []
        call_ids: list[list[str]] = []
        for delivery, outcome in outcomes:
            if isinstance(outcome, Succeeded | Cancelled):
                state = "c" if isinstance(outcome, Succeeded) else "x"
                acks.setdefault(delivery.queue, []).append(
                    (delivery, outcome.task_id, state, outcome.explicit_id)
                )
            elif isinstance(outcome, Retry):
                calls.append(retry_call(self, delivery, outcome, minute))
                call_ids.append([outcome.message.id])
            elif isinstance(outcome, Dead):
                calls.append(dead_call(self, delivery, outcome, minute))
                call_ids.append([outcome.message.id])
        for queue, items in acks.items():
            calls.append(ack_call(self, queue, items, minute))
            call_ids.append([task_id for _, task_id, _, _ in items])
        replies = await self.scripts.run_many(self.redis, calls)
        lost: list[str] = []
        for reply, ids in zip(replies, call_ids, strict=True):
            if isinstance(reply, ResponseError):
                # The script itself failed (e.g. NOGROUP: Redis restarted without its
                # data, so the entry and its group are gone). Retrying cannot help and
                # would block every later outcome: report these tasks as not ours.
                log.error("could not record outcome of %s: %s", ", ".join(ids), reply)
                lost.extend(ids)
                continue
            if isinstance(reply, Exception):
                raise reply
            if isinstance(reply, list):
                lost.extend(text(r) for r in reply)
            elif int(reply) == 0:
                lost.extend(ids)
        return lost

    async def dead_letter_lost(self, queue: str, band: int, entry_id: str) -> None:
        """Record an entry Redis reported deleted while pending (its body is gone)."""
        delivery = Delivery(queue, band, "", {})
        script, keys, args = dead_call(
            self, delivery, lost_entry(queue, entry_id), int(time.time() // 60)
        )
        await script(self.redis, keys, args)

    async def promote_due(self, queue: str) -> float | None:
        keys = self.keys(queue)
        moved, next_due_ms, now_ms = await self.scripts.promote(
            self.redis,
            [*keys.streams, keys.index, keys.bodies, keys.scheduled, keys.retry, keys.idle],
            [_PROMOTE_BATCH, keys.channel],
        )
        if int(moved) >= _PROMOTE_BATCH:
            return 0.0  # more are due right now
        if int(next_due_ms) < 0:
            return None
        return max(0.0, (int(next_due_ms) - int(now_ms)) / 1000)

    async def claim_stale(
        self, queue: str, min_idle_s: float, limit: int
    ) -> tuple[list[Delivery], list[str]]:
        """XAUTOCLAIM every band, looping each cursor to 0-0 or until ``limit`` entries."""
        claimed: list[Delivery] = []
        deleted: list[str] = []
        for band, stream in enumerate(self.keys(queue).streams):
            cursor = "0-0"
            while len(claimed) < limit:
                reply = await self.scripts.claim(
                    self.redis,
                    [stream],
                    [
                        self.config.group,
                        self.config.consumer,
                        int(min_idle_s * 1000),
                        cursor,
                        max(1, min(100, limit - len(claimed))),
                    ],
                )
                cursor = text(reply[0])
                flat = reply[1]
                for i in range(0, len(flat), 3):
                    fields = pairs(flat[i + 1])
                    claimed.append(Delivery(queue, band, text(flat[i]), fields, int(flat[i + 2])))
                for entry_id in reply[2]:
                    deleted.append(text(entry_id))
                    await self.dead_letter_lost(queue, band, text(entry_id))
                if cursor == "0-0":
                    break
        return claimed, deleted

    async def renew(self, deliveries: Sequence[Delivery]) -> list[str]:
        by_queue: dict[str, list[Delivery]] = {}
        for delivery in deliveries:
            by_queue.setdefault(delivery.queue, []).append(delivery)
        calls: list[ScriptCall] = []
        for queue, items in by_queue.items():
            args: list[str | int] = [self.config.group, self.config.consumer]
            for d in items:
                args += [d.band, d.entry_id]
            calls.append((self.scripts.renew, self.keys(queue).streams, args))
        lost: list[str] = []
        for reply in await self.scripts.run_many(self.redis, calls):
            if isinstance(reply, Exception):
                raise reply
            lost.extend(text(r) for r in reply)
        return lost

    # -- presence (see presence.py) -------------------------------------------------

    async def listen(
        self, queues: Sequence[str], on_signal: Callable[[QueueSignal], None]
    ) -> Callable[[], Awaitable[None]]:
        return await self._presence.listen(queues, on_signal)

    async def heartbeat(self, registration: WorkerRegistration, in_flight: int) -> None:
        await self._presence.heartbeat(registration, in_flight)

    async def deregister(self, registration: WorkerRegistration, queues: Sequence[str]) -> None:
        await self._presence.deregister(registration, queues)

    async def cleanup_consumers(self, queue: str, idle_s: float) -> int:
        return await self._presence.cleanup_consumers(queue, idle_s)


def _no_group(reply: Any) -> bool:
    return isinstance(reply, ResponseError) and "NOGROUP" in str(reply)
