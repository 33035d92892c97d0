"""Applying workflow outbox records: every worker drains its queues' outboxes.

An outbox entry says "member T of workflow W finished (c/d/x)" or "open W's part in
queue Q" (``o``). The worker that reads it (a consumer group per outbox, so each
entry goes to one worker) settles it in the member's queue (``flow_settle``: who
waits, with what result), applies the arrivals in each dependent's queue
(``flow_arrive``, possibly on another cluster master), then acknowledges and deletes
the entry. Every step is idempotent, so a worker killed anywhere in between only
delays the release: its entry stays pending and another worker reclaims it
(XAUTOCLAIM after ``claim_stale_after``) and applies it again, changing nothing that
already happened. Releases are exactly once because ``flow_arrive`` marks them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from redis.exceptions import ResponseError

from strego.broker.redis.calls import pairs
from strego.broker.redis.connection import text
from strego.broker.redis.flows.scripts import flow_scripts
from strego.broker.redis.flows.store import open_call
from strego.broker.redis.scripts import ScriptCall

if TYPE_CHECKING:
    from strego.broker.redis.broker import RedisBroker

__all__ = ["FlowDrainer"]

log = logging.getLogger("strego")
_BATCH = 200
_PRUNE_EVERY_S = 600.0  # look for consumers left by gone workers this often
_PRUNE_IDLE_MS = 3_600_000  # ...that read nothing for this long (and hold nothing)


class FlowDrainer:
    """Drains the outboxes of ``queues`` until cancelled (one loop per queue)."""

    def __init__(self, broker: RedisBroker, queues: Sequence[str], done_ttl_s: float) -> None:
        self._broker = broker
        self._queues = list(queues)
        timing = broker.timing
        self._min_idle_ms = int(timing.claim_stale_after_s * 1000)
        self._claim_every_s = timing.claim_check_interval_s
        self._block_ms = max(1, int(min(timing.block_s, broker.config.socket_timeout_s / 2) * 1000))
        # A finished part of a graph outlives its results a little: an entry being
        # re-applied after a reclaim must still find who waits for its task.
        slack_s = 2 * (timing.claim_stale_after_s + timing.claim_check_interval_s)
        self._done_ttl_ms = int(max(done_ttl_s, slack_s, 1.0) * 1000)

    async def run(self) -> None:
        await asyncio.gather(*(self._loop(queue) for queue in self._queues))

    async def _loop(self, queue: str) -> None:
        outbox = self._broker.keys(queue).flow_outbox
        delay = 0.05
        group: str | None = None
        next_claim = 0.0
        next_prune = time.monotonic() + _PRUNE_EVERY_S
        while True:
            try:
                if group is None:
                    group = await self._broker.group_for(queue)
                    await _ensure_group(self._broker, outbox, group)
                if time.monotonic() >= next_claim:
                    next_claim = time.monotonic() + self._claim_every_s
                    await self._reclaim(queue, outbox, group)
                if time.monotonic() >= next_prune:
                    next_prune = time.monotonic() + _PRUNE_EVERY_S
                    await self.prune(outbox, group)
                entries = await self._read(outbox, group)
                if entries:
                    await self.apply(queue, outbox, group, entries)
                delay = 0.05
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis away or failing over: keep trying
                if isinstance(exc, ResponseError) and "NOGROUP" in str(exc):
                    group = None
                log.warning("workflow outbox of queue %s: %s (retrying)", queue, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def prune(self, outbox: str, group: str, idle_ms: int = _PRUNE_IDLE_MS) -> int:
        """Remove the outbox group's consumers idle over ``idle_ms`` holding nothing
        (bounded memory: each worker process that ever drained the outbox left one)."""
        infos = await self._broker.redis.xinfo_consumers(outbox, group)
        idle = [text(c["name"]) for c in infos if int(c.get("idle", 0)) >= idle_ms]
        if not idle:
            return 0
        removed = await flow_scripts().prune(
            self._broker.redis, [outbox], [group, self._broker.consumer, idle_ms, *idle]
        )
        return int(removed)

    async def _read(self, outbox: str, group: str) -> list[tuple[bytes, dict[bytes, bytes]]]:
        reply = await self._broker.redis.xreadgroup(
            group, self._broker.consumer, {outbox: ">"}, count=_BATCH, block=self._block_ms
        )
        if not reply:
            return []
        return [(eid, pairs(fields)) for eid, fields in reply[0][1] if fields is not None]

    async def _reclaim(self, queue: str, outbox: str, group: str) -> None:
        """Entries a dead worker took and never acknowledged: apply them again."""
        cursor: Any = "0-0"
        while True:
            reply = await self._broker.redis.xautoclaim(
                outbox, group, self._broker.consumer, self._min_idle_ms, cursor, count=_BATCH
            )
            cursor, claimed = reply[0], reply[1]
            entries = [(eid, pairs(f)) for eid, f in claimed if f is not None]
            deleted = [eid for eid, f in claimed if f is None]
            if deleted:
                await self._broker.redis.xack(outbox, group, *deleted)
            if entries:
                await self.apply(queue, outbox, group, entries)
            if text(cursor) == "0-0":
                return

    async def apply(
        self,
        queue: str,
        outbox: str,
        group: str,
        entries: Sequence[tuple[bytes, dict[bytes, bytes]]],
    ) -> None:
        """Apply entries of ``queue``'s outbox, then acknowledge and delete them."""
        broker = self._broker
        opens: list[ScriptCall] = []
        finished: dict[str, list[tuple[str, str]]] = {}  # workflow → (task id, letter)
        for _eid, fields in entries:
            wf = text(fields.get(b"w", b""))
            letter = text(fields.get(b"s", b""))
            if letter == "o":
                opens.append(open_call(broker, text(fields.get(b"q", b"")), wf))
            elif letter in ("c", "d", "x"):
                finished.setdefault(wf, []).append((text(fields.get(b"t", b"")), letter))
        arrivals = await self._settle(queue, finished)
        calls = opens + [self._arrive_call(q, wf, items) for (q, wf), items in arrivals.items()]
        _raise_any(await broker.scripts.run_many(broker.redis, calls))
        ids = [eid for eid, _ in entries]
        pipe = broker.redis.pipeline(transaction=False)
        pipe.xack(outbox, group, *ids)
        pipe.xdel(outbox, *ids)
        await pipe.execute()

    async def _settle(
        self, queue: str, finished: dict[str, list[tuple[str, str]]]
    ) -> dict[tuple[str, str], list[Any]]:
        """Settle finished members (one call per workflow); their arrivals, grouped by
        (dependent's queue, workflow): dependent, position, letter, stored result."""
        keys = self._broker.keys(queue)
        settles: list[ScriptCall] = []
        for wf, items in finished.items():
            args: list[str | int] = [self._done_ttl_ms]
            for tid, letter in items:
                args += [tid, letter]
            result_keys = [keys.result(tid) for tid, _ in items]
            settles.append((flow_scripts().settle, [keys.flow(wf), *result_keys], args))
        replies = await self._broker.scripts.run_many(self._broker.redis, settles)
        _raise_any(replies)
        arrivals: dict[tuple[str, str], list[Any]] = {}
        for (wf, items), reply in zip(finished.items(), replies, strict=True):
            for n, (_tid, letter) in enumerate(items):
                downstream, stored = reply[2 * n], reply[2 * n + 1]
                if not downstream:
                    continue
                for dependent, dep_queue, position in json.loads(text(downstream)):
                    arrivals.setdefault((dep_queue, wf), []).extend(
                        [dependent, position, letter, stored if letter == "c" else b""]
                    )
        return arrivals

    def _arrive_call(self, queue: str, workflow_id: str, items: list[Any]) -> ScriptCall:
        keys = self._broker.keys(queue)
        return (
            flow_scripts().arrive,
            [*keys.layout(), keys.flow(workflow_id)],
            [keys.channel, self._broker.retention.keep_completed, *items],
        )


def _raise_any(replies: Sequence[Any]) -> None:
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply


async def _ensure_group(broker: RedisBroker, outbox: str, group: str) -> None:
    with contextlib.suppress(ResponseError):  # BUSYGROUP: it exists
        await broker.redis.xgroup_create(outbox, group, id="0", mkstream=True)
