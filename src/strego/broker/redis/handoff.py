"""One-hop idle pickup: an idle worker's blocking read of its inbox (issue 21).

An idle worker used to be woken by pub/sub and then run the fetch script: two round
trips between a task's enqueue and its handler, where a raw XREADGROUP BLOCK has one.
Now a fetch that finds nothing registers the consumer in the queue's hand-off hash
(fetch.lua); the next enqueue delivers the new task to that consumer itself and pushes
it onto the consumer's inbox list (``hand_off`` in _lib.lua), and the worker's BLPOP
here receives it with its fields: the handler starts one hop after the enqueue.

Priority and pause stay exact (the enqueue script reads the higher bands first and
hands nothing over while the queue is paused), and a handed task is an ordinary
delivery (count 1, the same fence). The next fetch withdraws the registration and
returns whatever the inbox still holds, so a task handed over is never left behind; a
worker that dies while registered holds what it was handed until reclaim, like any
delivery (the registration lapses within :attr:`RedisHandoff.registration_ttl_ms`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from strego.broker.base import Delivery
from strego.broker.redis.keys import QueueKeys

__all__ = ["RedisHandoff", "handed_deliveries"]

UNBLOCK = b"u"  # pushed by a fetch to release a BLPOP still waiting (fetch.lua)


class RedisHandoff:
    """The worker side: wait for a handed task, withdraw at shutdown."""

    def __init__(self, redis: Any, prefix: str, consumer: str, socket_timeout_s: float) -> None:
        self._redis = redis
        self._prefix = prefix
        self._consumer = consumer
        # BLPOP holds its connection: keep it well inside the socket timeout, and short,
        # because the registration it renews is what a dead worker leaves behind.
        self.receive_timeout_s = min(1.0, socket_timeout_s / 2)
        self.registration_ttl_ms = int(self.receive_timeout_s * 1000) + 1000

    def _inbox(self, queue: str) -> str:
        return QueueKeys(self._prefix, queue).inbox(self._consumer)

    async def receive(self, queue: str) -> list[Delivery]:
        """The next task handed to this worker, or [] when the wait ended without one
        (timeout, or a fetch released it)."""
        reply = await self._redis.blpop([self._inbox(queue)], timeout=self.receive_timeout_s)
        if reply is None:
            return []
        return handed_deliveries(queue, [reply[1]])

    async def withdraw(self, queue: str) -> None:
        """Stop taking hand-offs (shutdown). What was handed meanwhile is this
        consumer's pending work: the shutdown hand-over gives it back."""
        keys = QueueKeys(self._prefix, queue)
        pipe = self._redis.pipeline(transaction=False)
        pipe.hdel(keys.handoff, self._consumer)
        pipe.delete(keys.inbox(self._consumer))
        await pipe.execute()


def handed_deliveries(queue: str, items: Sequence[bytes]) -> list[Delivery]:
    """Parse inbox items: "band entry-id " then each field as "<length>:<bytes>"."""
    found: list[Delivery] = []
    for item in items:
        if item == UNBLOCK:
            continue
        band, entry_id, rest = item.split(b" ", 2)
        values: list[bytes] = []
        at = 0
        while at < len(rest):
            colon = rest.index(b":", at)
            size = int(rest[at:colon])
            values.append(rest[colon + 1 : colon + 1 + size])
            at = colon + 1 + size
        fields = dict(zip(values[::2], values[1::2], strict=True))
        found.append(Delivery(queue, int(band), entry_id.decode(), fields))
    return found
