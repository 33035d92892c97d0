"""Server: register handlers, then run workers (blocking or inside an event loop)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Executor
from datetime import timedelta
from typing import Any, TypeVar, overload

from strego.broker.base import WorkerBroker
from strego.durations import Duration
from strego.errors import ConfigurationError
from strego.handlers import HandlerFn, HandlerRegistry
from strego.limits import Limit, handler_limits
from strego.middleware import Middleware, process_hooks
from strego.periodic.schedule import Periodic
from strego.retry import Jitter, RetryPolicyFn
from strego.serializers import Serializer, SerializerRegistry
from strego.store.base import NullHistory, TaskHistory
from strego.worker.config import ServerConfig
from strego.worker.engine import Engine, cancel_and_wait
from strego.worker.periodic import PeriodicFirer, check_schedules
from strego.worker.probes import Endpoint, ProbeServer, Response, health
from strego.worker.runner import ResultLimits, Runner
from strego.worker.stats import WorkerStats
from strego.worker.workflows import upstream_loader

__all__ = ["Server"]

log = logging.getLogger("strego")
F = TypeVar("F", bound=HandlerFn)


class Server:
    """A worker: takes tasks from its queues and runs their handlers.

    Construction is pure (no I/O); connections open in :meth:`start`.
    """

    def __init__(
        self,
        broker: WorkerBroker,
        *,
        queues: Iterable[str] | Mapping[str, int] = ("default",),
        concurrency: int = 10,
        strict_priority: bool = False,
        shutdown_timeout: Duration = 30.0,
        retry_base: Duration = 1.0,
        retry_max: Duration = 600.0,
        retry_jitter: Jitter | str = Jitter.BOUNDED,
        processed_ttl: Duration = 86400.0,
        max_deliveries: int = 10,
        keep_completed: int = 1000,
        cleanup_interval: Duration | None = 600.0,
        cleanup_idle: Duration = 3600.0,
        dead_letter_max: int = 10_000,
        dead_letter_ttl: Duration = timedelta(days=7),
        unknown_type_grace: Duration = 3600.0,
        result_ttl: Duration = 3600.0,
        result_max_bytes: int = 1_048_576,
        serializers: Iterable[Serializer] = (),
        store: TaskHistory | None = None,
        middleware: Iterable[Middleware] = (),
        metrics_port: int | None = None,
        health_port: int | None = None,
        queue_limits: Mapping[str, Limit | Iterable[Limit]] | None = None,
        periodic: Iterable[Periodic] = (),
    ) -> None:
        # Kept as given, so reconfigure() validates a change exactly like construction.
        self._options: dict[str, Any] = dict(
            queues=queues,
            concurrency=concurrency,
            strict_priority=strict_priority,
            shutdown_timeout=shutdown_timeout,
            retry_base=retry_base,
            retry_max=retry_max,
            retry_jitter=retry_jitter,
            processed_ttl=processed_ttl,
            max_deliveries=max_deliveries,
            keep_completed=keep_completed,
            cleanup_interval=cleanup_interval,
            cleanup_idle=cleanup_idle,
            dead_letter_max=dead_letter_max,
            dead_letter_ttl=dead_letter_ttl,
            unknown_type_grace=unknown_type_grace,
            middleware=middleware,
            metrics_port=metrics_port,
            health_port=health_port,
            result_ttl=result_ttl,
            result_max_bytes=result_max_bytes,
            queue_limits=queue_limits,
        )
        self.config = ServerConfig.build(**self._options)
        self.broker = broker
        self.handlers = HandlerRegistry()
        self.limits: dict[str, tuple[Limit, ...]] = {}  # task type → its global limits
        self.serializers = SerializerRegistry(serializers)
        self.history: TaskHistory = store if store is not None else NullHistory()
        self.periodic = check_schedules(periodic)
        self._engine: Engine | None = None
        self._probes: list[ProbeServer] = []

    @overload
    def handle(
        self,
        task_type: str,
        *,
        retry_policy: RetryPolicyFn | None = None,
        limits: Iterable[Limit] | None = None,
    ) -> Callable[[F], F]: ...

    @overload
    def handle(
        self,
        task_type: str,
        fn: F,
        *,
        retry_policy: RetryPolicyFn | None = None,
        limits: Iterable[Limit] | None = None,
    ) -> F: ...

    def handle(
        self,
        task_type: str,
        fn: Any = None,
        *,
        retry_policy: RetryPolicyFn | None = None,
        limits: Iterable[Limit] | None = None,
    ) -> Any:
        """Register the handler of ``task_type``: as a decorator or called directly.

        ``limits``: global :class:`~strego.RateLimit` / :class:`~strego.ConcurrencyLimit`
        its tasks count against, across every worker (docs/limits.md).
        """
        checked = handler_limits(limits)

        def register(func: Any) -> Any:
            self.handlers.register(task_type, func, retry_policy)
            if checked:
                self.limits[task_type] = checked
            else:
                self.limits.pop(task_type, None)
            return func

        if fn is not None:
            return register(fn)

        def decorator(func: F) -> F:
            register(func)
            return func

        return decorator

    def reconfigure(self, **changes: object) -> None:
        """Change options before start (the CLI's --concurrency / --queues overrides).

        Every change is validated as at construction; on an error nothing changes.
        """
        if self._engine is not None:
            raise RuntimeError("cannot reconfigure a running server")
        unknown = sorted(set(changes) - set(self._options))
        if unknown:
            raise ConfigurationError(f"Server has no option {', '.join(unknown)}")
        options = {**self._options, **changes}
        self.config = ServerConfig.build(**options)
        self._options = options

    @property
    def running(self) -> bool:
        return self._engine is not None

    @property
    def in_flight(self) -> int:
        return self._engine.in_flight if self._engine else 0

    async def start(self) -> None:
        """Connect, create consumer groups and start processing in the background."""
        if self._engine is not None:
            raise RuntimeError("server already started")
        if not len(self.handlers):
            log.warning("server started with no handlers: every task will be dead-lettered")
        await self.history.start()
        stats = WorkerStats(list(self.config.queues), lambda t: self.handlers.get(t) is not None)
        self._engine = Engine(
            self.config,
            self.broker,
            self._make_runner,
            self.history,
            stats,
            self.limits,
            periodic=self._periodic_firer(),
        )
        try:
            await self._start_probes()  # first: /healthz says "starting" while Redis is away
            await self._engine.start()
        except BaseException:  # refused (a wrong group...) or cancelled while waiting
            engine, self._engine = self._engine, None
            await engine.stop()
            await self._stop_probes()
            await self.history.aclose()
            raise
        log.info(
            "worker %s started on queues %s (concurrency %d)",
            self.broker.consumer,
            ",".join(self.config.queues),
            self.config.concurrency,
            extra={"worker": self.broker.consumer},
        )

    def _periodic_firer(self) -> PeriodicFirer | None:
        if not self.periodic:
            return None
        periodics = getattr(self.broker, "periodics", None)
        if periodics is None:
            raise ConfigurationError(
                f"{type(self.broker).__name__} cannot run periodic tasks (no .periodics)"
            )
        return PeriodicFirer(periodics, self.periodic)

    def _make_runner(self, executor: Executor) -> Runner:
        return Runner(
            self.handlers,
            self.serializers,
            self.config.retry,
            self.config.max_deliveries,
            executor,
            self.config.unknown_type_grace_s,
            process_hooks(self.config.middleware),
            ResultLimits(ttl_s=self.config.result_ttl_s, max_bytes=self.config.result_max_bytes),
            upstream_loader(self.broker),
        )

    @property
    def probe_ports(self) -> dict[str, int]:
        """The ports serving ``/metrics`` and ``/healthz`` (bound ones, once started)."""
        return {path: probe.port for probe in self._probes for path in probe.paths}

    async def _start_probes(self) -> None:
        by_port: dict[int, dict[str, Endpoint]] = {}
        if self.config.metrics_port is not None:
            from strego.worker import prometheus  # the [prometheus] extra: only when asked

            registry = prometheus.worker_registry(self._metrics_source)

            async def metrics(accept: str) -> Response:
                body, content_type = prometheus.render(registry, accept)
                return 200, content_type, body

            by_port.setdefault(self.config.metrics_port, {})["/metrics"] = metrics
        if self.config.health_port is not None:
            by_port.setdefault(self.config.health_port, {})["/healthz"] = self._healthz
        for port, endpoints in by_port.items():
            probe = ProbeServer("0.0.0.0", port, endpoints)
            await probe.start()
            self._probes.append(probe)

    def _metrics_source(self) -> tuple[WorkerStats, Mapping[str, int]] | None:
        engine = self._engine
        return None if engine is None else (engine.stats, engine.leases.running())

    async def _healthz(self, accept: str) -> Response:
        return health(self._engine.liveness() if self._engine is not None else None)

    async def _stop_probes(self) -> None:
        probes, self._probes = self._probes, []
        for probe in probes:
            await probe.stop()

    async def stop(self) -> None:
        """Graceful stop: finish in-flight tasks (up to ``shutdown_timeout``), then exit."""
        engine, self._engine = self._engine, None
        if engine is None:
            return
        await engine.stop()
        await self._stop_probes()
        await self.history.aclose()
        log.info("worker %s stopped", self.broker.consumer, extra={"worker": self.broker.consumer})

    async def __aenter__(self) -> Server:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def run(self) -> None:
        """Run until SIGINT or SIGTERM, then shut down gracefully. Blocks.

        Uses uvloop when it is installed (the ``strego[uvloop]`` extra).
        """
        with asyncio.Runner(loop_factory=_uvloop_factory()) as runner:
            runner.run(self._run_until_signalled())

    async def _run_until_signalled(self) -> None:
        # run() is a process entry point, so it owns the signals (as the CLI does).
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            # Start-up waits (Redis unreachable, a crashed predecessor's consumer name)
            # must give way to a signal: a pod stuck there ignored SIGTERM before.
            starting = asyncio.create_task(self.start())
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not starting.done():
                log.info("signal received while starting, shutting down")
                await cancel_and_wait([starting])
            else:
                starting.result()  # a refusal (ConfigurationError) ends run() here
                await stopping
                log.info("signal received, shutting down gracefully")
            stopping.cancel()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(Exception):
                    loop.remove_signal_handler(sig)
            await self.stop()
            await self.broker.aclose()


def _uvloop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory
