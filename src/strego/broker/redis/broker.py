"""RedisBroker: the producer and worker operations on Redis Streams.

Every state change of a task is one Lua script (see ``lua/``); this module only
builds keys and arguments and parses replies.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import Any

from strego.broker.base import (
    Delivery,
    EnqueueRequest,
    EnqueueResult,
    LeaseCheck,
    QueueSignal,
    Reclaimed,
    Retention,
    WorkerRegistration,
    WorkerTiming,
)
from strego.broker.limiting import Held
from strego.broker.redis import flows
from strego.broker.redis.calls import (
    AckItem,
    ack_call,
    dead_call,
    deliveries,
    enqueue_call,
    enqueue_many_call,
    enqueue_result,
    handover_one_call,
    pairs,
    park_call,
    release_call,
    retry_call,
)
from strego.broker.redis.config import BrokerConfig
from strego.broker.redis.connection import (
    default_consumer_name,
    is_transient,
    make_client,
    text,
    with_retries,
)
from strego.broker.redis.handoff import RedisHandoff, handed_deliveries
from strego.broker.redis.keys import HANDOVER_CONSUMER, GlobalKeys, QueueKeys
from strego.broker.redis.limiter import RedisLimiter
from strego.broker.redis.periodic import RedisPeriodics
from strego.broker.redis.presence import Presence
from strego.broker.redis.replies import is_no_group, is_wrong_group, recorded_group
from strego.broker.redis.scripts import ScriptCall, Scripts
from strego.broker.redis.topology import (
    RedisClient,
    masters_for,
    server_info,
    wait_for_replicas,
)
from strego.broker.redis.waiter import ResultWaiter
from strego.durations import Duration
from strego.envelope import TaskMessage
from strego.errors import ConfigurationError
from strego.outcome import Cancelled, Dead, Outcome, Parked, Retry, Succeeded
from strego.results import Finished
from strego.workflows.graph import Graph
from strego.workflows.view import WorkflowView

__all__ = ["RedisBroker"]

log = logging.getLogger("strego")
_ENQUEUE_CHUNK = 500
_PROMOTE_BATCH = 500


class RedisBroker:
    """Tasks in Redis Streams, shared by one consumer group per application.

    ``group=None`` means the group each queue's first worker recorded in Redis (or
    ``"strego-workers"`` where none is recorded yet): what producers, the Inspector,
    the UI and the CLI want. A group given explicitly must match the recorded one.
    """

    def __init__(
        self,
        url_or_client: str | RedisClient,
        *,
        group: str | None = None,
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
        self._groups: dict[str, str] = {}  # queue → its recorded group, once read
        self._worker_group: str | None = None  # resolved by prepare() for a worker
        self._eviction_checked = False
        self._presence = Presence(self)
        self._waiter: ResultWaiter | None = None
        self.limits = RedisLimiter(self)  # global limits' state (issue 16)
        self._periodics: RedisPeriodics | None = None
        # One-hop idle pickup (issue 21): see handoff.py.
        self._handoff_withdraw: int | str = "-"  # '-': this consumer never offered
        self.handoff = RedisHandoff(
            self.redis, self.config.prefix, self.config.consumer, self.config.socket_timeout_s
        )

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
        """The group this broker works in: a worker's as resolved at prepare(), else
        the one given (or the default). Per-queue admin work uses :meth:`group_for`."""
        return self._worker_group or self.config.group

    def keys(self, queue: str) -> QueueKeys:
        return QueueKeys(self.config.prefix, queue)

    async def known_queues(self) -> list[str]:
        members = await self.redis.smembers(self.global_keys.queues)
        return sorted(text(m) for m in members)

    @property
    def results(self) -> ResultWaiter:
        """Where ``Client.result`` waits: one pub/sub connection for every waiter of
        this broker, opened on first use (see waiter.py)."""
        if self._waiter is None:
            self._waiter = ResultWaiter(self)
        return self._waiter

    @property
    def periodics(self) -> RedisPeriodics:
        """Periodic schedules of this broker's queues (see periodic.py)."""
        if self._periodics is None:
            self._periodics = RedisPeriodics(self)
        return self._periodics

    async def wait_result(self, task_id: str, timeout_s: float | None) -> Finished:
        return await self.results.wait(task_id, timeout_s)

    async def aclose(self) -> None:
        """Stop result waits; close the connection pool if this broker created it."""
        if self._waiter is not None:
            waiter, self._waiter = self._waiter, None
            await waiter.aclose()
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
        if queue is not None:
            await self.group_for(queue)  # a group that disagrees is refused up front
        found = await self.locate(task_id, queue)
        if found is None:
            return False
        keys = self.keys(found[0])
        group = await self.group_for(found[0])  # refuses a group that disagrees
        reply = await self.scripts.cancel(
            self.redis,
            keys.layout(),
            [task_id, group, keys.channel, self.retention.keep_completed],
        )
        return int(reply) > 0

    # -- workflows (strego.workflows; the work is in flows/) ---------------------------

    async def enqueue_workflow(self, graph: Graph, workflow_id: str) -> None:
        await with_retries(
            "enqueue workflow",
            lambda: flows.enqueue_workflow(self, graph, workflow_id),
            attempts=self.config.enqueue_attempts,
        )

    async def find_workflow(self, workflow_id: str) -> dict[str, Any] | None:
        return await flows.find_workflow(self, workflow_id)

    async def open_workflow(self, workflow_id: str, meta: dict[str, Any]) -> None:
        await with_retries(
            "open workflow",
            lambda: flows.open_workflow(self, workflow_id, meta),
            attempts=self.config.enqueue_attempts,
        )

    async def cancel_workflow(self, workflow_id: str) -> int:
        return await flows.cancel_workflow(self, workflow_id)

    async def read_workflow(self, workflow_id: str) -> WorkflowView | None:
        return await flows.read_workflow(self, workflow_id)

    async def upstream_results(self, message: TaskMessage) -> list[bytes | None]:
        if message.workflow_id is None:
            return []
        return await flows.upstream_results(self, message.queue, message.workflow_id, message.id)

    def workflow_drainer(self, queues: Sequence[str], done_ttl_s: float) -> flows.FlowDrainer:
        return flows.FlowDrainer(self, queues, done_ttl_s)

    # -- the queue's consumer group --------------------------------------------------

    async def group_for(self, queue: str) -> str:
        """The consumer group that serves ``queue``: the one its first worker recorded.

        Tools given no group use it; a group given to this broker that disagrees raises
        :class:`ConfigurationError` (reading another group's pending list as "nothing
        delivered" used to delete running tasks). Nothing recorded yet: ours.
        """
        known = self._groups.get(queue)
        if known is not None:
            return known
        recorded = await self.redis.get(self.keys(queue).group)
        if recorded is None:
            return self.group
        name = text(recorded)
        if self.config.group_given and name != self.config.group:
            raise ConfigurationError(_wrong_group(queue, name, self.config.group))
        self._groups[queue] = name
        return name

    async def groups_for(self, queues: Sequence[str]) -> dict[str, str]:
        """:meth:`group_for` of many queues, the unknown ones read in one pipeline."""
        unknown = [q for q in queues if q not in self._groups]
        if unknown:
            pipe = self.redis.pipeline(transaction=False)
            for queue in unknown:
                pipe.get(self.keys(queue).group)
            for queue, recorded in zip(unknown, await pipe.execute(), strict=True):
                if recorded is not None:
                    name = text(recorded)
                    if self.config.group_given and name != self.config.group:
                        raise ConfigurationError(_wrong_group(queue, name, self.config.group))
                    self._groups[queue] = name
        return {q: self._groups.get(q, self.group) for q in queues}

    # -- worker -----------------------------------------------------------------

    async def prepare(self, queues: Sequence[str], retention: Retention | None = None) -> None:
        """Record (or check) each queue's consumer group and create it on every band.

        A worker given no group takes the one its queues record (they must agree);
        one naming another group is refused with :class:`ConfigurationError`, and so is
        anything Redis refuses for good (a wrong password, an ACL without the commands
        strego needs): retrying those at start would hang the worker.
        """
        try:
            await self._prepare(queues, retention)
        except ConfigurationError:
            raise
        except Exception as exc:
            if is_transient(exc):
                raise
            raise ConfigurationError(
                f"Redis refused to prepare queues {', '.join(queues)}: {exc} (check the "
                "URL's credentials and the user's ACL: docs/security.md)"
            ) from exc

    async def _prepare(self, queues: Sequence[str], retention: Retention | None) -> None:
        if retention is not None:
            self.retention = retention
        await self.redis.sadd(self.global_keys.queues, *queues)
        if not self.config.group_given:
            recorded = {await self.group_for(q) for q in queues} - {self.config.group}
            if len(recorded) > 1:
                raise ConfigurationError(
                    f"queues {', '.join(queues)} are served by different consumer groups "
                    f"({', '.join(sorted(recorded))}): give this worker group=..."
                )
            self._worker_group = recorded.pop() if recorded else self.config.group
        calls = [
            (self.scripts.prepare, self.keys(q).layout(), [self.group, self.consumer])
            for q in queues
        ]
        replies = await self.scripts.run_many(self.redis, calls)
        for queue, reply in zip(queues, replies, strict=True):
            if is_wrong_group(reply):
                raise ConfigurationError(_wrong_group(queue, recorded_group(reply), self.group))
            if isinstance(reply, Exception):
                raise reply
            self._groups[queue] = self.group
        await self._warn_if_evicting()

    async def _warn_if_evicting(self) -> None:
        """Say so when Redis may evict keys: every guarantee assumes it never does."""
        if self._eviction_checked:
            return
        self._eviction_checked = True
        try:
            policy = text((await server_info(self.redis)).get("maxmemory_policy", "noeviction"))
        except Exception:  # INFO may be refused by an ACL: then we cannot tell
            return
        if policy != "noeviction":
            log.warning(
                "Redis maxmemory-policy is %s: it may evict streams, indexes and markers, "
                "losing tasks and breaking strego's guarantees; set it to noeviction",
                policy,
            )

    async def register(self, registration: WorkerRegistration) -> None:
        await self._presence.register(registration)

    async def take_over(self, queue: str) -> int:
        """Hand what this consumer name held (a dead predecessor's entries) to reclaim.

        The instance token (see :meth:`register`) guarantees no live process holds them;
        their delivery counts are kept, so a task that killed the predecessor counts.
        """
        return await self._presence.hand_over(queue, self.consumer, remove=False)

    async def fetch(
        self,
        wants: Sequence[tuple[str, int]],
        *,
        offer: bool = False,
        unblock: bool = False,
        _retrying: bool = False,
    ) -> dict[str, list[Delivery] | None]:
        """Up to ``count`` tasks per queue (one pipeline); None for a paused queue,
        :class:`Held` for one whose queue-wide limit allows nothing now.

        ``offer``: a queue that has nothing registers this consumer for a hand-off of
        ``count`` tasks (see handoff.py); every such fetch first withdraws the earlier
        registration and returns what was handed over meanwhile. ``unblock``: release
        this worker's BLPOP still waiting on the inbox."""
        idle_ttl_ms = int(self.config.block_s * 2000)
        if offer:  # from now on every fetch withdraws first (0: withdraw, don't offer)
            self._handoff_withdraw = 0
        handoff_ttl_ms = self.handoff.registration_ttl_ms
        calls: list[ScriptCall] = []
        for queue, count in wants:
            keys = self.keys(queue)
            limit_keys, limit_args = self.limits.fetch_args(queue)
            calls.append(
                (
                    self.scripts.fetch,
                    [*keys.streams, keys.paused, keys.idle, keys.handoff, *limit_keys],
                    [
                        self.group,
                        self.config.consumer,
                        count,
                        idle_ttl_ms,
                        queue,
                        # Not with queue-wide limits: the fetch script must apply them.
                        count if offer and not limit_keys else self._handoff_withdraw,
                        handoff_ttl_ms,
                        int(unblock),
                        *limit_args,
                    ],
                )
            )
        # Limiter requests ride along (releases; starts and slots taken ahead for the
        # tasks of this fetch): no round trip of their own (see limiter.py).
        riders = self.limits.ride_along(sum(count for _, count in wants))
        try:
            replies = await self.scripts.run_many(self.redis, [*calls, *riders.script_calls])
        except BaseException as exc:
            self.limits.fail_ride_along(riders, exc)
            raise
        self.limits.settle_ride_along(riders, replies[len(calls) :])
        replies = replies[: len(calls)]
        found: dict[str, list[Delivery] | None] = {}
        regroup = [(q, n) for (q, n), r in zip(wants, replies, strict=True) if is_no_group(r)]
        if regroup and not _retrying:
            # The group is gone (Redis lost its data, or someone deleted the stream):
            # recreate it and read again at once rather than after a whole `block`.
            await self.prepare([q for q, _ in regroup])
            found.update(await self.fetch(regroup, offer=offer, _retrying=True))
        for (queue, _), reply in zip(wants, replies, strict=True):
            if is_no_group(reply):
                found.setdefault(queue, [])
            elif isinstance(reply, Exception):
                raise reply
            elif isinstance(reply, list) and len(reply) == 2 and reply[0] == -2:
                found[queue] = Held(int(reply[1]) / 1e6)  # µs; bands are >= 0: unambiguous
            elif isinstance(reply, list) and reply and reply[0] == -3:
                found[queue] = handed_deliveries(queue, reply[1:])  # handed meanwhile
            else:
                found[queue] = None if reply == -1 else deliveries(queue, reply)
        return found

    async def apply(self, outcomes: Sequence[tuple[Delivery, Outcome]]) -> list[str]:
        """Apply outcomes in one pipeline; return task ids whose delivery was superseded.

        A transient error (a failover, OOM, a busy or loading server, a lost connection)
        raises, so the caller keeps the batch and retries it: an outcome is never taken
        for lost because Redis could not take it right now (that released tasks for a
        second run). Only a permanent error drops an outcome (logged).
        """
        minute = int(time.time() // 60)
        calls, call_ids = self._outcome_calls(outcomes, minute)
        replies = await self.scripts.run_many(self.redis, calls)
        lost: list[str] = []
        for reply, ids in zip(replies, call_ids, strict=True):
            if isinstance(reply, Exception):
                if is_transient(reply):
                    raise reply
                # NOGROUP: Redis restarted without its data, so the entry and its group
                # are gone; anything else is a bug or tampering. Either way no retry can
                # land it and it must not block every later outcome.
                log.error("could not record outcome of %s: %s", ", ".join(ids), reply)
                lost.extend(ids)
            elif isinstance(reply, list):
                lost.extend(text(r) for r in reply)
            elif int(reply) == 0:
                lost.extend(ids)
        return lost

    def _outcome_calls(
        self, outcomes: Sequence[tuple[Delivery, Outcome]], minute: int
    ) -> tuple[list[ScriptCall], list[list[str]]]:
        acks: dict[str, list[AckItem]] = {}
        releases: dict[str, list[tuple[Delivery, str]]] = {}
        calls: list[ScriptCall] = []
        call_ids: list[list[str]] = []
        for delivery, outcome in outcomes:
            if isinstance(outcome, Succeeded):
                acks.setdefault(delivery.queue, []).append(
                    AckItem(
                        delivery,
                        outcome.task_id,
                        "c",
                        outcome.explicit_id,
                        outcome.duration_s,
                        outcome.result,
                        outcome.result_ttl_s,
                    )
                )
            elif isinstance(outcome, Cancelled):
                acks.setdefault(delivery.queue, []).append(
                    AckItem(delivery, outcome.task_id, "x", outcome.explicit_id, outcome.duration_s)
                )
            elif isinstance(outcome, Retry):
                calls.append(retry_call(self, delivery, outcome, minute))
                call_ids.append([outcome.message.id])
            elif isinstance(outcome, Dead):
                calls.append(dead_call(self, delivery, outcome, minute))
                call_ids.append([outcome.message.id])
            elif isinstance(outcome, Parked):
                calls.append(park_call(self, delivery, outcome))
                call_ids.append([outcome.task_id])
            elif outcome.counted:
                calls.append(handover_one_call(self, delivery))
                call_ids.append([])  # nothing to report: it was given up either way
            else:
                releases.setdefault(delivery.queue, []).append((delivery, outcome.task_id))
        for queue, items in acks.items():
            calls.append(ack_call(self, queue, items, minute))
            call_ids.append([item.task_id for item in items])
        for queue, pairs_ in releases.items():
            calls.append(release_call(self, queue, pairs_))
            call_ids.append([])
        return calls, call_ids

    async def promote_due(self, queue: str) -> float | None:
        keys = self.keys(queue)
        moved, next_due_ms, now_ms = await self.scripts.promote(
            self.redis,
            keys.layout(),
            [
                _PROMOTE_BATCH,
                keys.channel,
                queue,
                self.retention.dead_max,
                int(self.retention.dead_ttl_s * 1000),
            ],
        )
        if int(moved) >= _PROMOTE_BATCH:
            return 0.0  # more are due right now
        if int(next_due_ms) < 0:
            return None
        return max(0.0, (int(next_due_ms) - int(now_ms)) / 1000)

    async def claim_stale(
        self, queue: str, min_idle_s: float, limit: int, holding: Collection[str] = ()
    ) -> Reclaimed:
        """Reclaim up to ``limit`` idle entries, never those in ``holding`` (the entry ids
        this worker holds on ``queue``); see lua/claim.lua."""
        minute = int(time.time() // 60)
        claimed, cancelled, lost, more = await self.scripts.claim(
            self.redis,
            self.keys(queue).layout(minute // 60),
            [
                self.group,
                self.config.consumer,
                int(min_idle_s * 1000),
                limit,
                queue,
                self.retention.keep_completed,
                self.retention.dead_max,
                int(self.retention.dead_ttl_s * 1000),
                str(minute),
                HANDOVER_CONSUMER,
                *holding,
            ],
        )
        found = [
            Delivery(queue, int(claimed[i]), text(claimed[i + 1]), pairs(claimed[i + 2]),
                     int(claimed[i + 3]))
            for i in range(0, len(claimed), 4)
        ]  # fmt: skip
        return Reclaimed(
            deliveries=found,
            cancelled=[text(t) for t in cancelled],
            lost=[text(t) for t in lost],
            more=bool(int(more)),
        )

    async def renew(self, leases: Sequence[tuple[Delivery, str]]) -> LeaseCheck:
        """Renew leases, each against its fence (see lua/renew.lua); one call per queue."""
        by_queue: dict[str, list[tuple[Delivery, str]]] = {}
        for delivery, task_id in leases:
            by_queue.setdefault(delivery.queue, []).append((delivery, task_id))
        minute = int(time.time() // 60)
        calls: list[ScriptCall] = []
        for queue, items in by_queue.items():
            args: list[str | int] = [
                self.group,
                self.config.consumer,
                queue,
                self.retention.dead_max,
                int(self.retention.dead_ttl_s * 1000),
                str(minute),
            ]
            for delivery, task_id in items:
                args += [delivery.band, delivery.entry_id, delivery.deliveries, task_id]
            calls.append((self.scripts.renew, self.keys(queue).layout(minute // 60), args))
        check = LeaseCheck()
        for (queue, items), reply in zip(
            by_queue.items(), await self.scripts.run_many(self.redis, calls), strict=True
        ):
            if isinstance(reply, Exception):
                raise reply
            by_entry = {d.entry_id: d for d, _ in items}
            for found, into in zip(reply, (check.lost, check.deleted, check.cancel), strict=True):
                into.extend(by_entry[text(e)] for e in found if text(e) in by_entry)
            del queue
        return check

    async def trim_dead(self, queue: str) -> None:
        await self.scripts.trim_dead(
            self.redis,
            self.keys(queue).layout(),
            [self.retention.dead_max, int(self.retention.dead_ttl_s * 1000)],
        )

    # -- presence (see presence.py) -------------------------------------------------

    async def listen(
        self, queues: Sequence[str], on_signal: Callable[[QueueSignal], None]
    ) -> Callable[[], Awaitable[None]]:
        return await self._presence.listen(queues, on_signal)

    async def heartbeat(
        self,
        registration: WorkerRegistration,
        in_flight: int,
        stats: Mapping[str, str] | None = None,
    ) -> None:
        await self._presence.heartbeat(registration, in_flight, stats)

    async def deregister(self, registration: WorkerRegistration, queues: Sequence[str]) -> None:
        await self._presence.deregister(registration, queues)

    async def cleanup_consumers(self, queue: str, idle_s: float) -> int:
        return await self._presence.cleanup_consumers(queue, idle_s)

    async def hand_over(self, queue: str, consumer: str, *, remove: bool) -> int:
        """Hand everything ``consumer`` holds on ``queue`` over for reclaim (counts
        kept); then remove it from the group if asked. Used by Inspector too."""
        return await self._presence.hand_over(queue, consumer, remove=remove)


def _wrong_group(queue: str, recorded: str, given: str) -> str:
    return (
        f"queue {queue!r} is served by consumer group {recorded!r} (recorded in Redis by "
        f"its first worker), not {given!r}: use group={recorded!r}, or leave the group out "
        "to use the recorded one (one consumer group per queue)"
    )
