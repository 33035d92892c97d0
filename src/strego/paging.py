"""Pages of task listings and the cursors that link them.

A stream has no ranks: reaching row N of the pending list means reading N entries
(``XRANGE ... COUNT N``), which blocked Redis for a quarter of a second per request on a
1 M-task queue. So listings are paged by position instead:

- ``pending``: the stream id of a page's first or last row (``a<band>.<id>`` = after it,
  ``b<band>.<id>`` = before it), so every page, the last one included, costs one bounded
  ``XRANGE``/``XREVRANGE`` per priority band;
- ``active``: the pending-list id, forward only (``XPENDING`` has no reverse order);
- ``scheduled``, ``retry``, ``dead`` (sorted sets) and ``completed`` (a capped list):
  the rank (``r<n>``), which Redis reaches in O(log N) (sorted sets) or within a list of
  at most ``keep_completed`` entries.

``last`` is the last page. Cursors are opaque to clients: take them from a reply.
"""

from __future__ import annotations

import dataclasses
import re

from strego.records import TaskRecord

__all__ = [
    "LAST",
    "MAX_PAGE",
    "MAX_STREAM_OFFSET",
    "Cursor",
    "TaskPage",
    "parse_cursor",
]

LAST = "last"
#: The most rows one page may hold (what one Redis call may return).
MAX_PAGE = 500
#: ``offset`` over a stream reads every skipped entry: it stops here (use a cursor).
MAX_STREAM_OFFSET = 1000
_CURSOR = re.compile(
    r"^(?:(?P<rank>r\d{1,12})|(?P<dir>[ab])(?P<band>\d{1,2})\.(?P<id>\d{1,20}-\d{1,20}))$"
)


@dataclasses.dataclass(frozen=True, slots=True)
class Cursor:
    """A parsed cursor: ``rank``, or ``after``/``before`` (``band``, stream ``entry_id``),
    or ``last``."""

    rank: int | None = None
    after: bool = True
    band: int = 0
    entry_id: str = ""
    last: bool = False

    def __str__(self) -> str:
        if self.last:
            return LAST
        if self.rank is not None:
            return f"r{self.rank}"
        return f"{'a' if self.after else 'b'}{self.band}.{self.entry_id}"

    @property
    def id_key(self) -> tuple[int, int]:
        """The stream id as numbers, for comparisons."""
        return id_key(self.entry_id)


def id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def parse_cursor(value: str | None) -> Cursor | None:
    """``None`` (first page), ``last``, or a cursor a reply gave; ValueError otherwise."""
    if value is None or value == "":
        return None
    if value == LAST:
        return Cursor(last=True)
    match = _CURSOR.match(value)
    if match is None:
        raise ValueError(f"invalid cursor {value[:60]!r}: use next_cursor/prev_cursor or 'last'")
    if match["rank"]:
        return Cursor(rank=int(match["rank"][1:]))
    return Cursor(after=match["dir"] == "a", band=int(match["band"]), entry_id=match["id"])


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TaskPage:
    """One page of a listing; ``first_row`` (1-based) is known for ranked states."""

    records: list[TaskRecord]
    next_cursor: str | None = None
    prev_cursor: str | None = None
    first_row: int | None = None
