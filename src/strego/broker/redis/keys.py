"""Every Redis key strego uses, in one place.

All keys of one queue share the hash tag ``{<queue>}``, so they live in one Redis
Cluster slot and every Lua script can touch them atomically.

=================================  ====================================================
key                                holds
=================================  ====================================================
``P:{q}:stream:<band>``            stream of waiting and in-flight tasks, one per
                                   priority band 0-10; consumer group = broker group
``P:{q}:tasks``                    hash task id → state record ``state|band|ref[|x]``
                                   (the O(1) index behind get_task and cancel)
``P:{q}:bodies``                   hash task id → task blob, for tasks not in a stream
                                   (scheduled, retry, dead, recently finished); and
                                   ``<id>\n`` → 1 while a finished record's result is
                                   kept (ids never hold a newline), so an expired
                                   result is told from a None one
``P:{q}:scheduled``                zset task id → due time (ms) of scheduled tasks
``P:{q}:retry``                    zset task id → due time (ms) of tasks awaiting retry
``P:{q}:dead``                     zset task id → failed time (ms); capped by count/age
``P:{q}:finished``                 list of the last ``keep_completed`` finished ids
``P:{q}:stats``                    hash of counters: enqueued, processed, failed,
                                   retried, dead, cancelled
``P:{q}:tp:<hour>``                hash ``<minute>:p|f`` → count, expires after 25 h
``P:{q}:unique:<key>``             task id holding a unique key, for ``unique_ttl``
``P:{q}:processed:<id>``           marker for explicit ids, for ``processed_ttl``
``P:{q}:result:<id>``              a completed task's stored result
                                   (``<serializer>\n<bytes>``), for its ``result_ttl``
``P:{q}:waiters``                  zset task id → lease end (ms): ids some
                                   ``Client.result`` waits for; removed when the task
                                   ends or the lease lapses. Also the name of the pub/sub
                                   channel their outcomes go out on (channels and keys
                                   are separate namespaces), so a script holding the key
                                   knows the channel
``P:{q}:flow:<workflow id>``       hash: the part of a workflow's graph whose tasks
                                   live in this queue (specs, held bodies, arrived
                                   results); expires (see workflows/README in
                                   docs/workflows.md)
``P:{q}:flow:outbox``              stream: finishes of workflow members, written by
                                   the outcome scripts, drained by the queue's workers
                                   (a consumer group); entries deleted once applied.
                                   Lua derives its name from the index key's
``P:{q}:group``                    the consumer group that serves the queue, recorded
                                   by the first worker (one group per queue)
``P:{q}:paused``                   exists while the queue is paused
``P:{q}:idle``                     exists while some worker waits for this queue
``P:{q}:handoff``                  hash consumer → "slots|deadline ms|group": idle
                                   workers a new task is handed to directly; expires
``P:{q}:handoff:<consumer>``       list: that worker's inbox of tasks handed to it
                                   (already delivered to it); expires
``P:{q}:events``                   pub/sub channel: wake-ups, cancel requests
``P:{q}:sync``                     written right before WAIT (``wait_replicas``), so
                                   the WAIT covers this client's writes; expires
``P:{q}:periodic``                  hash schedule name → definition (JSON), the latest
                                   a worker declared (see strego.periodic)
``P:{q}:periodic:next``             zset schedule name → next fire time (ms), the value
                                   the fire script compares and sets; 0: start at the
                                   next tick; absent while paused
``P:{q}:periodic:seen``             hash schedule name → when a worker last declared it
                                   (ms): older than a minute means orphaned
``P:{q}:periodic:last``             hash schedule name → ``<tick ms>|<task id>`` of its
                                   last run
``P:{q}:periodic:paused``           set of paused schedule names
``P:{q}:periodic:log:<name>``       list of the schedule's last 20 runs, newest first
``P:queues``                       set of known queue names
``P:workers``                      zset worker name → last heartbeat (ms)
``P:worker:<name>``                hash describing one live worker; expires
``P:instance:<group>:<name>``      the live process using consumer name ``name``: a
                                   token its heartbeat refreshes, gone ≤ 15 s after it
                                   died (two processes never share a consumer name)
=================================  ====================================================

Pending entries a consumer gives up (removal, a worker's exit, a stable-named worker's
dead predecessor) are handed to the consumer :data:`HANDOVER_CONSUMER`, from which
every worker reclaims them.
"""

from __future__ import annotations

import dataclasses

BANDS = 11  # priorities 0..10, one stream each
HANDOVER_CONSUMER = "strego-handover"  # holds entries given up, until a worker reclaims


