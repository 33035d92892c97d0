"""The Redis Streams broker."""

from strego.broker.base import Retention
from strego.broker.redis.broker import RedisBroker

__all__ = ["RedisBroker", "Retention"]
