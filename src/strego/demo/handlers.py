"""The demo's handlers: quick successes, slow work, flaky calls and hopeless failures."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from strego.broker.redis import RedisBroker
from strego.demo.payloads import Email, Image, Payment, Report, Webhook
from strego.errors import RetryAfter, SkipRetry
from strego.store.base import TaskHistory
from strego.task import Task
from strego.worker import Server

__all__ = ["DEMO_QUEUES", "build_server"]

#: Queue → weight: "critical" is asked for work six times as often as "low".
DEMO_QUEUES = {"critical": 6, "default": 3, "low": 1}


def build_server(
    broker: RedisBroker, *, concurrency: int = 8, store: TaskHistory | None = None
) -> Server:
    """A Server with every demo handler; retries are quick so the UI shows them moving.
    With a ``store``, every transition is recorded (the UI's History page)."""
    server = Server(
        broker,
        queues=DEMO_QUEUES,
        concurrency=concurrency,
        retry_base=2.0,
        retry_max=20.0,
        shutdown_timeout=5.0,
        store=store,
    )
    server.handle("email:send", send_email)
    server.handle("image:resize", resize_image)
    server.handle("report:generate", generate_report)
    server.handle("payment:charge", charge)
    server.handle("webhook:deliver", deliver_webhook)
    server.handle("reminder:send", send_reminder)
    server.handle("invoice:send", send_invoice)
    return server


async def send_email(payload: Email) -> None:
    """Fast and nearly always fine; 5% of sends hit a transient error and retry."""
    await asyncio.sleep(random.uniform(0.05, 0.3))
    if random.random() < 0.05:
        raise ConnectionError(f"SMTP server hung up while sending to {payload.to}")


def resize_image(payload: Image) -> None:
    """A plain ``def``: runs in the worker's thread pool, so it may block."""
    time.sleep(random.uniform(0.2, 0.8))


async def generate_report(payload: Report, task: Task) -> None:
    """Slow work that keeps tasks visibly active (and gives cancel something to stop)."""
    await asyncio.sleep(payload.seconds)


async def charge(payload: Payment) -> None:
    """A declined card is hopeless (dead at once); a flaky gateway retries, then dies."""
    await asyncio.sleep(random.uniform(0.1, 0.4))
    if payload.card == "declined":
        raise SkipRetry(f"card declined for order {payload.order_id}: retrying cannot help")
    if payload.card == "flaky":
        raise TimeoutError(f"payment gateway timed out for order {payload.order_id}")


async def deliver_webhook(payload: Webhook, task: Task) -> None:
    """The receiver is rate limited on a first try now and then: it asks to come back later."""
    await asyncio.sleep(random.uniform(0.05, 0.2))
    if task.retry_count == 0 and random.random() < 0.4:
        raise RetryAfter(3.0, f"{payload.url} answered 429 Too Many Requests")


async def send_reminder(payload: dict[str, Any]) -> None:
    """The target of scheduled tasks."""
    await asyncio.sleep(0.05)


async def send_invoice(payload: dict[str, Any]) -> None:
    """Enqueued with a unique key: the producer's duplicates never reach this handler."""
    await asyncio.sleep(0.1)
