"""``strego ui``: serve the web UI and JSON API with uvicorn.

The UI's dependencies (the ``ui`` extra) load only when the command runs, so the rest
of the CLI works without them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Iterator
from typing import Any

from strego.cli.common import add_postgres_option, add_redis_option, port
from strego.cli.connect import ping
from strego.cli.errors import UsageError
from strego.cli.exposure import (
    add_exposure_options,
    allowed_hosts,
    check_exposure,
    is_loopback,
)
from strego.cli.listen import listening_socket
from strego.logs import configure_logging

__all__ = ["add_parsers", "check_exposure", "is_loopback", "parse_basic_auth"]

log = logging.getLogger("strego")

EXAMPLES = """examples:
  strego ui                                   # http://127.0.0.1:8080, local Redis
  strego ui --redis redis://cache:6379/0 --postgres postgresql://localhost/app
  strego ui --host 0.0.0.0 --token "$STREGO_UI_TOKEN"      # token login, API bearer
  strego ui --host 0.0.0.0 --auth "admin:$STREGO_UI_PASSWORD" --read-only
  strego ui --allowed-host strego.internal    # no auth, reached by that name (a proxy)
  strego ui --root-path /strego               # behind a proxy that adds /strego

Secrets can come from the environment instead of the command line (which other users
may see in `ps`): STREGO_UI_AUTH=user:password or STREGO_UI_TOKEN=token. Beyond
loopback the password or token must have at least 12 characters.
"""


def add_parsers(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "ui",
        help="serve the web UI and JSON API",
        description="Serve the strego web UI (dashboard, queues, tasks, dead letters, "
        "workers, history) and its JSON API. Binds 127.0.0.1 unless told otherwise.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_redis_option(parser)
    add_postgres_option(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    parser.add_argument("--port", type=port, default=8080, help="port (default %(default)s)")
    auth = parser.add_mutually_exclusive_group()
    auth.add_argument(
        "--auth",
        metavar="USER:PASSWORD",
        default=os.environ.get("STREGO_UI_AUTH"),
        help="require HTTP basic auth (env STREGO_UI_AUTH)",
    )
    auth.add_argument(
        "--token",
        default=os.environ.get("STREGO_UI_TOKEN"),
        help="require a token: bearer header for the API, a login form for browsers "
        "(env STREGO_UI_TOKEN)",
    )
    parser.add_argument("--read-only", action="store_true", help="hide and refuse all actions")
    add_exposure_options(parser)
    parser.add_argument("--root-path", default="", help="path prefix added by a reverse proxy")
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"], type=str.upper
    )
    parser.set_defaults(func=run_ui)


def parse_basic_auth(value: str) -> tuple[str, str]:
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise UsageError("--auth must be USER:PASSWORD (both non-empty)")
    return user, password


def run_ui(args: argparse.Namespace) -> int:
    """Check the options, claim the port, then serve until SIGINT/SIGTERM."""
    auth: Any = parse_basic_auth(args.auth) if args.auth else args.token or None
    secret = auth[1] if isinstance(auth, tuple) else auth
    try:
        check_exposure(args.host, auth is not None, args.insecure, secret)
    except ValueError as exc:  # an option combination that cannot be allowed: exit 2
        raise UsageError(str(exc)) from None
    with listening_socket(args.host, args.port) as sock:
        return asyncio.run(_serve(args, auth, sock))


async def _serve(args: argparse.Namespace, auth: Any, sock: socket.socket) -> int:
    import uvicorn

    from strego.broker.redis import RedisBroker
    from strego.errors import ConfigurationError
    from strego.ui import create_app

    try:
        broker = RedisBroker(args.redis, group=args.group, prefix=args.prefix)
    except ConfigurationError as exc:  # e.g. not a Redis URL: the command line is wrong
        raise UsageError(str(exc)) from exc
    store: Any = None
    try:
        await ping(broker, args.redis)
        configure_logging(args.log_level, "text")  # after the checks: errors stay one line
        if args.postgres:
            from strego.store.postgres import PostgresStore

            store = PostgresStore(args.postgres)
            await store.start()
        app = create_app(
            broker,
            store,
            read_only=args.read_only,
            auth=auth,
            allowed_hosts=allowed_hosts(args.host, args.allowed_host),
        )
        config = uvicorn.Config(
            app,
            host=args.host,
            port=args.port,
            root_path=args.root_path,
            log_level=args.log_level.lower(),
            access_log=args.log_level == "DEBUG",
        )
        mode = ", read-only" if args.read_only else ""
        kind = "none" if auth is None else ("basic" if isinstance(auth, tuple) else "token")
        host, port = sock.getsockname()[:2]
        log.info("strego UI on http://%s:%d%s (auth: %s%s)", host, port, args.root_path, kind, mode)
        await _graceful_server(uvicorn, config).serve(sockets=[sock])
    finally:
        if store is not None:
            await store.aclose()
        await broker.aclose()
    return 0


def _graceful_server(uvicorn: Any, config: Any) -> Any:
    """A uvicorn server that exits 0 after SIGINT/SIGTERM, like ``strego worker``.

    uvicorn re-raises the signal it caught once it has shut down (so the process dies
    of it); a clean shutdown on request is a success for this command.
    """

    class GracefulServer(uvicorn.Server):  # type: ignore[misc]
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            with super().capture_signals():
                try:
                    yield
                finally:
                    captured = getattr(self, "_captured_signals", None)
                    if isinstance(captured, list):
                        captured.clear()

    return GracefulServer(config)
