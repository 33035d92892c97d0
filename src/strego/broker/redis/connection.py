"""Connecting to Redis: URLs or existing clients, consumer names, bounded retries.

``redis+cluster://`` and ``redis+sentinel://`` URLs are built in ``topology.py``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis.asyncio import Redis, RedisCluster
from redis.exceptions import RedisClusterException, ResponseError

from strego.broker.redis.fastconn import fast_connection_class
from strego.broker.redis.replies import TRANSIENT_CLASSES, is_transient_reply
from strego.broker.redis.topology import (
    CLUSTER_SCHEMES,
    SENTINEL_SCHEMES,
    RedisClient,
    make_topology_client,
)
from strego.errors import BrokerUnavailableError, ConfigurationError
from strego.redaction import redact

log = logging.getLogger("strego")
T = TypeVar("T")

#: Errors that mean "Redis is not reachable right now" (see replies.py).
TRANSIENT_ERRORS = TRANSIENT_CLASSES
# with_retries also catches these, then keeps only the transient ones (see is_transient).
_MAYBE_TRANSIENT: tuple[type[BaseException], ...] = (
    *TRANSIENT_ERRORS,
    RedisClusterException,
    AttributeError,
    ResponseError,
)
_PLAIN_SCHEMES = ("redis://", "rediss://", "unix://")
_SCHEMES = (*_PLAIN_SCHEMES, *CLUSTER_SCHEMES, *SENTINEL_SCHEMES)


def make_client(
    url_or_client: str | RedisClient, *, socket_timeout_s: float
) -> tuple[RedisClient, bool]:
    """Return (client, owned). An owned client is closed by the broker."""
    if isinstance(url_or_client, Redis | RedisCluster):
        return url_or_client, False
    if isinstance(url_or_client, str):  # schemes are case-insensitive (REDIS://)
        scheme, sep, rest = url_or_client.partition("://")
        url_or_client = scheme.lower() + sep + rest if sep else url_or_client
    if not isinstance(url_or_client, str) or not url_or_client.startswith(_SCHEMES):
        shown = redact(url_or_client) if isinstance(url_or_client, str) else url_or_client
        raise ConfigurationError(
            f"Redis URL must start with one of {', '.join(_SCHEMES)} (or pass a "
            f"redis.asyncio.Redis or RedisCluster), got {shown!r}"
        )
    try:
        return _client_from_url(url_or_client, socket_timeout_s), True
    except ConfigurationError as exc:
        raise ConfigurationError(redact(str(exc), url_or_client)) from None
    except ValueError as exc:
        raise ConfigurationError(_invalid_url(url_or_client, exc)) from None


def _invalid_url(url: str, exc: ValueError) -> str:
    shown = redact(url)
    if shown == url:
        return f"invalid Redis URL {url}: {exc}"
    # redis-py's message may quote any piece of the password ("... as 'pa'"): say what
    # usually causes it instead of quoting it.
    return (
        f"invalid Redis URL {shown}: it cannot be parsed; a '/', '@', ':', '?' or '#' "
        "in the password must be percent-encoded (e.g. %2F for '/')"
    )


def _client_from_url(url: str, socket_timeout_s: float) -> RedisClient:
    if not url.startswith(_PLAIN_SCHEMES):
        return make_topology_client(url, socket_timeout_s=socket_timeout_s)
    # decode_responses stays off: stream entries may hold any bytes.
    extra: dict[str, Any] = {}
    fast = fast_connection_class()
    if fast is not None and url.startswith("redis://"):
        extra["connection_class"] = fast  # TCP only: unix:// and rediss:// keep theirs
    return Redis.from_url(
        url,
        **extra,
        decode_responses=False,
        socket_timeout=socket_timeout_s,
        socket_connect_timeout=socket_timeout_s,
        health_check_interval=15,
    )


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
        except _MAYBE_TRANSIENT as exc:
            if not is_transient(exc):
                raise
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


def is_transient(exc: BaseException) -> bool:
    """True for errors worth retrying: Redis unreachable, or a cluster in transition.

    redis-py reports "no startup node reachable" as a bare RedisClusterException
    caused by a connection error; other RedisClusterExceptions are usage errors.
    """
    if is_transient_reply(exc):
        return True
    if isinstance(exc, AttributeError):
        return _closed_under_us(exc)
    return isinstance(exc, RedisClusterException) and isinstance(exc.__cause__, TRANSIENT_ERRORS)


def _closed_under_us(exc: AttributeError) -> bool:
    """An AttributeError raised inside redis-py's connection code: a closed connection.

    When one cluster node fails, redis-py's RedisCluster closes *every* connection to
    rebuild its slot map, including connections other coroutines are using at that
    moment; their command then trips over the cleared reader/writer (``'NoneType'
    object has no attribute 'writelines'``) instead of raising ConnectionError. Seen
    in tests/cluster/test_failover.py; redis-py issues #2349 and #3835 are the same
    family. Only errors whose innermost frame is that module count.
    """
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    filename = tb.tb_frame.f_code.co_filename if tb is not None else ""
    return filename.replace("\\", "/").endswith("redis/asyncio/connection.py")


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
