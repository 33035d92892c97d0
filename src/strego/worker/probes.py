"""A worker's HTTP endpoints: ``/metrics`` (Prometheus) and ``/healthz`` (liveness).

A few lines of HTTP/1.1 on the worker's own event loop, not a thread: a scrape reads
the counters without locks, and a probe that gets an answer proves the loop turns (a
handler blocking the loop makes the probe time out, which is what a liveness probe is
for). Each connection is bounded: one request of at most 8 KiB, read within 5 s, then
the connection closes.

Healthy (200) means: the worker got ready (Redis answered, its consumer name is held),
its fetch and outcome loops run, and Redis answered a heartbeat within
``REDIS_SILENCE_S``. Anything else is 503 with the reason, as JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping

from strego.errors import ConfigurationError
from strego.worker.engine import Liveness

__all__ = ["REDIS_SILENCE_S", "ProbeServer", "Response", "health"]

log = logging.getLogger("strego")

REDIS_SILENCE_S = 30.0  # six missed heartbeats (every 5 s)
_REQUEST_LIMIT = 8192
_READ_TIMEOUT_S = 5.0

Response = tuple[int, str, bytes]  # status, content type, body
Endpoint = Callable[[str], Awaitable[Response]]  # given the Accept header
_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


def health(liveness: Liveness | None) -> Response:
    """``/healthz``'s answer for the worker's state (None: not started)."""
    silent = liveness.redis_silent_s if liveness is not None else None
    body: dict[str, object] = {"redis_silent_s": None if silent is None else round(silent, 3)}
    if liveness is None or not liveness.ready:
        body["status"] = "starting: Redis not reached yet"
    elif not liveness.working:
        body["status"] = "stopped: the fetch or outcome loop ended"
    elif silent is None or silent > REDIS_SILENCE_S:
        body["status"] = f"Redis has not answered for more than {REDIS_SILENCE_S:g}s"
    else:
        body["status"] = "ok"
    code = 200 if body["status"] == "ok" else 503
    return code, "application/json", json.dumps(body).encode() + b"\n"


class ProbeServer:
    """Serves ``endpoints`` (path → handler) on one port until stopped."""

    def __init__(self, host: str, port: int, endpoints: Mapping[str, Endpoint]) -> None:
        self._host = host
        self._port = port
        self._endpoints = dict(endpoints)
        self._server: asyncio.Server | None = None

    @property
    def paths(self) -> list[str]:
        return sorted(self._endpoints)

    @property
    def port(self) -> int:
        """The bound port (the one asked for, or the one chosen for port 0)."""
        if self._server is None:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        try:
            self._server = await asyncio.start_server(
                self._serve, self._host, self._port, limit=_REQUEST_LIMIT
            )
        except OSError as exc:
            paths = ", ".join(sorted(self._endpoints))
            raise ConfigurationError(
                f"cannot serve {paths} on port {self._port}: {exc.strerror or exc}"
            ) from exc
        log.info("serving %s on port %d", ", ".join(sorted(self._endpoints)), self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _READ_TIMEOUT_S)
            status, content_type, body, method = await self._answer(head)
            writer.write(_response(status, content_type, b"" if method == "HEAD" else body))
            await asyncio.wait_for(writer.drain(), _READ_TIMEOUT_S)
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # a slow, truncated or oversized request: just close
        except ConnectionError:
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _answer(self, head: bytes) -> tuple[int, str, bytes, str]:
        lines = head.decode("latin-1").split("\r\n")
        method, _, rest = lines[0].partition(" ")
        path = rest.partition(" ")[0].partition("?")[0]
        endpoint = self._endpoints.get(path)
        if endpoint is None:
            known = ", ".join(sorted(self._endpoints))
            return 404, "text/plain", f"not found: this port serves {known}\n".encode(), method
        if method not in ("GET", "HEAD"):
            return 405, "text/plain", b"only GET and HEAD\n", method
        accept = ""
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "accept":
                accept = value.strip()
        try:
            status, content_type, body = await endpoint(accept)
        except Exception as exc:  # a probe must answer, even about its own failure
            log.exception("%s failed", path)
            return 503, "text/plain", f"{type(exc).__name__}\n".encode(), method
        return status, content_type, body, method


def _response(status: int, content_type: str, body: bytes) -> bytes:
    head = (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Cache-Control: no-store\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body
