"""The PostgresStore's options, validated once when the store is built."""

from __future__ import annotations

import dataclasses

from strego.durations import Duration, to_seconds
from strego.errors import ConfigurationError

__all__ = ["StoreConfig"]

TIMELINE_CAP = 50
"""Transitions kept per task. A task with max_retry=3 makes at most ~10."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class StoreConfig:
    """Connection and write-behind settings (see ``PostgresStore`` for their meaning)."""

    dsn: str = dataclasses.field(repr=False)  # it may hold a password
    pool_size: int = 10
    batch_size: int = 500
    flush_interval_s: float = 0.1
    buffer_limit: int = 100_000
    retry_max_s: float = 5.0
    close_timeout_s: float = 5.0
    connect_timeout_s: float = 5.0
    write_timeout_s: float = 30.0

    @classmethod
    def build(
        cls,
        dsn: str,
        *,
        pool_size: int,
        batch_size: int,
        flush_interval: Duration,
        buffer_limit: int,
        retry_max: Duration,
        close_timeout: Duration,
        connect_timeout: Duration,
    ) -> StoreConfig:
        """Validate the public keyword arguments; raises ConfigurationError."""
        if not isinstance(dsn, str) or not dsn.strip():
            raise ConfigurationError("dsn must be a non-empty PostgreSQL connection string")
        for name, value in (
            ("pool_size", pool_size),
            ("batch_size", batch_size),
            ("buffer_limit", buffer_limit),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"{name} must be an int >= 1, got {value!r}")
        if buffer_limit < batch_size:
            raise ConfigurationError(
                f"buffer_limit ({buffer_limit}) must be >= batch_size ({batch_size})"
            )
        return cls(
            dsn=dsn,
            pool_size=pool_size,
            batch_size=batch_size,
            flush_interval_s=to_seconds(flush_interval, "flush_interval", allow_zero=False),
            buffer_limit=buffer_limit,
            retry_max_s=to_seconds(retry_max, "retry_max", allow_zero=False),
            close_timeout_s=to_seconds(close_timeout, "close_timeout"),
            connect_timeout_s=to_seconds(connect_timeout, "connect_timeout", allow_zero=False),
        )
