"""Server and broker options are validated at construction."""

from __future__ import annotations

from typing import Any

import pytest

import strego
from strego.worker.selector import QueueSelector

URL = "redis://127.0.0.1:1/0"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"concurrency": 0},
        {"queues": []},
        {"queues": "default"},
        {"queues": {"a": 0}},
        {"queues": ["bad queue"]},
        {"shutdown_timeout": -1},
        {"retry_base": 10, "retry_max": 1},
        {"max_deliveries": 0},
        {"keep_completed": -1},
        {"cleanup_interval": 0},
    ],
)
def test_server_rejects_bad_options(kwargs: dict[str, Any]) -> None:
    """Each invalid Server option raises ValueError."""
    with pytest.raises(ValueError):
        strego.Server(strego.RedisBroker(URL), **kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [{"batch_size": 0}, {"block": 0}, {"claim_stale_after": -1}, {"group": ""}, {"prefix": "a b"}],
)
def test_broker_rejects_bad_options(kwargs: dict[str, Any]) -> None:
    """Each invalid RedisBroker option raises ValueError."""
    with pytest.raises(ValueError):
        strego.RedisBroker(URL, **kwargs)


def test_broker_rejects_bad_url() -> None:
    """A URL with an unknown scheme is refused with a message naming the valid ones."""
    with pytest.raises(ValueError, match="redis://"):
        strego.RedisBroker("http://localhost:6379")


def test_weighted_selection_shares() -> None:
    """Weighted selection gives each queue its share of slots (no starvation)."""
    import random

    selector = QueueSelector(
        {"critical": 6, "default": 3, "low": 1}, strict=False, rng=random.Random(7)
    )
    totals = {"critical": 0, "default": 0, "low": 0}
    for _ in range(1000):
        for queue, count in selector.plan(10, set()):
            totals[queue] += count
    assert abs(totals["critical"] / 10_000 - 0.6) < 0.02
    assert abs(totals["low"] / 10_000 - 0.1) < 0.02


def test_strict_selection_order() -> None:
    """Strict mode gives every slot to the first queue that may have work."""
    selector = QueueSelector({"a": 1, "b": 1}, strict=True)
    assert selector.plan(5, set()) == [("a", 5)]
    assert selector.plan(5, {"a"}) == [("b", 5)]


def test_reconfigure_validates_every_option_like_construction() -> None:
    """Server.reconfigure goes through ServerConfig: a bad value or an unknown option
    raises, and the configuration is left as it was."""
    broker = strego.RedisBroker("redis://127.0.0.1:1/0")
    server = strego.Server(broker, concurrency=4)
    server.reconfigure(concurrency=8, queues={"a": 2, "b": 1}, shutdown_timeout=5)
    assert (server.config.concurrency, dict(server.config.queues)) == (8, {"a": 2, "b": 1})
    assert server.config.shutdown_timeout_s == 5
    bad_changes: list[dict[str, Any]] = [
        {"shutdown_timeout": -1},
        {"max_deliveries": 0},
        {"queues": []},
    ]
    for bad in bad_changes:
        with pytest.raises(strego.ConfigurationError):
            server.reconfigure(**bad)
    with pytest.raises(strego.ConfigurationError, match="no option"):
        server.reconfigure(concurency=3)
    assert server.config.concurrency == 8 and server.config.shutdown_timeout_s == 5
