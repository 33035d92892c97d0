"""Bind the web UI's socket before anything else starts: a busy port is one clear line.

uvicorn binding late would print its startup line, then a multi-line traceback, then
exit 3; binding here first turns "address in use" into a ``CommandError`` (exit 1).
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

from strego.cli.connect import CommandError

__all__ = ["listening_socket"]


@contextlib.contextmanager
def listening_socket(host: str, port: int) -> Iterator[socket.socket]:
    """A bound, listening TCP socket on ``host:port`` (closed on exit).

    Listening at once means a browser opened from the startup line waits in the
    backlog until the server accepts, instead of being refused.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio turns Nagle off (TCP_NODELAY) only on sockets whose
    # proto says TCP. With Nagle on, every response waited ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # inherited on accept
        sock.bind((host.strip("[]"), port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        reason = exc.strerror or str(exc)
        raise CommandError(
            f"cannot listen on {host}:{port} ({reason}): pass --port to pick another"
        ) from exc
    with sock:
        yield sock
