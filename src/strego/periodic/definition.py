"""A stored schedule definition, read back: what a worker fires from.

Workers fire from the definition in Redis, not from their own declaration, so the
latest deploy's definition wins everywhere at once (an old worker still running fires
the new one). A definition that cannot be read is reported, never fired.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from strego.envelope import TaskMessage
from strego.errors import ConfigurationError
from strego.periodic.schedule import CATCHUP, OVERLAP, PeriodicSpec

__all__ = ["Definition", "task_id"]


def task_id(name: str, tick_ms: int) -> str:
    """The deterministic id of the run of ``name`` at ``tick_ms``."""
    return f"periodic:{name}:{tick_ms}"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Definition:
    name: str
    queue: str
    text: str  # as stored: the compare-and-set compares it
    spec: PeriodicSpec
    type: str
    payload: bytes
    serializer: str
    catchup: str
    max_catchup: int
    max_lateness_ms: int
    overlap: str
    max_retry: int
    timeout_s: float | None
    priority: int
    labels: Mapping[str, str]

    @classmethod
    def parse(cls, name: str, queue: str, text: str) -> Definition:
        """Read a stored definition; ConfigurationError says what is wrong."""
        try:
            raw: Any = json.loads(text)
            if not isinstance(raw, dict):
                raise ValueError("not a JSON object")
            every_ms = raw.get("every_ms")
            if every_ms is not None and (not isinstance(every_ms, int) or every_ms < 1000):
                raise ValueError(f"every_ms {every_ms!r}")
            spec = PeriodicSpec(cron=raw.get("cron"), every_ms=every_ms, tz=str(raw["tz"]))
            found = cls(
                name=name,
                queue=queue,
                text=text,
                spec=spec,
                type=str(raw["type"]),
                payload=str(raw.get("payload", "")).encode("latin-1"),
                serializer=str(raw.get("serializer", "json")),
                catchup=str(raw.get("catchup", "latest")),
                max_catchup=int(raw.get("max_catchup", 10)),
                max_lateness_ms=int(raw.get("max_lateness_ms", 600_000)),
                overlap=str(raw.get("overlap", "allow")),
                max_retry=int(raw.get("max_retry", 3)),
                timeout_s=None if raw.get("timeout_s") is None else float(raw["timeout_s"]),
                priority=int(raw.get("priority", 0)),
                labels={str(k): str(v) for k, v in dict(raw.get("labels") or {}).items()},
            )
        except (ValueError, KeyError, TypeError, UnicodeError) as exc:
            raise ConfigurationError(
                f"schedule {name!r} has an unreadable definition: {exc}"
            ) from exc
        if found.catchup not in CATCHUP or found.overlap not in OVERLAP:
            raise ConfigurationError(f"schedule {name!r} has an unknown catchup/overlap")
        if not 0 <= found.priority <= 10 or found.max_catchup < 1:
            raise ConfigurationError(f"schedule {name!r} has an out-of-range option")
        return found

    def message(self, task_id_: str, created_ms: int) -> TaskMessage:
        """The task of one run. Its id is explicit: completing it leaves the processed
        marker an explicit id leaves, so the same tick can never be enqueued again
        while the marker lives (``processed_ttl``)."""
        return TaskMessage(
            id=task_id_,
            type=self.type,
            queue=self.queue,
            payload=self.payload,
            serializer=self.serializer,
            max_retry=self.max_retry,
            timeout_s=self.timeout_s,
            priority=self.priority,
            labels=dict(self.labels),
            created_ms=created_ms,
            explicit_id=True,
        )
