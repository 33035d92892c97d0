"""The history page: query parameters → a store search, and the seam the UI reads through.

``HistoryReader`` is the narrow part of a history store the UI needs (PostgresStore
satisfies it). Bad input (an unknown state, a malformed date) becomes a message on the
page or a 400 from the API, never a 500.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

from strego.errors import ConfigurationError
from strego.redaction import redact
from strego.store.query import SortField, TaskDetail, TaskFilter, TaskPage
from strego.task import TaskState

__all__ = [
    "HistoryQuery",
    "HistoryReader",
    "HistoryUnavailable",
    "HistoryView",
    "QueryError",
    "get_detail",
    "parse_history_query",
    "search",
]

log = logging.getLogger("strego.ui")
MAX_LIMIT = 200


@runtime_checkable
class HistoryReader(Protocol):
    """Read access to task history."""

    async def search(
        self,
        flt: TaskFilter | None = None,
        *,
        sort: SortField = SortField.CREATED,
        descending: bool = True,
        limit: int = 50,
        cursor: str | None = None,
    ) -> TaskPage: ...

    async def count(self, flt: TaskFilter | None = None) -> int: ...

    async def get(self, task_id: str) -> TaskDetail | None: ...


class QueryError(ValueError):
    """A history query parameter is invalid; the message says which and why."""


class HistoryUnavailable(RuntimeError):
    """The history store failed (e.g. PostgreSQL is down); Redis pages still work."""


async def get_detail(history: HistoryReader | None, task_id: str) -> TaskDetail | None:
    """The stored task, or None (also when the store fails: Redis alone must suffice)."""
    if history is None:
        return None
    try:
        return await history.get(task_id)
    except Exception as exc:  # any driver error: degrade to the Redis view, log why
        log.warning("strego UI: history lookup of %r failed: %s", task_id, exc)
        return None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class HistoryQuery:
    """A parsed search: the filter plus ordering and paging."""

    filter: TaskFilter
    sort: SortField = SortField.CREATED
    descending: bool = True
    limit: int = 50
    cursor: str | None = None


def _parse_time(name: str, value: str) -> datetime:
    """ISO 8601 date or datetime; naive values are taken as UTC."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise QueryError(f"{name}: not an ISO date/time: {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _parse_labels(values: list[str]) -> dict[str, str]:
    labels = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise QueryError(f"label: expected key=value, got {item!r}")
        labels[key.strip()] = value.strip()
    return labels


def _parse_int(name: str, value: str | None, default: int, low: int, high: int) -> int:
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        raise QueryError(f"{name}: not a number: {value!r}") from None
    return max(low, min(high, number))


def parse_history_query(params: Mapping[str, str], labels: list[str]) -> HistoryQuery:
    """Build a query from request parameters (empty ones are ignored)."""

    if any("\x00" in v for v in (*params.values(), *labels)):
        raise QueryError("parameters must not contain NUL characters")

    def get(name: str) -> str | None:
        value = params.get(name, "").strip()
        return value or None

    states = [s for s in (get("state") or "").split(",") if s]
    if unknown := [s for s in states if s not in TaskState._value2member_map_]:
        raise QueryError(f"state: unknown {', '.join(unknown)}")
    sort = get("sort") or SortField.CREATED.value
    if sort not in SortField._value2member_map_:
        raise QueryError(f"sort: must be one of {', '.join(f.value for f in SortField)}")
    order = get("order") or "desc"
    if order not in ("asc", "desc"):
        raise QueryError("order: must be asc or desc")
    times = {
        name: _parse_time(name, value)
        for name in ("created_after", "created_before", "finished_after", "finished_before")
        if (value := get(name))
    }
    try:
        flt = TaskFilter(
            queue=get("queue"),
            states=frozenset(TaskState(s) for s in states),
            type=get("type"),
            labels=_parse_labels([v for v in labels if v.strip()]),
            text=get("q"),
            **times,
        )
    except ConfigurationError as exc:
        raise QueryError(str(exc)) from None
    return HistoryQuery(
        filter=flt,
        sort=SortField(sort),
        descending=order == "desc",
        limit=_parse_int("limit", get("limit"), 50, 1, MAX_LIMIT),
        cursor=get("cursor"),
    )


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class HistoryView:
    query: HistoryQuery
    page: TaskPage
    total: int


async def search(history: HistoryReader, query: HistoryQuery) -> HistoryView:
    """One page of matches and the exact count of all of them."""
    try:
        page = await history.search(
            query.filter,
            sort=query.sort,
            descending=query.descending,
            limit=query.limit,
            cursor=query.cursor,
        )
        total = await history.count(query.filter)
    except ValueError as exc:  # ConfigurationError too: e.g. a cursor from another sort
        raise QueryError(str(exc)) from None
    except Exception as exc:  # any driver error: say so on the page, do not 500
        log.warning("strego UI: history search failed: %s", exc)
        raise HistoryUnavailable(redact(f"the history store failed: {exc}")) from exc
    return HistoryView(query=query, page=page, total=total)
