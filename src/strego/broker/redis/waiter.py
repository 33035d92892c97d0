"""Waiting for task results: one pub/sub connection and batched lookups per broker.

Every ``Client.result`` on a broker goes through its one :class:`ResultWaiter`:

* It subscribes (once per queue) to the queue's waiters channel, then runs
  ``watch.lua``, which atomically reports a task that already ended or registers a
  lease for it in the queue's waiters zset. The scripts that end a task publish on the
  channel only when the task has a registration (``notify_waiters`` in ``_lib.lua``),
  so nothing is published for tasks nobody waits for.
* Lookups of concurrent waiters are merged into one pipeline on one connection: a
  thousand waiters cost the pub/sub connection and a few round trips, never a
  connection or a polling loop each.
* Registrations are leases, renewed in one batch every ``_RENEW_S`` while waiters
  remain. The renewal also re-reads their state, so a deleted task, or a message lost
  while the subscription was down, still ends its wait; lapsed leases are trimmed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pydantic_core
from redis.exceptions import ConnectionError as RedisConnectionError

from strego.broker.redis.calls import watch_call
from strego.broker.redis.connection import TRANSIENT_ERRORS, text, with_retries
from strego.broker.redis.topology import open_pubsub
from strego.errors import ResultTimeoutError, TaskNotFoundError
from strego.results import Finished
from strego.task import TaskState

if TYPE_CHECKING:
    from strego.broker.redis.broker import RedisBroker

__all__ = ["ResultWaiter"]

log = logging.getLogger("strego")

_LEASE_MS = 60_000  # a registration outlives a waiter that died by at most this
_RENEW_S = 20.0  # renew well inside the lease
_CHUNK = 500  # task ids per watch.lua call
_SILENCE_S = 30.0  # PING a subscription silent this long; reconnect if no answer
_ENDED = {"c": TaskState.COMPLETED, "v": TaskState.COMPLETED, "d": TaskState.DEAD,
          "x": TaskState.CANCELLED}  # fmt: skip
# What a lookup found for one task id: a Finished, or one of these.
_WAITING, _UNKNOWN = "waiting", "unknown"
Found = Finished | str


@dataclasses.dataclass(slots=True)
class _Watch:
    """The local waiters of one task id and the queues it is registered in."""

    futures: set[asyncio.Future[Finished | None]] = dataclasses.field(default_factory=set)
    queues: set[str] = dataclasses.field(default_factory=set)

    def resolve(self, ended: Finished | None) -> None:
        """None: the task is gone (deleted or expired) — its waiters raise not found."""
        for future in self.futures:
            if not future.done():
                future.set_result(ended)


@dataclasses.dataclass(slots=True)
class _Lookup:
    queue: str
    task_ids: list[str]
    lease_ms: int
    future: asyncio.Future[list[tuple[str, bytes]]]


class ResultWaiter:
    """All result waits of one broker (see the module docstring). Lives on one loop."""

    def __init__(self, broker: RedisBroker) -> None:
        self._broker = broker
        self._watches: dict[str, _Watch] = {}
        self._channels: dict[bytes, str] = {}  # channel → queue, subscribed or on the way
        self._confirmed: dict[bytes, asyncio.Future[None]] = {}
        self._pubsub: Any = None
        self._queued: list[_Lookup] = []
        self._known: asyncio.Task[list[str]] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._reader: asyncio.Task[None] | None = None
        self._renewer: asyncio.Task[None] | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._closed = False

    # -- waiting ------------------------------------------------------------------

    async def wait(self, task_id: str, timeout_s: float | None) -> Finished:
        """How ``task_id`` ended. Raises TaskNotFoundError (unknown, deleted or its
        result expired: at once) or ResultTimeoutError when it has not finished within
        ``timeout_s`` (0: look once). The timeout bounds the wait for the task, not the
        lookup, which the broker's retries bound."""
        if self._closed:
            raise RuntimeError("the broker is closed")
        loop = asyncio.get_running_loop()
        deadline = None if timeout_s is None else loop.time() + timeout_s
        future: asyncio.Future[Finished | None] = loop.create_future()
        watch = self._watches.setdefault(task_id, _Watch())
        watch.futures.add(future)  # before registering: a quick notification finds it
        try:
            found = await self._find(task_id, watch)
            if isinstance(found, Finished):
                return found
            if found == _UNKNOWN:
                raise TaskNotFoundError(task_id)
            if not future.done():
                try:
                    async with asyncio.timeout_at(deadline):
                        await asyncio.shield(future)
                except TimeoutError as exc:
                    if not future.done():
                        raise ResultTimeoutError(task_id, timeout_s or 0.0) from exc
            ended = future.result()
            if ended is None:
                raise TaskNotFoundError(task_id)
            return ended
        finally:
            watch.futures.discard(future)
            if not watch.futures and self._watches.get(task_id) is watch:
                del self._watches[task_id]

    async def _find(self, task_id: str, watch: _Watch) -> Found:
        """Look the task up in every known queue (and in queues created since the names
        were read, before saying it is unknown), registering where it is not done."""
        queues = await self._queue_names(refresh=False)
        found = await self._register(task_id, queues, watch)
        if found == _UNKNOWN:
            fresh = await self._queue_names(refresh=True)
            found = await self._register(task_id, [q for q in fresh if q not in queues], watch)
        return found

    async def _register(self, task_id: str, queues: Sequence[str], watch: _Watch) -> Found:
        """Look the task up in ``queues``, registering a lease where it is not done."""
        if not queues:
            return _UNKNOWN
        await self._subscribe(queues)
        replies = await asyncio.gather(*(self._look(q, [task_id], _LEASE_MS) for q in queues))
        found: Found = _UNKNOWN
        for queue, reply in zip(queues, replies, strict=True):
            state = _parse(task_id, *reply[0])
            if isinstance(state, Finished):
                return state
            if state == _WAITING:
                watch.queues.add(queue)
                found = _WAITING
        return found

    # -- lookups, batched ---------------------------------------------------------------

    async def _look(
        self, queue: str, task_ids: list[str], lease_ms: int
    ) -> list[tuple[str, bytes]]:
        """watch.lua's (code, data) per task id; merged with every other lookup queued
        before the batch goes out (one pipeline, one connection)."""
        future: asyncio.Future[list[tuple[str, bytes]]] = asyncio.get_running_loop().create_future()
        self._queued.append(_Lookup(queue, task_ids, lease_ms, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="strego-result-lookups")
        return await future

    async def _flush(self) -> None:
        while self._queued:
            batch, self._queued = self._queued, []
            groups: dict[tuple[str, int], list[_Lookup]] = {}
            for lookup in batch:
                groups.setdefault((lookup.queue, lookup.lease_ms), []).append(lookup)
            try:
                replies = await with_retries(
                    "result lookup",
                    lambda groups=groups: self._run(groups),  # type: ignore[misc]
                    attempts=self._broker.config.enqueue_attempts,
                )
            except Exception as exc:
                for lookup in batch:
                    if not lookup.future.done():
                        lookup.future.set_exception(exc)
                continue
            for lookups, flat in zip(groups.values(), replies, strict=True):
                pairs = [(text(flat[i]), _bytes(flat[i + 1])) for i in range(0, len(flat), 2)]
                for lookup in lookups:
                    n = len(lookup.task_ids)
                    if not lookup.future.done():
                        lookup.future.set_result(pairs[:n])
                    pairs = pairs[n:]

    async def _run(self, groups: dict[tuple[str, int], list[_Lookup]]) -> list[list[Any]]:
        """One pipeline for every group; the flat watch.lua reply of each."""
        calls, sizes = [], []
        for (queue, lease_ms), lookups in groups.items():
            ids = [task_id for lookup in lookups for task_id in lookup.task_ids]
            chunks = [ids[i : i + _CHUNK] for i in range(0, len(ids), _CHUNK)]
            calls += [watch_call(self._broker, queue, chunk, lease_ms) for chunk in chunks]
            sizes.append(len(chunks))
        replies = await self._broker.scripts.run_many(self._broker.redis, calls)
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        out, at = [], 0
        for size in sizes:
            out.append([item for reply in replies[at : at + size] for item in reply])
            at += size
        return out

    async def _queue_names(self, *, refresh: bool) -> list[str]:
        """The known queues, read once and shared by concurrent callers."""
        if self._known is None or (refresh and self._known.done()):
            self._known = asyncio.create_task(self._broker.known_queues())
        try:
            return list(await asyncio.shield(self._known))
        except Exception:
            self._known = None
            raise

    # -- the subscription -----------------------------------------------------------------

    async def _subscribe(self, queues: Sequence[str]) -> None:
        """Subscribe to the queues' waiters channels; return once Redis confirmed."""
        channels = {self._broker.keys(q).waiters.encode(): q for q in queues}
        new = [c for c in channels if c not in self._channels]
        if new:
            loop = asyncio.get_running_loop()
            for channel in new:
                self._channels[channel] = channels[channel]
                self._confirmed[channel] = loop.create_future()
            await self._send_subscribe(new)
        await asyncio.gather(*(asyncio.shield(self._confirmed[c]) for c in channels))

    async def _send_subscribe(self, channels: list[bytes]) -> None:
        if self._reader is None:  # the reader connects and subscribes to every channel
            self._reader = asyncio.create_task(self._read(), name="strego-result-waiter")
            self._renewer = asyncio.create_task(self._renew(), name="strego-result-leases")
        elif self._pubsub is not None:  # else the reader is reconnecting: it subscribes
            with contextlib.suppress(*TRANSIENT_ERRORS):  # the reader will notice too
                await self._pubsub.subscribe(*channels)

    async def _read(self) -> None:
        delay = 0.05
        clock = asyncio.get_running_loop().time
        heard, pinged = clock(), False
        while True:
            try:
                if self._pubsub is None:
                    await self._reconnect()
                    delay, heard, pinged = 0.05, clock(), False
                message = await self._pubsub.get_message(timeout=1.0)
                if message is not None:
                    heard, pinged = clock(), False
                    self._on_message(message)
                elif clock() - heard > _SILENCE_S + self._broker.config.socket_timeout_s:
                    raise RedisConnectionError("result subscription silent: no reply to PING")
                elif clock() - heard > _SILENCE_S and not pinged:
                    await self._pubsub.ping()
                    pinged = True
            except TRANSIENT_ERRORS as exc:
                log.warning("result subscription lost, resubscribing (%s)", exc)
                await _close(self._pubsub)
                self._pubsub = None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def _reconnect(self) -> None:
        """Subscribe (again); once confirmed, re-read every watched task: anything
        published while the subscription was down was lost."""
        loop = asyncio.get_running_loop()
        for channel in self._channels:
            if self._confirmed[channel].done():
                self._confirmed[channel] = loop.create_future()
        # Set before subscribing: a channel added meanwhile subscribes on it too.
        self._pubsub = open_pubsub(self._broker.redis)
        await self._pubsub.subscribe(*self._channels)
        confirmed = [asyncio.shield(f) for f in self._confirmed.values()]
        self._spawn(self._after(asyncio.gather(*confirmed), self._recheck(_LEASE_MS)))

    def _on_message(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        channel = message.get("channel")
        if kind == "subscribe" and channel in self._confirmed:
            if not self._confirmed[channel].done():
                self._confirmed[channel].set_result(None)
            return
        queue = self._channels.get(channel) if isinstance(channel, bytes) else None
        if kind != "message" or queue is None:
            return
        data = _bytes(message["data"])
        head, _, stored = data.partition(b"\n")
        letter, _, raw_id = head.partition(b":")
        task_id = raw_id.decode(errors="replace")
        watch = self._watches.get(task_id)
        if watch is None:
            return  # another process's waiter
        if letter == b"c" or (letter == b"v" and stored):
            value = stored if letter == b"v" else None
            watch.resolve(Finished(task_id=task_id, state=TaskState.COMPLETED, stored=value))
        else:  # dead, cancelled, a large result, deleted: read how it ended
            self._spawn(self._settle(task_id, [queue], 0))

    # -- renewal and re-reads ---------------------------------------------------------------

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(_RENEW_S)
            try:
                await self._recheck(_LEASE_MS)
            except Exception as exc:  # Redis away: the next round tries again
                log.warning("could not renew result waits (%s)", exc)

    async def _recheck(self, lease_ms: int) -> None:
        """Renew every registration of this process and settle tasks that ended."""
        by_queue: dict[str, list[str]] = {}
        for task_id, watch in self._watches.items():
            for queue in watch.queues:
                by_queue.setdefault(queue, []).append(task_id)
        await asyncio.gather(*(self._settle_many(ids, q, lease_ms) for q, ids in by_queue.items()))

    async def _settle(self, task_id: str, queues: list[str], lease_ms: int) -> None:
        for queue in queues:
            await self._settle_many([task_id], queue, lease_ms)

    async def _settle_many(self, task_ids: list[str], queue: str, lease_ms: int) -> None:
        replies = await self._look(queue, task_ids, lease_ms)
        for task_id, (code, data) in zip(task_ids, replies, strict=True):
            watch = self._watches.get(task_id)
            if watch is None:
                continue
            state = _parse(task_id, code, data)
            if isinstance(state, Finished):
                watch.resolve(state)
            elif state == _UNKNOWN:
                watch.queues.discard(queue)
                if not watch.queues:
                    watch.resolve(None)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _after(first: Any, then: Any) -> None:
        try:
            await first
        except BaseException:
            then.close()
            raise
        await then

    async def aclose(self) -> None:
        """Stop listening; waiters still waiting raise ``RuntimeError``."""
        self._closed = True
        tasks = [t for t in (self._reader, self._renewer, self._flusher) if t is not None]
        for task in [*tasks, *self._tasks]:
            task.cancel()
        await asyncio.gather(*tasks, *self._tasks, return_exceptions=True)
        for watch in self._watches.values():
            for future in watch.futures:
                if not future.done():
                    future.set_exception(RuntimeError("the broker was closed while waiting"))
        await _close(self._pubsub)
        self._pubsub = None


def _parse(task_id: str, code: str, data: bytes) -> Found:
    """A watch.lua reply for one task: Finished, _WAITING or _UNKNOWN."""
    state = _ENDED.get(code)
    if state is None:
        return _WAITING if code == "w" else _UNKNOWN
    if code == "v":
        return Finished(task_id=task_id, state=state, stored=data)
    if code == "c":
        return Finished(task_id=task_id, state=state)
    header = _header(data)
    reason = header.get("dr")
    error = header.get("e")
    default = "cancelled" if state is TaskState.CANCELLED else "unknown"
    return Finished(
        task_id=task_id,
        state=state,
        reason=reason if isinstance(reason, str) and reason else default,
        error=error if isinstance(error, str) else None,
    )


def _header(line: bytes) -> dict[str, Any]:
    try:
        header = pydantic_core.from_json(line)
    except ValueError:
        return {}
    return header if isinstance(header, dict) else {}


def _bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


async def _close(pubsub: Any) -> None:
    if pubsub is not None:
        with contextlib.suppress(Exception):  # closing a broken connection may fail
            await pubsub.aclose()
