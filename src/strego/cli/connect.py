"""Connections for admin commands: fail fast and say what is wrong in one line.

A worker retries Redis for ever; a person typing a command wants an answer in a
couple of seconds. So CLI brokers use a short socket timeout, few enqueue attempts,
and a PING up front that turns "connection refused" into a sentence.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import AsyncIterator

from redis.exceptions import RedisError

from strego.broker.redis import RedisBroker
from strego.cli.errors import CommandError, UsageError
from strego.errors import ConfigurationError
from strego.inspector import Inspector
from strego.redaction import redact
from strego.store.base import TaskHistory

__all__ = [
    "CommandError",
    "UsageError",
    "admin_session",
    "broker_session",
    "ping",
    "require_queue",
]

SOCKET_TIMEOUT_S = 2.0
ENQUEUE_ATTEMPTS = 2
_PING_TIMEOUT_S = 5.0


def cli_broker(args: argparse.Namespace) -> RedisBroker:
    """A RedisBroker built from ``--redis/--group/--prefix`` that gives up quickly.
    An invalid URL or name is a usage error."""
    try:
        return RedisBroker(
            args.redis,
            group=args.group,
            prefix=args.prefix,
            socket_timeout=SOCKET_TIMEOUT_S,
            enqueue_attempts=ENQUEUE_ATTEMPTS,
        )
    except ConfigurationError as exc:
        raise UsageError(str(exc)) from exc


async def ping(broker: RedisBroker, url: str) -> None:
    """Raise CommandError unless Redis answers within a few seconds."""
    try:
        await asyncio.wait_for(broker.redis.ping(), _PING_TIMEOUT_S)
    except (RedisError, OSError, TimeoutError) as exc:
        detail = str(exc) or type(exc).__name__
        raise CommandError(redact(f"cannot reach Redis at {url}: {detail}", url)) from exc


@contextlib.asynccontextmanager
async def broker_session(args: argparse.Namespace) -> AsyncIterator[RedisBroker]:
    """A broker on a checked connection, closed on exit."""
    broker = cli_broker(args)
    try:
        await ping(broker, args.redis)
        yield broker
    finally:
        await broker.aclose()


@contextlib.asynccontextmanager
async def admin_session(args: argparse.Namespace) -> AsyncIterator[Inspector]:
    """An Inspector on a checked connection, with the history store when the command
    has ``--postgres`` (so a retry is recorded); everything is closed on exit."""
    async with broker_session(args) as broker, _history(args) as store:
        yield Inspector(broker, store)


@contextlib.asynccontextmanager
async def _history(args: argparse.Namespace) -> AsyncIterator[TaskHistory | None]:
    dsn = getattr(args, "postgres", None)
    if not dsn:
        yield None
        return
    try:
        from strego.store.postgres import PostgresStore
    except ImportError as exc:
        raise CommandError(f"--postgres needs the postgres extra: {exc}") from exc
    store = PostgresStore(dsn, pool_size=1)
    try:
        await store.start()
    except Exception as exc:
        raise CommandError(f"cannot open the history store: {exc}") from exc
    try:
        yield store
    finally:
        await store.aclose()  # flushes the events this command recorded


async def require_queue(inspector: Inspector, queue: str) -> None:
    """Raise CommandError if ``queue`` is not one Redis knows (a typo, usually)."""
    known = await inspector.known_queues()
    if queue not in known:
        listed = ", ".join(known) if known else "none yet"
        raise CommandError(f"unknown queue {queue!r} (known queues: {listed})")
