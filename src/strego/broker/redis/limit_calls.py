"""The limiter's outgoing script calls, batched (used by limiter.py and limit_ahead.py).

Requests queued in one event-loop turn for the same script, limiter key and shared
arguments join one script call; the calls go to Redis together in one pipeline, on
the next loop turn, or with the worker's next fetch (``take_riders``), whichever
comes first. A busy worker asks for many tasks at the cost of about one call.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from strego.broker.redis.scripts import Script, ScriptCall

if TYPE_CHECKING:
    from strego.broker.redis.broker import RedisBroker

__all__ = ["Arg", "Call", "CallQueue", "chain", "quiet", "text"]

Arg = str | int | float


@dataclasses.dataclass(slots=True)
class Call:
    """One script call for one limiter key, gathering every request queued for it
    until it is sent."""

    script: Script
    keys: tuple[str, ...]
    head: tuple[Arg, ...]  # the arguments every request of the call shares
    one_each: bool  # the script answers one value per request (an ask), else none needed
    items: list[Arg] = dataclasses.field(default_factory=list)  # the requests' own
    sent: bool = False  # taken from the queue: add nothing more to it
    # One per request when one_each (reply n answers request n), else one for all.
    replies: list[asyncio.Future[Any]] = dataclasses.field(default_factory=list)

    @property
    def script_call(self) -> ScriptCall:
        return self.script, self.keys, [*self.head, *self.items]

    def shared_reply(self) -> asyncio.Future[Any]:
        """The future every request of a call without answers shares."""
        if not self.replies:
            self.replies.append(asyncio.get_running_loop().create_future())
        return self.replies[0]

    def settle(self, reply: Any) -> None:
        if isinstance(reply, BaseException):
            self.fail(reply)
            return
        for n, future in enumerate(self.replies):
            if not future.done():
                future.set_result(reply[n] if self.one_each else None)

    def fail(self, exc: BaseException) -> None:
        for future in self.replies:
            if not future.done():
                future.set_exception(exc)


class CallQueue:
    def __init__(self, broker: RedisBroker) -> None:
        self._broker = broker
        self._queued: dict[tuple[Script, tuple[str, ...], tuple[Arg, ...]], Call] = {}
        self._sender: asyncio.Task[None] | None = None

    def call(
        self, script: Script, keys: tuple[str, ...], head: tuple[Arg, ...], one_each: bool
    ) -> Call:
        """The queued call requests with these arguments join (sent on the next turn)."""
        found = self._queued.get((script, keys, head))
        if found is None:
            found = self._queued[(script, keys, head)] = Call(script, keys, head, one_each)
            self._schedule()
        return found

    def request(
        self,
        script: Script,
        keys: tuple[str, ...],
        head: tuple[Arg, ...],
        items: tuple[Arg, ...],
        one_each: bool,
    ) -> asyncio.Future[Any]:
        found = self.call(script, keys, head, one_each)
        found.items += items
        if one_each:
            found.replies.append(asyncio.get_running_loop().create_future())
            return found.replies[-1]
        return found.shared_reply()

    def take_riders(self) -> list[Call]:
        """The queued calls a fetch may carry: all but asks (their tasks wait for the
        answer: they go on their own, not behind a fetch that may block)."""
        if not self._queued:
            return []
        riders = [call for call in self._queued.values() if not call.one_each]
        if riders:
            self._queued = {found: c for found, c in self._queued.items() if c.one_each}
            for call in riders:
                call.sent = True
        return riders

    def requeue(self, calls: Sequence[Call]) -> None:
        """Calls a fetch carried whose answer was lost: sent again on their own (every
        call a fetch carries may run twice: releases and give-backs do)."""
        for call in calls:
            queued = self._queued.get((call.script, call.keys, call.head))
            if queued is None:
                call.sent = False
                self._queued[(call.script, call.keys, call.head)] = call
            else:
                queued.items += call.items
                queued.replies += call.replies
        if self._queued:
            self._schedule()

    def _schedule(self) -> None:
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send())

    async def _send(self) -> None:
        await asyncio.sleep(0)  # let the tasks of this loop iteration add their requests
        while self._queued:
            batch = list(self._queued.values())
            self._queued = {}
            for call in batch:
                call.sent = True
            try:
                replies = await self._broker.scripts.run_many(
                    self._broker.redis, [call.script_call for call in batch]
                )
            except Exception as exc:
                for call in batch:
                    call.fail(exc)
                continue
            for call, reply in zip(batch, replies, strict=True):
                call.settle(reply)


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def chain(done: asyncio.Future[Any], to: asyncio.Future[Any]) -> None:
    """Settle ``to`` as ``done`` was settled (a done-callback)."""
    if to.done():
        return
    if done.cancelled():
        to.cancel()
    elif done.exception() is not None:
        to.set_exception(done.exception())  # type: ignore[arg-type]
    else:
        to.set_result(None)


def quiet(reply: asyncio.Future[Any]) -> None:
    """A give-back that fails leaves a start spent or a slot to expire: safe, and
    nobody awaits it (its exception is retrieved so asyncio does not log it)."""
    reply.add_done_callback(lambda done: done.cancelled() or done.exception())
