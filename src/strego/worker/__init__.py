"""The worker: Server lifecycle, the fetch loop, running one task, background loops."""

from strego.worker.server import Server

__all__ = ["Server"]
