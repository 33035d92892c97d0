"""Global limits: RateLimit (GCRA) and ConcurrencyLimit, shared by every worker.

These are declarations only (validated at construction, no I/O): a Server attaches
them to task types (``@server.handle(type, limits=[...])``) or queues
(``Server(queue_limits={...})``), and the broker keeps their state in Redis. See
docs/limits.md for the algorithms and guarantees.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from strego.durations import Duration, to_seconds
from strego.errors import ConfigurationError

if TYPE_CHECKING:
    from strego.task import Task

__all__ = ["ConcurrencyLimit", "Limit", "LimitKey", "RateLimit", "limit_key", "queue_limits"]

LimitKey = Callable[["Task"], str]

# A name lands in a Redis Cluster hash tag: no braces, no whitespace or control chars.
_NAME = re.compile(r"^[^\s{}\x00-\x1f\x7f]{1,100}$")
_MAX_KEY = 200  # a key function's value longer than this is hashed into the key name


def _name(value: object) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise ConfigurationError(
            f"a limit's name must be 1-100 characters without whitespace, braces or "
            f"control characters, got {value!r}"
        )
    return value


def _positive_int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{what} must be an integer >= 1, got {value!r}")
    return value


def _key(value: object) -> LimitKey | None:
    if value is not None and not callable(value):
        raise ConfigurationError(f"a limit's key must be a function (task) -> str, got {value!r}")
    return value


@dataclasses.dataclass(frozen=True, slots=True, init=False)
class RateLimit:
    """At most ``limit`` starts per ``per`` seconds across every worker (GCRA).

    ``burst=None`` (1) spaces starts evenly, ``per / limit`` apart; ``burst=n`` lets n
    start at once after a quiet spell (a window of ``per`` then holds at most
    ``limit + n - 1`` starts). ``key=(task) -> str`` keeps one limiter per key.
    """

    name: str
    limit: int
    per_s: float
    burst: int
    key: LimitKey | None

    def __init__(
        self,
        name: str,
        limit: int,
        per: Duration = 1.0,
        *,
        burst: int | None = None,
        key: LimitKey | None = None,
    ) -> None:
        per_s = to_seconds(per, "per", allow_zero=False)
        limit = _positive_int(limit, "limit")
        if per_s / limit < 0.000_01:
            raise ConfigurationError(
                f"RateLimit {name!r}: {limit} per {per_s:g}s is more than 100000 a second"
            )
        object.__setattr__(self, "name", _name(name))
        object.__setattr__(self, "limit", limit)
        object.__setattr__(self, "per_s", per_s)
        object.__setattr__(self, "burst", 1 if burst is None else _positive_int(burst, "burst"))
        object.__setattr__(self, "key", _key(key))

    @property
    def interval_ms(self) -> float:
        """The emission interval: one start per this many milliseconds."""
        return self.per_s * 1000 / self.limit

    def __repr__(self) -> str:
        return f"RateLimit({self.name!r}, {self.limit}, per={self.per_s:g}, burst={self.burst})"


@dataclasses.dataclass(frozen=True, slots=True, init=False)
class ConcurrencyLimit:
    """At most ``limit`` handlers running at once across every worker.

    A slot is a lease a worker renews while the task runs: a crashed worker's slots
    free within ``claim_stale_after``. ``key=(task) -> str`` keeps one limiter per key.
    """

    name: str
    limit: int
    key: LimitKey | None

    def __init__(self, name: str, limit: int, *, key: LimitKey | None = None) -> None:
        object.__setattr__(self, "name", _name(name))
        object.__setattr__(self, "limit", _positive_int(limit, "limit"))
        object.__setattr__(self, "key", _key(key))

    def __repr__(self) -> str:
        return f"ConcurrencyLimit({self.name!r}, {self.limit})"


Limit = RateLimit | ConcurrencyLimit


def limit_key(limit: Limit, task: Task) -> str:
    """The limiter key ``task`` counts against ('' for a limit without ``key``)."""
    if limit.key is None:
        return ""
    value = limit.key(task)
    if not isinstance(value, str):
        raise TypeError(f"the key function of limit {limit.name!r} returned {value!r}, not a str")
    if len(value) > _MAX_KEY or "{" in value or "}" in value:
        import hashlib  # rare: only oversized or brace-bearing keys

        value = "h:" + hashlib.sha1(value.encode(), usedforsecurity=False).hexdigest()
    return value


def handler_limits(limits: Iterable[Limit] | None) -> tuple[Limit, ...]:
    """Validate the ``limits=`` of a handler: concurrency limits are checked first
    (releasing a slot is free; a rate limiter's spent start is not)."""
    found = tuple(limits or ())
    for limit in found:
        if not isinstance(limit, RateLimit | ConcurrencyLimit):
            raise ConfigurationError(
                f"limits must be RateLimit or ConcurrencyLimit objects, got {limit!r}"
            )
    _unique_names(found)
    return tuple(sorted(found, key=lambda lim: isinstance(lim, RateLimit)))


def queue_limits(
    value: Mapping[str, Limit | Iterable[Limit]] | None,
) -> dict[str, tuple[Limit, ...]]:
    """Validate ``Server(queue_limits=...)``: {queue: limit or [limits]}.

    A queue-wide limit is checked inside the fetch script, which cannot call a key
    function: such a limit takes no ``key``.
    """
    from strego.task import validate_queue_name

    found: dict[str, tuple[Limit, ...]] = {}
    for queue, limits in (value or {}).items():
        items = (limits,) if isinstance(limits, RateLimit | ConcurrencyLimit) else limits
        checked = handler_limits(items)
        for limit in checked:
            if limit.key is not None:
                raise ConfigurationError(
                    f"queue limit {limit.name!r} of queue {queue!r} cannot take a key: "
                    "queue-wide limits are checked inside the fetch script"
                )
        found[validate_queue_name(queue)] = checked
    return found


def _unique_names(limits: tuple[Limit, ...]) -> None:
    names = [limit.name for limit in limits]
    if len(set(names)) != len(names):
        raise ConfigurationError(f"two limits share a name: {names}")
