"""strego: a distributed task queue on Redis Streams.

``import strego`` stays light: the Redis-backed parts load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from strego.errors import (
    BrokerUnavailableError,
    ConfigurationError,
    DuplicateTaskError,
    ResultTimeoutError,
    RetryAfter,
    SkipRetry,
    StregoError,
    TaskCancelledError,
    TaskFailedError,
    TaskNotFoundError,
    TaskTimeoutError,
)
from strego.limits import ConcurrencyLimit, RateLimit
from strego.middleware import Middleware
from strego.serializers import JsonSerializer, MsgpackSerializer, RawSerializer, Serializer
from strego.task import Task, TaskInfo, TaskState
from strego.workflows import WorkflowInfo, chain, chord, group

if TYPE_CHECKING:
    from strego.broker.redis import RedisBroker
    from strego.client import Client, SyncClient
    from strego.inspector import Inspector, QueueInfo, TaskRecord, WorkerInfo
    from strego.periodic import Periodic, PeriodicInfo
    from strego.worker import Server

__version__ = "0.1.0"

__all__ = [
    "BrokerUnavailableError",
    "Client",
    "ConcurrencyLimit",
    "ConfigurationError",
    "DuplicateTaskError",
    "Inspector",
    "JsonSerializer",
    "Middleware",
    "MsgpackSerializer",
    "Periodic",
    "PeriodicInfo",
    "QueueInfo",
    "RateLimit",
    "RawSerializer",
    "RedisBroker",
    "ResultTimeoutError",
    "RetryAfter",
    "Serializer",
    "Server",
    "SkipRetry",
    "StregoError",
    "SyncClient",
    "Task",
    "TaskCancelledError",
    "TaskFailedError",
    "TaskInfo",
    "TaskNotFoundError",
    "TaskRecord",
    "TaskState",
    "TaskTimeoutError",
    "WorkerInfo",
    "WorkflowInfo",
    "__version__",
    "chain",
    "chord",
    "group",
]

_LAZY = {
    "RedisBroker": "strego.broker.redis",
    "Client": "strego.client",
    "SyncClient": "strego.client",
    "Server": "strego.worker",
    "Inspector": "strego.inspector",
    "QueueInfo": "strego.inspector",
    "TaskRecord": "strego.inspector",
    "WorkerInfo": "strego.inspector",
    "Periodic": "strego.periodic",
    "PeriodicInfo": "strego.periodic",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'strego' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
