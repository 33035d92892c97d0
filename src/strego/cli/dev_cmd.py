"""``strego dev``: the one-command demo — Redis, a worker, the web UI and a producer.

Starts a private redis-server (unless ``--redis`` is given), runs the demo Server
in-process, serves the UI with uvicorn, and keeps a realistic mix of tasks flowing.
SIGINT/SIGTERM stop everything in order: producer, UI, worker, then Redis. The
redis-server is armed to die with this process even on SIGKILL (strego.embedded).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from strego.broker.redis import RedisBroker
from strego.cli.common import port, positive_float, positive_int
from strego.cli.connect import CommandError, ping
from strego.cli.errors import UsageError
from strego.cli.exposure import add_exposure_options, allowed_hosts, check_exposure
from strego.cli.listen import listening_socket
from strego.client import Client
from strego.demo import DEMO_QUEUES, Producer, build_server
from strego.embedded import EmbeddedRedis
from strego.inspector import Inspector
from strego.logs import configure_logging
from strego.redaction import redact

__all__ = ["add_parsers", "run_dev"]

log = logging.getLogger("strego")
_STATUS_EVERY_S = 10.0

EXAMPLES = """examples:
  strego dev                          # embedded Redis, UI on http://127.0.0.1:8080
  strego dev --port 9000
  strego dev --redis redis://localhost:6379/15 --prefix demo
  strego dev --no-producer            # worker and UI only; enqueue with 'strego enqueue'
  strego dev --host 0.0.0.0 --insecure  # the demo UI (no auth!) for other machines
  strego dev --postgres postgresql://localhost/strego_demo   # with History
