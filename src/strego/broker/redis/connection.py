"""Connecting to Redis: URLs or existing clients, consumer names, bounded retries."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.exceptions import BusyLoadingError, ConnectionError, TimeoutError

from strego.errors import BrokerUnavailableError, ConfigurationError

log = logging.getLogger("strego")
T = TypeVar("T")

#: Errors that mean "Redis is not reachable right now", worth retrying.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionError,
    TimeoutError,
    BusyLoadingError,
    OSError,
)
_SCHEMES = ("redis://", "rediss://", "unix://")


def make_client(url_or_client: str | Redis, *, socket_timeout_s: float) -> tuple[Redis, bool]:
    """Return (client, owned). An owned client is closed by the broker."""
    if isinstance(url_or_client, Redis):
        return url_or_client, False
    if not isinstance(url_or_client, str) or not url_or_client.startswith(_SCHEMES):
        raise ConfigurationError(
            f"Redis URL must start with one of {', '.join(_SCHEMES)} "
            f"(or pass a redis.asyncio.Redis), got {url_or_client!r}"
        )
    # decode_responses stays off: stream entries may hold any bytes.
    client = Redis.from_url(
        url_or_client,
        decode_responses=False,
        socket_timeout=socket_timeout_s,
        socket_connect_timeout=socket_timeout_s,
        health_check_interval=15,
    )
    return client, True


def default_consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


async def with_retries(
    operation: str,
    fn: Callable[[], Awaitable[T]],
    *,
    attempts: int,
    base_s: float = 0.05,
    cap_s: float = 2.0,
) -> T:
    """Run ``fn``, retrying transient Redis errors with capped exponential backoff.

    Raises :class:`BrokerUnavailableError` after ``attempts`` failures.
    """
    delay = base_s
    for attempt in range(1, attempts + 1):
        try:
            return await fn()
        except TRANSIENT_ERRORS as exc:
            if attempt == attempts:
                raise BrokerUnavailableError(operation, attempts, exc) from exc
            log.warning(
                "redis unavailable during %s, retrying in %.2fs (%s)",
                operation,
                delay,
                exc,
                extra={"operation": operation, "attempt": attempt},
            )
            await asyncio.sleep(delay)
            delay = min(cap_s, delay * 2)
    raise AssertionError("unreachable")  # pragma: no cover


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
