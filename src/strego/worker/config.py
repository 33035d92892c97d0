"""ServerConfig: every Server option, validated once at construction."""

from __future__ import annotations

import dataclasses
import importlib.util
from collections.abc import Iterable, Mapping

from strego.durations import Duration, optional_seconds, to_seconds
from strego.errors import ConfigurationError
from strego.limits import Limit, queue_limits
from strego.middleware import Middleware, check_middleware
from strego.retry import Jitter, RetryPolicy
from strego.task import validate_queue_name

__all__ = ["ServerConfig"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ServerConfig:
    queues: Mapping[str, int]  # name → weight, in the given order (strict order)
    concurrency: int
    strict_priority: bool
    shutdown_timeout_s: float
    retry: RetryPolicy
    processed_ttl_s: float
    max_deliveries: int
    keep_completed: int
    cleanup_interval_s: float | None
    cleanup_idle_s: float
    dead_letter_max: int
    dead_letter_ttl_s: float
    unknown_type_grace_s: float
    result_ttl_s: float = 3600.0
    result_max_bytes: int = 1_048_576
    heartbeat_interval_s: float = 5.0
    middleware: tuple[Middleware, ...] = ()
    metrics_port: int | None = None  # /metrics (Prometheus); 0: any free port
    health_port: int | None = None  # /healthz (liveness); the same port: one listener
    queue_limits: Mapping[str, tuple[Limit, ...]] = dataclasses.field(default_factory=dict)

    @classmethod
    def build(
        cls,
        *,
        queues: Iterable[str] | Mapping[str, int],
        concurrency: int,
        strict_priority: bool,
        shutdown_timeout: Duration,
        retry_base: Duration,
        retry_max: Duration,
        retry_jitter: Jitter | str,
        processed_ttl: Duration,
        max_deliveries: int,
        keep_completed: int,
        cleanup_interval: Duration | None,
        cleanup_idle: Duration,
        dead_letter_max: int,
        dead_letter_ttl: Duration,
        unknown_type_grace: Duration,
        middleware: Iterable[Middleware] = (),
        metrics_port: int | None = None,
        health_port: int | None = None,
        result_ttl: Duration = 3600.0,
        result_max_bytes: int = 1_048_576,
        queue_limits: Mapping[str, Limit | Iterable[Limit]] | None = None,
    ) -> ServerConfig:
        return cls(
            queues=_queues(queues),
            concurrency=_int(concurrency, "concurrency", minimum=1),
            strict_priority=bool(strict_priority),
            shutdown_timeout_s=to_seconds(shutdown_timeout, "shutdown_timeout"),
            retry=RetryPolicy.build(retry_base, retry_max, retry_jitter),
            processed_ttl_s=to_seconds(processed_ttl, "processed_ttl", allow_zero=False),
            max_deliveries=_int(max_deliveries, "max_deliveries", minimum=1),
            keep_completed=_int(keep_completed, "keep_completed", minimum=0),
            cleanup_interval_s=optional_seconds(
                cleanup_interval, "cleanup_interval", allow_zero=False
            ),
            cleanup_idle_s=to_seconds(cleanup_idle, "cleanup_idle", allow_zero=False),
            dead_letter_max=_int(dead_letter_max, "dead_letter_max", minimum=1),
            dead_letter_ttl_s=to_seconds(dead_letter_ttl, "dead_letter_ttl", allow_zero=False),
            unknown_type_grace_s=to_seconds(unknown_type_grace, "unknown_type_grace"),
            middleware=check_middleware(middleware),
            metrics_port=check_metrics_port(metrics_port),
            health_port=check_port(health_port, "health_port"),
            result_ttl_s=_result_ttl(result_ttl),
            result_max_bytes=_int(result_max_bytes, "result_max_bytes", minimum=1),
            queue_limits=queue_limits_of(queue_limits),
        )

    @staticmethod
    def build_queues(queues: Iterable[str] | Mapping[str, int]) -> dict[str, int]:
        return _queues(queues)

    @staticmethod
    def check_concurrency(value: object) -> int:
        return _int(value, "concurrency", minimum=1)


def queue_limits_of(
    value: Mapping[str, Limit | Iterable[Limit]] | None,
) -> dict[str, tuple[Limit, ...]]:
    if value is not None and not isinstance(value, Mapping):
        raise ConfigurationError(f"queue_limits must be a {{queue: limit}} mapping, got {value!r}")
    return queue_limits(value)


def check_port(value: object, name: str) -> int | None:
    """A TCP port to listen on, 0 for any free one, or None (off)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise ConfigurationError(f"{name} must be a port number 0-65535 or None, got {value!r}")
    return value


def check_metrics_port(value: object) -> int | None:
    port = check_port(value, "metrics_port")
    if port is not None and importlib.util.find_spec("prometheus_client") is None:
        raise ConfigurationError(
            "metrics_port needs prometheus_client: pip install 'strego[prometheus]'"
        )
    return port


def _int(value: object, name: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigurationError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _result_ttl(value: Duration) -> float:
    seconds = to_seconds(value, "result_ttl")
    if 0 < seconds < 0.001:  # Redis expires in whole milliseconds
        raise ConfigurationError(f"result_ttl must be 0 or at least 1 ms, got {value!r}")
    return seconds


def _queues(queues: Iterable[str] | Mapping[str, int]) -> dict[str, int]:
    if isinstance(queues, str):
        raise ConfigurationError("queues must be a list of names or a {name: weight} mapping")
    if isinstance(queues, Mapping):
        weighted = {
            validate_queue_name(q): _int(w, f"weight of {q!r}", minimum=1)
            for q, w in queues.items()
        }
    else:
        weighted = {validate_queue_name(q): 1 for q in queues}
    if not weighted:
        raise ConfigurationError("a Server needs at least one queue")
    return weighted
