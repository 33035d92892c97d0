"""A redis-py Connection tuned for the hot path: cheaper writes, same semantics.

Measured on the single-enqueue path (one EVALSHA per task), two costs of redis-py's
asyncio Connection dominated the client side:

* with ``socket_timeout`` set, every write is wrapped in ``asyncio.wait_for``, which on
  Python 3.11 creates a Task per command. ``asyncio.timeout`` bounds the write the same
  way (a half-open connection still fails after ``socket_timeout``) for a timer handle.
* commands are packed in pure Python even when hiredis is installed; hiredis's
  ``pack_command`` does it in C. Anything hiredis cannot pack falls back to redis-py.

Both lean on redis-py internals (the signatures of ``send_packed_command``,
``pack_command`` and ``disconnect``, and the ``socket_timeout`` attribute those
read; :func:`lean_pipeline` also on ``pack_commands``, ``read_response``, the
connection's ``retry`` and the pool's ``get_connection`` and ``release``), which any
redis-py release may change. So the class is only used when
:func:`missing_internals` finds them all at import; otherwise the stock connection
is used (a debug log says why) and strego is as correct, only slower. Both paths are
tested (tests/integration/test_connections.py).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.connection import Connection, ConnectionPool
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

try:  # hiredis comes with redis[hiredis], a core dependency; stay correct without it
    from hiredis import pack_command as _hiredis_pack
except ImportError:  # pragma: no cover
    _hiredis_pack = None  # type: ignore[assignment]

__all__ = [
    "FAST_CONNECTIONS",
    "FastConnection",
    "fast_connection_class",
    "lean_pipeline",
    "missing_internals",
]

log = logging.getLogger("strego")


class FastConnection(Connection):
    def pack_command(self, *args: Any) -> list[bytes]:
        # redis-py splits a first argument like "CLIENT SETNAME" into two words.
        if _hiredis_pack is not None and not (isinstance(args[0], str) and " " in args[0]):
            try:
                return [_hiredis_pack(args)]
            except TypeError:  # e.g. a memoryview: let redis-py's encoder handle it
                pass
        return super().pack_command(*args)

    async def send_packed_command(
        self, command: bytes | str | Iterable[bytes], check_health: bool = True
    ) -> None:
        timeout = self.socket_timeout
        if not timeout:
            await super().send_packed_command(command, check_health)
            return
        # A connection serves one command at a time, so swapping the attribute for
        # the duration of this write is not seen by anyone else.
        self.socket_timeout = None
        try:
            async with asyncio.timeout(timeout):
                await super().send_packed_command(command, check_health)
        except TimeoutError:
            await self.disconnect(nowait=True)
            raise RedisTimeoutError("Timeout writing to socket") from None
        finally:
            self.socket_timeout = timeout


async def lean_pipeline(client: Any, commands: Sequence[Sequence[Any]]) -> list[Any] | None:
    """Send ``commands`` in one write and read their replies, an error reply returned
    in its place (as a redis-py pipeline with ``raise_on_error=False``); None when
    ``client`` is not a plain or Sentinel-managed client on FastConnections (then use
    redis-py's pipeline).

    redis-py's asyncio pipeline costs more client CPU than the commands it sends
    (measured: a fetch with one limiter call riding along spent ~25 µs more in the
    pipeline than in two bare writes and reads). Same semantics where it matters:
    the connection's retry policy retries a lost connection as the pipeline's does
    (after a disconnect), every reply is read before the connection goes back to
    the pool, and a connection left mid-reply (cancelled, or a reply that failed to
    parse) is closed rather than handed to the next caller.
    """
    if not isinstance(client, Redis):
        return None
    pool: Any = client.connection_pool  # (get_connection is untyped in some releases)
    if client.connection is not None or not issubclass(pool.connection_class, FastConnection):
        return None
    connection = await pool.get_connection()
    try:
        return await connection.retry.call_with_retry(  # type: ignore[no-any-return]
            lambda: _send_and_read(connection, commands),
            lambda _: connection.disconnect(),
        )
    finally:
        await pool.release(connection)


async def _send_and_read(connection: Connection, commands: Sequence[Sequence[Any]]) -> list[Any]:
    await connection.send_packed_command(connection.pack_commands(commands))
    replies: list[Any] = []
    try:
        for _ in commands:
            try:
                replies.append(await connection.read_response())
            except ResponseError as exc:
                replies.append(exc)
    except BaseException:
        await connection.disconnect(nowait=True)
        raise
    return replies


def missing_internals(connection_class: type[Any]) -> list[str]:
    """What FastConnection relies on that ``connection_class`` lacks ([] when all there)."""
    missing: list[str] = []
    send = getattr(connection_class, "send_packed_command", None)
    if not (_takes(send, "command") and _takes(send, "check_health")):
        missing.append("send_packed_command(command, check_health)")
    if not _takes(getattr(connection_class, "pack_command", None), "args"):
        missing.append("pack_command(*args)")
    if not _takes(getattr(connection_class, "disconnect", None), "nowait"):
        missing.append("disconnect(nowait)")
    # socket_timeout may be taken by a base class's __init__ (through **kwargs here).
    initialisers = [vars(c).get("__init__") for c in getattr(connection_class, "__mro__", ())]
    if not any(_takes(init, "socket_timeout") for init in initialisers):
        missing.append("__init__(socket_timeout)")
    # What lean_pipeline uses besides (the connection pool's side is checked below).
    if not any(_takes(init, "retry") for init in initialisers):
        missing.append("__init__(retry)")
    if not _takes(getattr(connection_class, "pack_commands", None), "commands"):
        missing.append("pack_commands(commands)")
    if not callable(getattr(connection_class, "read_response", None)):
        missing.append("read_response()")
    return missing


def _takes(function: Any, parameter: str) -> bool:
    if not callable(function):
        return False
    try:
        return parameter in inspect.signature(function).parameters
    except (TypeError, ValueError):  # pragma: no cover - a builtin without a signature
        return False


def _check_stock_connection() -> bool:
    missing = missing_internals(Connection)
    missing += [
        f"ConnectionPool.{name}()"
        for name in ("get_connection", "release")
        if not callable(getattr(ConnectionPool, name, None))
    ]
    if missing:
        log.debug(
            "redis-py's Connection lacks %s: using its stock connection (correct, slower)",
            ", ".join(missing),
        )
    return not missing


#: True when this redis-py has the internals FastConnection builds on.
FAST_CONNECTIONS = _check_stock_connection()


def fast_connection_class() -> type[Connection] | None:
    """FastConnection when this redis-py fits it, else None (use redis-py's own)."""
    return FastConnection if FAST_CONNECTIONS else None
