"""Periodic tasks: schedules declared by workers, fired leaderlessly through Redis.

``Periodic`` (the declaration, with the pure tick arithmetic) and ``PeriodicInfo``
(what the Inspector lists). The firing loop lives in ``strego.worker.periodic``, the
Redis side in ``strego.broker.redis.periodic``.
"""

from __future__ import annotations

from strego.periodic.info import PeriodicInfo, PeriodicRun
from strego.periodic.schedule import Periodic

__all__ = ["Periodic", "PeriodicInfo", "PeriodicRun"]
