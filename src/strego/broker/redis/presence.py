"""Worker presence: event subscription, heartbeats, registry, consumer cleanup."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from strego.broker.base import QueueSignal, WorkerRegistration
from strego.broker.redis.connection import TRANSIENT_ERRORS, text
from strego.broker.redis.topology import open_pubsub

if TYPE_CHECKING:
    from strego.broker.redis.broker import RedisBroker

__all__ = ["Presence"]

log = logging.getLogger("strego")
_HEARTBEAT_TTL_S = 60


class Presence:
    """The parts of a worker's life that are not about tasks (RedisBroker delegates)."""

    def __init__(self, broker: RedisBroker) -> None:
        self._broker = broker
        self._redis = broker.redis
        self._config = broker.config
        self._global_keys = broker.global_keys

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
                            on_signal(QueueSignal(queue, "w"))
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
                    if target is not None:
                        kind, _, value = text(message["data"]).partition(":")
                        on_signal(QueueSignal(target, kind, value))
        finally:
            if pubsub is not None:
                await asyncio.shield(_close_pubsub(pubsub))

    async def heartbeat(self, registration: WorkerRegistration, in_flight: int) -> None:
        # Redis's clock, not ours: with local clocks, a worker running more than the TTL
        # behind the others was pruned from the registry by their heartbeats and
        # vanished from Inspector.workers() (found by tests/faults/test_clock_skew.py).
        seconds, micros = await self._redis.time()
        now_ms = int(seconds) * 1000 + int(micros) // 1000
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
            },
        )
        pipe.expire(key, _HEARTBEAT_TTL_S)
        pipe.zadd(self._global_keys.workers, {registration.name: now_ms})
        # Drop registry entries of workers whose hash expired (crashed long ago).
        pipe.zremrangebyscore(self._global_keys.workers, 0, now_ms - _HEARTBEAT_TTL_S * 1000)
        await pipe.execute()

    async def deregister(self, registration: WorkerRegistration, queues: Sequence[str]) -> None:
        """Forget this worker; remove its consumer where it holds nothing pending."""
        await self._redis.delete(self._global_keys.worker(registration.name))
        await self._redis.zrem(self._global_keys.workers, registration.name)
        for queue in queues:
            for stream in self._broker.keys(queue).streams:
                await self._remove_consumer_if_idle(stream, self._config.consumer, min_idle_ms=0)

    async def cleanup_consumers(self, queue: str, idle_s: float) -> int:
        """Remove consumers idle longer than ``idle_s`` that hold nothing pending."""
        removed = 0
        for stream in self._broker.keys(queue).streams:
            try:
                consumers = await self._redis.xinfo_consumers(stream, self._config.group)
            except ResponseError:
                continue
            for consumer in consumers:
                name = text(consumer["name"])
                if name == self._config.consumer:
                    continue
                if int(consumer["pending"]) == 0 and int(consumer["idle"]) > idle_s * 1000:
                    removed += await self._remove_consumer_if_idle(stream, name, int(idle_s * 1000))
        return removed

    async def _remove_consumer_if_idle(self, stream: str, name: str, min_idle_ms: int) -> int:
        # DELCONSUMER drops the consumer's pending entries, so it is only ever run on
        # a consumer that holds none: otherwise those tasks could never be reclaimed.
        try:
            consumers = await self._redis.xinfo_consumers(stream, self._config.group)
        except ResponseError:
            return 0
        for consumer in consumers:
            if (
                text(consumer["name"]) == name
                and int(consumer["pending"]) == 0
                and int(consumer["idle"]) >= min_idle_ms
            ):
                await self._redis.xgroup_delconsumer(stream, self._config.group, name)
                return 1
        return 0


async def _close_pubsub(pubsub: Any) -> None:
    with contextlib.suppress(Exception):  # closing a broken connection may fail
        await pubsub.aclose()
