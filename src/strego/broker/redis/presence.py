"""Worker presence: event subscription, heartbeats, registry, the hold on a consumer
name, and handing over what a consumer holds (its removal, a dead predecessor's)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from strego.broker.base import QueueSignal, SignalKind, WorkerRegistration
from strego.broker.redis.connection import TRANSIENT_ERRORS, text
from strego.broker.redis.instance import InstanceToken
from strego.broker.redis.keys import HANDOVER_CONSUMER
from strego.broker.redis.topology import open_pubsub

if TYPE_CHECKING:
    from strego.broker.redis.broker import RedisBroker

__all__ = ["Presence"]

log = logging.getLogger("strego")
_HEARTBEAT_TTL_S = 60
_SIGNALS = {kind.value: kind for kind in SignalKind}


class Presence:
    """The parts of a worker's life that are not about tasks (RedisBroker delegates)."""

    def __init__(self, broker: RedisBroker) -> None:
        self._broker = broker
        self._redis = broker.redis
        self._config = broker.config
        self._global_keys = broker.global_keys
        self._instance: InstanceToken | None = None

    async def listen(
        self, queues: Sequence[str], on_signal: Callable[[QueueSignal], None]
    ) -> Callable[[], Awaitable[None]]:
        """Subscribe to the queues' event channels; the subscription is live on return.

        A message published while the subscription is down (Redis restart) is lost, so
        after every resubscribe each queue gets a synthetic wake-up: look again.
        """
        channels = {self._broker.keys(q).channel.encode(): q for q in queues}
        pubsub = open_pubsub(self._redis)
        await pubsub.subscribe(*channels)
        task = asyncio.create_task(self._listen(pubsub, channels, on_signal), name="strego-listen")

        async def stop() -> None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

        return stop

    async def _listen(
        self, pubsub: Any, channels: dict[bytes, str], on_signal: Callable[[QueueSignal], None]
    ) -> None:
        delay = 0.05
        clock = asyncio.get_running_loop().time
        heard, pinged = clock(), False  # last time anything arrived; PING outstanding
        try:
            while True:
                try:
                    if pubsub is None:
                        pubsub = open_pubsub(self._redis)
                        await pubsub.subscribe(*channels)
                        for queue in channels.values():
                            on_signal(QueueSignal(queue, SignalKind.WORK))
                            on_signal(QueueSignal(queue, SignalKind.RECLAIM))
                        delay = 0.05
                        heard, pinged = clock(), False
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    # A half-open connection (peer gone, no RST) is silent, not broken:
                    # nothing would ever raise and every wake-up would be lost until TCP
                    # gives up (minutes to hours). So after `block` seconds of silence,
                    # PING, and resubscribe if no reply comes (found by tests/faults).
                    if message is not None:
                        heard, pinged = clock(), False
                    elif clock() - heard > self._config.block_s + self._config.socket_timeout_s:
                        raise RedisConnectionError("event subscription silent: no reply to PING")
                    elif clock() - heard > self._config.block_s and not pinged:
                        await pubsub.ping()
                        pinged = True
                except TRANSIENT_ERRORS as exc:
                    log.warning("event subscription lost, resubscribing (%s)", exc)
                    await _close_pubsub(pubsub)
                    pubsub = None
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 2.0)
                    continue
                if message is not None and message.get("type") == "message":
                    target = channels.get(message["channel"])
                    kind, _, value = text(message["data"]).partition(":")
                    if target is not None and kind in _SIGNALS:
                        on_signal(QueueSignal(target, _SIGNALS[kind], value))
        finally:
            if pubsub is not None:
                await asyncio.shield(_close_pubsub(pubsub))

    async def register(self, registration: WorkerRegistration) -> None:
        """Hold the consumer name for this process (see instance.py) before any work."""
        token = InstanceToken(self._redis, self._broker.scripts, self._instance_key(), registration)
        await token.acquire()
        self._instance = token

    def _instance_key(self) -> str:
        return self._global_keys.instance(self._broker.group, self._config.consumer)

    async def heartbeat(
        self,
        registration: WorkerRegistration,
        in_flight: int,
        stats: Mapping[str, str] | None = None,
    ) -> None:
        """Refresh this worker's description and registry entry. ``stats`` are the
        worker's counters (``processed``, ``failed``, ``types``: see worker/stats.py),
        bounded in size by the worker; Inspector.workers() reads them back."""
        if self._instance is not None:
            await self._instance.refresh()
        # Redis's clock, not ours: with local clocks, a worker running more than the TTL
        # behind the others was pruned from the registry by their heartbeats and
        # vanished from Inspector.workers() (found by tests/faults/test_clock_skew.py).
        now_ms = await self._now_ms()
        key = self._global_keys.worker(registration.name)
        pipe = self._redis.pipeline(transaction=False)
        pipe.hset(
            key,
            mapping={
                "name": registration.name,
                "host": registration.host,
                "pid": registration.pid,
                "queues": ",".join(registration.queues),
                "concurrency": registration.concurrency,
                "in_flight": in_flight,
                "started_ms": registration.started_ms,
                "heartbeat_ms": now_ms,
                **(stats or {}),
            },
        )
        pipe.expire(key, _HEARTBEAT_TTL_S)
        pipe.zadd(self._global_keys.workers, {registration.name: now_ms})
        # Drop registry entries of workers whose hash expired (crashed long ago).
        pipe.zremrangebyscore(self._global_keys.workers, 0, now_ms - _HEARTBEAT_TTL_S * 1000)
        await pipe.execute()

    async def _now_ms(self) -> int:
        seconds, micros = await self._redis.time()
        return int(seconds) * 1000 + int(micros) // 1000

    async def deregister(self, registration: WorkerRegistration, queues: Sequence[str]) -> None:
        """Forget this worker: hand over anything its consumer still holds (an outcome
        that could not land), remove the consumer, release the consumer name."""
        await self._redis.delete(self._global_keys.worker(registration.name))
        await self._redis.zrem(self._global_keys.workers, registration.name)
        for queue in queues:
            await self.hand_over(queue, self._config.consumer, remove=True)
        if self._instance is not None:
            await self._instance.release()
            self._instance = None

    async def live_workers(self) -> set[str]:
        """Consumer names whose worker sent a heartbeat within its ttl."""
        now_ms = await self._now_ms()
        names = await self._redis.zrangebyscore(
            self._global_keys.workers, now_ms - _HEARTBEAT_TTL_S * 1000, "+inf"
        )
        return {text(n) for n in names}

    async def cleanup_consumers(self, queue: str, idle_s: float) -> int:
        """Remove consumers of dead workers idle longer than ``idle_s``.

        A consumer is only removed when no live worker uses its name (the heartbeat
        registry says so): on Redis 7.0 an empty XREADGROUP does not refresh a
        consumer's idle time, so live workers on quiet queues look idle. What a removed
        consumer holds is handed over first, in the same script as its removal, so a
        fetch landing between our look and the removal cannot strand an entry.
        """
        live = await self.live_workers()
        group = await self._broker.group_for(queue)
        idle: dict[str, float] = {}
        for stream in self._broker.keys(queue).streams:
            try:
                consumers = await self._redis.xinfo_consumers(stream, group)
            except ResponseError:
                continue
            for consumer in consumers:
                name = text(consumer["name"])
                idle[name] = min(idle.get(name, float("inf")), int(consumer["idle"]) / 1000)
        removed = 0
        for name, idle_for in idle.items():
            if name in live or name in (self._config.consumer, HANDOVER_CONSUMER):
                continue
            if idle_for > idle_s:
                await self.hand_over(queue, name, remove=True)
                removed += 1
        return removed

    async def hand_over(self, queue: str, consumer: str, *, remove: bool) -> int:
        """Hand every entry ``consumer`` holds on ``queue`` to the hand-over consumer
        (delivery counts kept), then remove the consumer if asked; wakes reclaimers."""
        keys = self._broker.keys(queue)
        group = await self._broker.group_for(queue)
        handed = 0
        while True:
            count, left = await self._broker.scripts.handover(
                self._redis,
                keys.streams,
                [
                    group,
                    consumer,
                    HANDOVER_CONSUMER,
                    keys.channel,
                    "all",
                    "1" if remove else "0",
                ],
            )
            handed += int(count)
            if not int(left):
                return handed


async def _close_pubsub(pubsub: Any) -> None:
    with contextlib.suppress(Exception):  # closing a broken connection may fail
        await pubsub.aclose()