"""


def add_parsers(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "dev",
        help="run a demo: embedded Redis, a worker, the web UI and a task producer",
        description="Start a private Redis (or use --redis), a worker with example "
        "handlers, the web UI and a producer that keeps a realistic mix of tasks "
        "flowing. Ctrl-C stops everything.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--redis", metavar="URL", help="use this Redis instead of starting one (left running)"
    )
    parser.add_argument(
        "--group",
        default=None,
        help="consumer group (default: the group recorded for the demo's queues, "
        "else strego-workers)",
    )
    parser.add_argument("--prefix", default="strego", help="Redis key prefix (default %(default)s)")
    parser.add_argument("--host", default="127.0.0.1", help="UI address (default %(default)s)")
    parser.add_argument("--port", type=port, default=8080, help="UI port (default %(default)s)")
    parser.add_argument(
        "--concurrency",
        type=positive_int,
        default=8,
        help="worker concurrency (default %(default)s)",
    )
    parser.add_argument(
        "--rate",
        type=positive_float,
        default=4.0,
        help="demo tasks per second (default %(default)s)",
    )
    parser.add_argument(
        "--postgres",
        metavar="DSN",
        default=os.environ.get("STREGO_POSTGRES_DSN"),
        help="record history in this PostgreSQL database (migrated first), so the UI shows "
        "History and full task timelines (env STREGO_POSTGRES_DSN)",
    )
    parser.add_argument("--no-producer", action="store_true", help="do not enqueue demo tasks")
    add_exposure_options(parser)
    parser.add_argument(
        "--log-level",
        default="WARNING",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        type=str.upper,
    )
    parser.set_defaults(func=run_dev)


def run_dev(args: argparse.Namespace) -> int:
    """Claim the UI port, start Redis, run until a signal; Redis is always stopped."""
    configure_logging(args.log_level)
    try:  # the demo UI has no auth: beyond loopback only when told so
        check_exposure(args.host, has_auth=False, insecure=args.insecure)
    except ValueError as exc:
        raise UsageError(str(exc).replace("without --auth or --token ", "")) from None
    with listening_socket(args.host, args.port) as sock:
        redis = None if args.redis else _start_redis()
        try:
            url = args.redis or redis.url  # type: ignore[union-attr]
            return asyncio.run(_serve(args, url, sock, embedded=redis is not None))
        finally:
            if redis is not None:
                redis.cleanup()


def _start_redis() -> EmbeddedRedis:
    try:
        return EmbeddedRedis().start()
    except FileNotFoundError as exc:
        raise CommandError(f"{exc} (or pass --redis URL)") from exc
    except (RuntimeError, TimeoutError) as exc:
        raise CommandError(f"the embedded redis-server did not start: {exc}") from exc


async def _serve(args: argparse.Namespace, url: str, sock: socket.socket, *, embedded: bool) -> int:
    """Start worker, UI and producer; on a signal, stop them in reverse order."""
    stop = _stop_on_signals()
    async with contextlib.AsyncExitStack() as stack:
        broker = await stack.enter_async_context(
            RedisBroker(url, group=args.group, prefix=args.prefix)
        )
        ui_broker = await stack.enter_async_context(
            RedisBroker(url, group=args.group, prefix=args.prefix)
        )
        await ping(broker, url)
        store = await _history(stack, args.postgres) if args.postgres else None
        server = build_server(broker, concurrency=args.concurrency, store=store)
        await stack.enter_async_context(server)
        ui = _ui_server(ui_broker, sock, allowed_hosts(args.host, args.allowed_host), store)
        watched: list[asyncio.Task[Any]] = [asyncio.create_task(stop.wait())]
        if ui is not None:
            watched.append(asyncio.create_task(ui.serve(sockets=[sock])))
            stack.push_async_callback(_stop_ui, ui, watched[-1])
        side_tasks = [asyncio.create_task(_status(Inspector(broker)))]
        if not args.no_producer:
            producer = Producer(Client(broker, store=store), rate=args.rate)
            side_tasks.append(asyncio.create_task(producer.run()))
        stack.push_async_callback(_cancel, side_tasks)
        _banner(url, embedded, sock, args, ui is not None)
        await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
        if not stop.is_set():
            log.error("the web UI stopped unexpectedly; shutting down")
        watched[0].cancel()
        print("\nstopping: producer, UI, worker" + (", Redis" if embedded else ""), flush=True)
    return 0 if stop.is_set() else 1


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _stop_ui(ui: Any, serving: asyncio.Task[Any]) -> None:
    ui.should_exit = True
    await asyncio.gather(serving, return_exceptions=True)


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def _history(stack: contextlib.AsyncExitStack, dsn: str) -> Any:
    """A started PostgresStore on a migrated schema (closed with the stack), or a
    CommandError saying what is wrong in one line."""
    try:
        from strego.store.postgres import PostgresStore
    except ImportError as exc:
        raise CommandError(f"--postgres needs the postgres extra ({exc})") from exc
    store = PostgresStore(dsn)
    try:
        await store.migrate()
        await stack.enter_async_context(store)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CommandError(f"cannot use --postgres {redact(dsn)}: {first}") from exc
    return store


def _ui_server(
    broker: RedisBroker, sock: socket.socket, hosts: list[str], store: Any = None
) -> Any:
    """A uvicorn server for the UI app, or None (with a warning) if the UI is missing."""
    try:
        import uvicorn
    except ImportError as exc:
        log.warning("web UI unavailable (%s): install strego[ui]", exc)
        return None
    try:
        from strego.ui import create_app

        app = create_app(broker, store, allowed_hosts=hosts)
    except Exception as exc:  # the demo still runs: worker, producer and the CLI work
        log.warning("web UI failed to start: %s", exc, exc_info=True)
        return None

    class _Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield  # strego dev owns SIGINT/SIGTERM and sets should_exit itself

    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    return _Server(config)


def _banner(
    url: str, embedded: bool, sock: socket.socket, args: argparse.Namespace, has_ui: bool
) -> None:
    host, port = sock.getsockname()[:2]
    where = "embedded, stopped on exit" if embedded else "yours, left as it is"
    queues = " ".join(f"{q}(weight {w})" for q, w in DEMO_QUEUES.items())
    ui_line = f"http://{host}:{port}" if has_ui else "unavailable (install strego[ui])"
    print(
        f"strego dev is running\n"
        f"  UI:      {ui_line}\n"
        f"  Redis:   {redact(url)} ({where})\n"
        f"  Worker:  queues {queues}, concurrency {args.concurrency}\n"
        f"  Demo:    {'off' if args.no_producer else f'~{args.rate:g} tasks/s'}\n"
        f"  History: {redact(args.postgres) if args.postgres else 'off (--postgres DSN)'}\n"
        f"Try:  {_strego_command()} stats --watch --redis {redact(url)}{_non_default(args)}\n"
        f"Press Ctrl-C to stop.",
        flush=True,
    )


def _strego_command() -> str:
    """``strego`` if it is on PATH, else its full path (scripts/dev runs it from .venv)."""
    if shutil.which("strego"):
        return "strego"
    return str(Path(sys.executable).parent / "strego")


def _non_default(args: argparse.Namespace) -> str:
    extra = "" if args.group is None else f" --group {args.group}"
    return extra + ("" if args.prefix == "strego" else f" --prefix {args.prefix}")


async def _status(inspector: Inspector) -> None:
    """A one-line summary every few seconds, so the terminal shows life too."""
    while True:
        await asyncio.sleep(_STATUS_EVERY_S)
        try:
            queues = await inspector.queues()
        except Exception as exc:
            log.warning("status: %s", exc)
            continue
        parts = [f"{label} {sum(getattr(q, field) for q in queues)}" for label, field in _STATUS]
        print("  ".join(parts), flush=True)


# (label, QueueInfo field) of the status line: totals first, then what is in flight now.
_STATUS = (
    ("processed", "processed"),
    ("failed", "failed"),
    ("dead", "dead_total"),
    ("|  pending", "pending"),
    ("active", "active"),
    ("scheduled", "scheduled"),
    ("retry", "retry"),
)
