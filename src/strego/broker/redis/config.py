"""RedisBroker settings, validated once at construction."""

from __future__ import annotations

import dataclasses

from strego.durations import Duration, to_seconds
from strego.errors import ConfigurationError

DEFAULT_GROUP = "strego-workers"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class BrokerConfig:
    group: str  # the one given, else DEFAULT_GROUP
    group_given: bool  # False: use the group recorded for each queue (see group_for)
    consumer: str
    batch_size: int
    block_s: float
    claim_stale_after_s: float
    claim_check_interval_s: float
    prefix: str
    socket_timeout_s: float
    enqueue_attempts: int

    @classmethod
    def build(
        cls,
        *,
        group: str | None,
        consumer: str,
        batch_size: int,
        block: Duration,
        claim_stale_after: Duration,
        claim_check_interval: Duration,
        prefix: str,
        socket_timeout: Duration,
        enqueue_attempts: int,
    ) -> BrokerConfig:
        given = group is not None
        group = DEFAULT_GROUP if group is None else group
        for name, value in (("group", group), ("consumer", consumer), ("prefix", prefix)):
            if not isinstance(value, str) or not value or any(c in value for c in " {}\n"):
                raise ConfigurationError(
                    f"{name} must be a non-empty string without spaces or braces"
                )
        for name, number in (("batch_size", batch_size), ("enqueue_attempts", enqueue_attempts)):
            if isinstance(number, bool) or not isinstance(number, int) or number < 1:
                raise ConfigurationError(f"{name} must be an integer >= 1, got {number!r}")
        return cls(
            group=group,
            group_given=given,
            consumer=consumer,
            batch_size=batch_size,
            block_s=to_seconds(block, "block", allow_zero=False),
            claim_stale_after_s=to_seconds(
                claim_stale_after, "claim_stale_after", allow_zero=False
            ),
            claim_check_interval_s=to_seconds(
                claim_check_interval, "claim_check_interval", allow_zero=False
            ),
            prefix=prefix,
            socket_timeout_s=to_seconds(socket_timeout, "socket_timeout", allow_zero=False),
            enqueue_attempts=enqueue_attempts,
        )
