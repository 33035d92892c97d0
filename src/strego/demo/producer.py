"""The demo producer: a steady, realistic mix of tasks so every state shows up in the UI."""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import random
from collections.abc import Callable

from strego.client import Client
from strego.demo.payloads import Email, Image, Payment, Report, Webhook
from strego.errors import DuplicateTaskError
from strego.task import Task

__all__ = ["Producer"]

log = logging.getLogger("strego.demo")
_LABELS = {"source": "strego-dev"}
_BURST_EVERY_S = 20.0
_BURST_SIZE = 40
_CANCEL_EVERY_S = 12.0


class Producer:
    """Enqueues about ``rate`` tasks a second until cancelled.

    Every ``_BURST_EVERY_S`` a burst of low-priority work builds a visible backlog,
    and every ``_CANCEL_EVERY_S`` one scheduled or running task is cancelled.
    """

    def __init__(self, client: Client, *, rate: float = 4.0, seed: int | None = None) -> None:
        self.client = client
        self.rate = rate
        self.random = random.Random(seed)
        self.counts: collections.Counter[str] = collections.Counter()
        self._ids = itertools.count(1)
        self._cancellable: collections.deque[str] = collections.deque(maxlen=50)
        self._makers: list[tuple[Callable[[], list[Task]], int]] = [
            (self._email, 30),
            (self._image, 12),
            (self._report, 8),
            (self._payment, 18),
            (self._webhook, 12),
            (self._reminder, 12),
            (self._invoice, 8),
        ]

    async def run(self) -> None:
        """Produce until cancelled; a failed enqueue is logged and the loop goes on."""
        loop = asyncio.get_running_loop()
        next_burst = next_cancel = loop.time() + 1.0
        while True:
            try:
                if loop.time() >= next_burst:
                    next_burst += _BURST_EVERY_S
                    await self._enqueue([self._image()[0] for _ in range(_BURST_SIZE)])
                if loop.time() >= next_cancel:
                    next_cancel += _CANCEL_EVERY_S
                    await self._cancel_one()
                makers, weights = zip(*self._makers, strict=True)
                await self._enqueue(self.random.choices(makers, weights)[0]())
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis blip: the demo keeps going
                log.warning("demo producer: %s", exc)
            await asyncio.sleep(self.random.expovariate(self.rate))

    async def _enqueue(self, tasks: list[Task]) -> None:
        for result in await self.client.enqueue_many(tasks):
            if isinstance(result, DuplicateTaskError):
                self.counts["duplicates"] += 1
            else:
                self.counts["enqueued"] += 1

    async def _cancel_one(self) -> None:
        while self._cancellable:
            task_id = self._cancellable.popleft()
            if await self.client.cancel(task_id):
                self.counts["cancelled"] += 1
                return

    # -- the mix -----------------------------------------------------------------

    def _email(self) -> list[Task]:
        n = next(self._ids)
        email = Email(to=f"user{n}@example.com", subject=f"Welcome aboard, user {n}")
        return [Task("email:send", email, labels=_LABELS)]

    def _image(self) -> list[Task]:
        image = Image(url=f"https://example.com/img/{next(self._ids)}.png", width=640)
        return [Task("image:resize", image, queue="low", labels=_LABELS)]

    def _report(self) -> list[Task]:
        seconds = round(self.random.uniform(3, 12), 1)
        report = Report(name=f"sales-{next(self._ids)}", pages=12, seconds=seconds)
        task = Task(
            "report:generate",
            report,
            priority=self.random.choice([0, 5, 9]),
            timeout=30,
            labels=_LABELS,
        )
        self._cancellable.append(task.id)
        return [task]

    def _payment(self) -> list[Task]:
        card = self.random.choices(["ok", "declined", "flaky"], [70, 15, 15])[0]
        payment = Payment(order_id=next(self._ids), amount_cents=1999, card=card)  # type: ignore[arg-type]
        return [Task("payment:charge", payment, queue="critical", max_retry=2, labels=_LABELS)]

    def _webhook(self) -> list[Task]:
        hook = Webhook(url="https://hooks.example.com/orders", event=f"order.{next(self._ids)}")
        return [Task("webhook:deliver", hook, labels=_LABELS)]

    def _reminder(self) -> list[Task]:
        delay = self.random.uniform(5, 45)
        task = Task("reminder:send", {"n": next(self._ids)}, process_in=delay, labels=_LABELS)
        self._cancellable.append(task.id)
        return [task]

    def _invoice(self) -> list[Task]:
        # The same invoice twice: the second is a duplicate while the key is held.
        order = next(self._ids)
        return [
            Task("invoice:send", {"order": order}, unique_key=f"invoice-{order}", labels=_LABELS)
            for _ in range(2)
        ]
