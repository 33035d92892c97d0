"""The demo behind ``strego dev``: example handlers and a producer that keeps a mix flowing.

Nothing here is needed to use strego; it exists so a newcomer sees every feature
(priorities, weights, retries, dead letters, scheduling, uniqueness, cancellation)
in the UI within a minute of running ``strego dev``.
"""

from strego.demo.handlers import DEMO_QUEUES, build_server
from strego.demo.producer import Producer

__all__ = ["DEMO_QUEUES", "Producer", "build_server"]
