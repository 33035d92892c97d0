"""The Redis Streams broker."""

from strego.broker.redis.broker import RedisBroker
from strego.broker.base import Retention

__all__ = ["RedisBroker", "Retention"]
