"""Optional task history stores. ``PostgresStore`` needs the ``strego[postgres]`` extra."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from strego.store.base import NullHistory, TaskHistory

if TYPE_CHECKING:
    from strego.store.postgres import PostgresStore

__all__ = ["NullHistory", "PostgresStore", "TaskHistory"]


def __getattr__(name: str) -> Any:
    # Lazy, so ``import strego`` never imports psycopg.
    if name == "PostgresStore":
        from strego.store.postgres import PostgresStore

        return PostgresStore
    raise AttributeError(name)
