"""PostgreSQL task history (the ``strego[postgres]`` extra): PostgresStore and migrations.

Layout: ``store`` (the public class), ``writer`` (write-behind buffer), ``writes``
(batch merge SQL), ``search`` and ``stats`` (queries), ``schema`` (migrations runner),
``migrations/*.sql`` (the versioned schema).
"""

from __future__ import annotations

from strego.store.postgres.schema import latest_version, migrate_database
from strego.store.postgres.store import PostgresStore

__all__ = ["PostgresStore", "latest_version", "migrate_database"]