@dataclasses.dataclass(frozen=True, slots=True)
class QueueKeys:
    """The keys of one queue."""

    prefix: str
    queue: str

    @property
    def tag(self) -> str:
        return f"{self.prefix}:{{{self.queue}}}"

    def stream(self, band: int) -> str:
        return f"{self.tag}:stream:{band}"

    @property
    def streams(self) -> list[str]:
        return [self.stream(band) for band in range(BANDS)]

    @property
    def index(self) -> str:
        return f"{self.tag}:tasks"

    @property
    def bodies(self) -> str:
        return f"{self.tag}:bodies"

    @property
    def scheduled(self) -> str:
        return f"{self.tag}:scheduled"

    @property
    def retry(self) -> str:
        return f"{self.tag}:retry"

    @property
    def dead(self) -> str:
        return f"{self.tag}:dead"

    @property
    def finished(self) -> str:
        return f"{self.tag}:finished"

    @property
    def stats(self) -> str:
        return f"{self.tag}:stats"

    def throughput(self, hour: int) -> str:
        return f"{self.tag}:tp:{hour}"

    def unique(self, unique_key: str) -> str:
        return f"{self.tag}:unique:{unique_key}"

    def processed(self, task_id: str) -> str:
        return f"{self.tag}:processed:{task_id}"

    def result(self, task_id: str) -> str:
        return f"{self.tag}:result:{task_id}"

    @property
    def waiters(self) -> str:
        """The zset of awaited task ids, and the channel their outcomes go out on."""
        return f"{self.tag}:waiters"

    @property
    def group(self) -> str:
        return f"{self.tag}:group"

    @property
    def periodic(self) -> str:
        return f"{self.tag}:periodic"

    @property
    def periodic_next(self) -> str:
        return f"{self.tag}:periodic:next"

    @property
    def periodic_seen(self) -> str:
        return f"{self.tag}:periodic:seen"

    @property
    def periodic_last(self) -> str:
        return f"{self.tag}:periodic:last"

    @property
    def periodic_paused(self) -> str:
        return f"{self.tag}:periodic:paused"

    def periodic_log(self, name: str) -> str:
        return f"{self.tag}:periodic:log:{name}"

    def periodic_keys(self, names: list[str]) -> list[str]:
        """Every periodic key of the queue, given its schedule names."""
        fixed = [
            self.periodic,
            self.periodic_next,
            self.periodic_seen,
            self.periodic_last,
            self.periodic_paused,
        ]
        return [*fixed, *(self.periodic_log(n) for n in names)]

    def flow(self, workflow_id: str) -> str:
        """The part of workflow ``workflow_id`` that lives in this queue."""
        return f"{self.tag}:flow:{workflow_id}"

    @property
    def flow_outbox(self) -> str:
        """Finishes of workflow members to apply (``flow_done`` in lua/_lib.lua derives
        this name from the index key: keep the two in step)."""
        return f"{self.tag}:flow:outbox"

    def layout(self, hour: int | None = None) -> list[str]:
        """The keys of the scripts that take the whole queue, in the order of ``Q`` in
        ``lua/_lib.lua``; ``hour`` adds that hour's throughput counters."""
        return [
            *self.streams,
            self.index,
            self.bodies,
            self.scheduled,
            self.retry,
            self.dead,
            self.finished,
            self.stats,
            self.paused,
            self.idle,
            self.group,
            self.throughput(hour) if hour is not None else self.tag,
            self.waiters,
        ]

    @property
    def paused(self) -> str:
        return f"{self.tag}:paused"

    @property
    def idle(self) -> str:
        return f"{self.tag}:idle"

    @property
    def handoff(self) -> str:
        return f"{self.tag}:handoff"

    def inbox(self, consumer: str) -> str:
        """Lua builds this name from :attr:`handoff` (fetch.lua, hand_off in _lib.lua)."""
        return f"{self.handoff}:{consumer}"

    @property
    def channel(self) -> str:
        return f"{self.tag}:events"

    @property
    def sync(self) -> str:
        return f"{self.tag}:sync"


@dataclasses.dataclass(frozen=True, slots=True)
class GlobalKeys:
    """Keys that span queues (each its own slot in a cluster; never used in scripts)."""

    prefix: str

    @property
    def queues(self) -> str:
        return f"{self.prefix}:queues"

    @property
    def workers(self) -> str:
        return f"{self.prefix}:workers"

    def worker(self, name: str) -> str:
        return f"{self.prefix}:worker:{name}"

    def instance(self, group: str, consumer: str) -> str:
        return f"{self.prefix}:instance:{group}:{consumer}"


@dataclasses.dataclass(frozen=True, slots=True)
class LimitKeys:
    """The keys of one global limiter (docs/limits.md), all in one Cluster slot.

    A limit attached to task types lives in its own slot ``P:{lim:<name>}``; a
    queue-wide limit lives in its queue's slot (``P:{<queue>}:lim:<name>``) so the fetch
    script can check it. Per limiter key ``<k>`` (``''`` without a key function):

    ==========================  ==========================================================
    ``<base>:s:<k>``            hash: GCRA arrival time, booking pointer, mean hold time
    ``<base>:h:<k>``            zset: concurrency slot holder → lease end (ms)
    ``<base>:a:<k>``            hash: concurrency slot holder → acquired at (ms)
    ``<base>:p:<k>``            zset: parked task → time it was told to come back (ms)
    ``<base>:n``                hash: counters (granted, held)
    ``<base>:w``                list: recent waits ``<at ms>:<wait ms>:<key>``, capped
    ``<base>:k``                zset: limiter key → last use (ms), capped
    ``<base>:meta``             hash: what the workers declared (kind, limit, per, burst)
    ``P:limits``                set of ``<queue or ''>\\t<name>`` declared (global)
    ==========================  ==========================================================
    """

    prefix: str
    name: str
    queue: str | None = None  # a queue-wide limit: in that queue's slot

    @property
    def base(self) -> str:
        if self.queue is None:
            return f"{self.prefix}:{{lim:{self.name}}}"
        return f"{self.prefix}:{{{self.queue}}}:lim:{self.name}"

    def per_key(self, key: str) -> list[str]:
        """The 7 keys of one limiter key, in the order of ``LK`` in lua/_limits.lua."""
        b = self.base
        return [f"{b}:s:{key}", f"{b}:h:{key}", f"{b}:a:{key}", f"{b}:p:{key}",
                f"{b}:n", f"{b}:w", f"{b}:k"]  # fmt: skip

    @property
    def counters(self) -> str:
        return f"{self.base}:n"

    @property
    def waits(self) -> str:
        return f"{self.base}:w"

    @property
    def registry(self) -> str:
        return f"{self.base}:k"

    @property
    def meta(self) -> str:
        return f"{self.base}:meta"

    @staticmethod
    def declared(prefix: str) -> str:
        return f"{prefix}:limits"
