"""Periodic: one declared schedule, and the pure tick arithmetic every worker shares.

Ticks are computed here and nowhere else, from the schedule's definition alone (never
the process clock or time zone), so every worker of every deploy computes the same
ones. Cron matching is ``cronsim``'s, which follows Debian cron's DST rules: a local
time that does not exist fires once at the next valid time; a fixed-time job in a
repeated hour fires once; ``*`` hours fire on every real hour (23 or 25 a day).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from strego.durations import Duration, to_seconds
from strego.errors import ConfigurationError
from strego.task import Task, validate_queue_name

__all__ = ["CATCHUP", "OVERLAP", "Periodic", "PeriodicSpec"]

CATCHUP = ("latest", "all", "none")
OVERLAP = ("allow", "skip")
_TASK_OPTIONS = frozenset({"max_retry", "timeout", "priority", "labels", "serializer"})
_MAX_CATCHUP = 1000  # fired in one script call: bounded work per call
# Run ids are "periodic:<name>:manual-<26-char ULID>" at most: 43 characters more than the
# name, within the 200 any task id may have.
_MAX_NAME = 150


class PeriodicSpec:
    """When a schedule fires: ``cron`` in ``tz``, or every ``every_ms`` since the epoch.

    Pure and cheap; built from a :class:`Periodic` or from the definition stored in
    Redis (what a worker fires from, so the latest deploy's definition wins everywhere).
    """

    __slots__ = ("_zone", "cron", "every_ms", "tz")

    def __init__(self, *, cron: str | None, every_ms: int | None, tz: str) -> None:
        if (cron is None) == (every_ms is None):
            raise ConfigurationError("give exactly one of cron= or every=")
        self.cron = _check_cron(cron) if cron is not None else None
        self.every_ms = every_ms
        self.tz = tz
        self._zone = _zone(tz)

    def next_after(self, ms: int) -> int:
        """The first tick strictly after ``ms`` (epoch milliseconds)."""
        if self.every_ms is not None:
            return (ms // self.every_ms + 1) * self.every_ms
        assert self.cron is not None
        start = datetime.fromtimestamp(ms // 1000, UTC).astimezone(self._zone)
        try:
            found = next(CronSim(self.cron, start))
        except StopIteration:  # no match within 50 years (say "0 0 30 2 *")
            return _NEVER_MS
        return int(found.timestamp()) * 1000

    def iter_from(self, ms: int) -> Iterator[int]:
        """Ticks at or after ``ms``, ascending."""
        tick = self.next_after(ms - 1)
        while tick < _NEVER_MS:
            yield tick
            tick = self.next_after(tick)

    def ticks(self, start: datetime, end: datetime) -> list[datetime]:
        """Aware tick times in ``[start, end)``, in the schedule's zone."""
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("ticks() takes aware datetimes")
        stop = _ms(end)
        out: list[datetime] = []
        for tick in self.iter_from(math.ceil(start.timestamp() * 1000)):
            if tick >= stop:
                break
            out.append(datetime.fromtimestamp(tick / 1000, self._zone))
        return out


_NEVER_MS = 253_402_300_799_000  # year 9999: "never" without a special case


class Periodic:
    """A task enqueued on a schedule by whichever worker Redis lets fire it first.

    ``cron`` (five standard fields) or ``every`` (seconds or ``timedelta``, at least
    1 s; ticks are multiples of it since the Unix epoch). ``tz``: the IANA zone
    ``cron`` is read in. ``catchup``: after an outage, ``"latest"`` runs the last
    missed tick if at most ``max_lateness`` late, ``"all"`` up to ``max_catchup`` of
    them, ``"none"`` none. ``overlap="skip"`` skips a tick while the previous run still
    waits or runs. ``task_options``: ``max_retry, timeout, priority, labels,
    serializer``. Everything is validated here; nothing is sent anywhere.
    """

    __slots__ = (
        "_spec",
        "_task",
        "catchup",
        "max_catchup",
        "max_lateness_s",
        "name",
        "overlap",
        "queue",
        "type",
    )

    def __init__(
        self,
        type: str,
        payload: Any = None,
        *,
        cron: str | None = None,
        every: Duration | None = None,
        name: str | None = None,
        tz: str = "UTC",
        queue: str = "default",
        catchup: str = "latest",
        max_catchup: int = 10,
        max_lateness: Duration = 600.0,
        overlap: str = "allow",
        **task_options: Any,
    ) -> None:
        unknown = sorted(set(task_options) - _TASK_OPTIONS)
        if unknown:
            raise ConfigurationError(
                f"Periodic got unknown options {', '.join(unknown)}; task options are "
                f"{', '.join(sorted(_TASK_OPTIONS))}"
            )
        self.queue = validate_queue_name(queue)
        # A Task checks the type, payload and options exactly as enqueue would.
        self._task = Task(type, payload, queue=queue, **task_options)
        self.type = self._task.type
        self.name = _check_name(type if name is None else name)
        self._spec = PeriodicSpec(cron=cron, every_ms=_every_ms(every), tz=tz)
        if catchup not in CATCHUP:
            raise ConfigurationError(
                f"catchup must be one of {', '.join(CATCHUP)}, got {catchup!r}"
            )
        self.catchup = catchup
        if (
            isinstance(max_catchup, bool)
            or not isinstance(max_catchup, int)
            or not 1 <= max_catchup <= _MAX_CATCHUP
        ):
            raise ConfigurationError(
                f"max_catchup must be an integer 1-{_MAX_CATCHUP}, got {max_catchup!r}"
            )
        self.max_catchup = max_catchup
        self.max_lateness_s = to_seconds(max_lateness, "max_lateness")
        if overlap not in OVERLAP:
            raise ConfigurationError(
                f"overlap must be one of {', '.join(OVERLAP)}, got {overlap!r}"
            )
        self.overlap = overlap

    @property
    def spec(self) -> PeriodicSpec:
        return self._spec

    @property
    def cron(self) -> str | None:
        return self._spec.cron

    @property
    def every(self) -> float | None:
        """The interval in seconds, for ``every`` schedules."""
        return None if self._spec.every_ms is None else self._spec.every_ms / 1000

    @property
    def tz(self) -> str:
        return self._spec.tz

    def ticks(self, start: datetime, end: datetime) -> list[datetime]:
        """The aware tick times in ``[start, end)``, in ``tz`` (what the UI previews)."""
        return self._spec.ticks(start, end)

    def definition(self) -> str:
        """The stored form (JSON, keys sorted): what workers fire from; equal text
        means an equal definition, so re-declaring an unchanged schedule writes nothing."""
        message = self._task.to_message()
        fields: dict[str, Any] = {
            "type": self.type,
            "payload": message.payload.decode("latin-1"),
            "serializer": message.serializer,
            "cron": self.cron,
            "every_ms": self._spec.every_ms,
            "tz": self.tz,
            "catchup": self.catchup,
            "max_catchup": self.max_catchup,
            "max_lateness_ms": int(self.max_lateness_s * 1000),
            "overlap": self.overlap,
            "max_retry": message.max_retry,
            "timeout_s": message.timeout_s,
            "priority": message.priority,
            "labels": dict(message.labels),
        }
        return json.dumps(fields, sort_keys=True, separators=(",", ":"))

    def __repr__(self) -> str:
        when = f"cron={self.cron!r}, tz={self.tz!r}" if self.cron else f"every={self.every:g}"
        return f"Periodic({self.type!r}, name={self.name!r}, queue={self.queue!r}, {when})"


def _check_cron(cron: object) -> str:
    if not isinstance(cron, str) or len(cron.split()) != 5:
        raise ConfigurationError(
            f"cron must be 5 standard fields (minute hour day month weekday), got {cron!r}"
        )
    try:
        CronSim(cron, datetime(2000, 1, 1, tzinfo=UTC))
    except (CronSimError, ValueError) as exc:
        raise ConfigurationError(f"invalid cron expression {cron!r}: {exc}") from exc
    return cron


def _zone(tz: object) -> ZoneInfo:
    if not isinstance(tz, str) or not tz:
        raise ConfigurationError(f"tz must be an IANA time zone name, got {tz!r}")
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigurationError(
            f"unknown time zone {tz!r} (an IANA name such as 'Europe/Berlin')"
        ) from exc


def _every_ms(every: Duration | None) -> int | None:
    if every is None:
        return None
    seconds = to_seconds(every, "every", allow_zero=False)
    if seconds < 1:
        raise ConfigurationError(f"every must be at least 1 second, got {seconds:g}")
    return round(seconds * 1000)


def _check_name(name: object) -> str:
    # Names go into task ids ("periodic:<name>:<tick>") and key names: printable, no
    # newline (ids never hold one), bounded.
    if (
        not isinstance(name, str)
        or not name.strip()
        or len(name) > _MAX_NAME
        or any(not ch.isprintable() for ch in name)
    ):
        raise ConfigurationError(
            f"periodic name must be 1-{_MAX_NAME} printable characters, got {name!r}"
        )
    return name


def _ms(moment: datetime) -> int:
    return math.ceil(moment.timestamp() * 1000)
