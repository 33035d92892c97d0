"""A loopback TCP proxy between strego and Redis whose link the tests can break.

Modes:

* ``forward`` — bytes flow both ways.
* ``cut`` — every connection is reset at once, and new ones are reset on accept
  (a switch pulled out: clients see errors immediately).
* ``blackhole`` — half-open: connections stay open but nothing is ever forwarded
  either way, and new ones are accepted and never answered (a peer that vanished
  without a FIN or RST, or a firewall silently dropping packets). Clients learn of
  it only through their own timeouts.

``heal()`` forwards again. Black-holed connections are reset at heal when
``reset_stale=True`` (the path came back and the peer answers with RST); with
``False`` they stay silent forever, like connection state a NAT dropped: only a
client's timeout or health check can get rid of them.

The proxy runs its own event loop in a daemon thread, so the test's loop and the
worker processes are unaffected by what it does.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
from collections.abc import Coroutine
from typing import Any, Literal, TypeVar

__all__ = ["Proxy"]

Mode = Literal["forward", "cut", "blackhole"]
T = TypeVar("T")
_CHUNK = 65536


@dataclasses.dataclass(eq=False)
class _Link:
    """One client connection and, once forwarding, its upstream connection."""

    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    frozen: bool = False  # black-holed: everything read is dropped, nothing is written

    def reset(self) -> None:
        for writer in (self.client, self.upstream):
            if writer is not None:
                writer.transport.abort()


class Proxy:
    """Forwards 127.0.0.1:<port> to 127.0.0.1:<target_port> until told otherwise."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.mode: Mode = "forward"
        self._links: set[_Link] = set()
        self._pumps: set[asyncio.Task[None]] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> Proxy:
        self._thread.start()
        self._server = self._call(asyncio.start_server(self._accept, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def cut(self) -> None:
        """Reset every connection now; reset new ones on accept."""
        self._call(self._set("cut"))

    def blackhole(self) -> None:
        """Stop forwarding on every connection; accept new ones and never answer."""
        self._call(self._set("blackhole"))

    def heal(self, *, reset_stale: bool = True) -> None:
        """Forward again; reset (or leave silent forever) the black-holed connections."""
        self._call(self._set("forward", reset_stale=reset_stale))

    def close(self) -> None:
        if self._server is not None:
            self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    @property
    def connections(self) -> int:
        return len(self._links)

    # -- inside the proxy's loop ---------------------------------------------------

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _set(self, mode: Mode, *, reset_stale: bool = True) -> None:
        self.mode = mode
        for link in list(self._links):
            if mode == "cut" or (mode == "forward" and link.frozen and reset_stale):
                link.reset()
                self._links.discard(link)
            elif mode == "blackhole":
                link.frozen = True

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        for link in list(self._links):
            link.reset()
        self._links.clear()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        link = _Link(writer)
        if self.mode == "cut":
            link.reset()
            return
        self._links.add(link)
        try:
            if self.mode == "blackhole":
                link.frozen = True
            else:
                up_reader, link.upstream = await asyncio.open_connection(
                    "127.0.0.1", self.target_port
                )
                pump = asyncio.create_task(self._pump(up_reader, link, to_client=True))
                self._pumps.add(pump)
                pump.add_done_callback(self._pumps.discard)
            await self._pump(reader, link, to_client=False)
        finally:
            self._links.discard(link)

    async def _pump(self, reader: asyncio.StreamReader, link: _Link, *, to_client: bool) -> None:
        """Copy one direction until EOF; drop everything while the link is frozen."""
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(_CHUNK):
                target = link.client if to_client else link.upstream
                if link.frozen or target is None:
                    continue
                target.write(data)
                await target.drain()
        if not link.frozen:
            link.reset()  # one side closed: close the other (a frozen link stays silent)
