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
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
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
