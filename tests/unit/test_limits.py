"""Limit declarations: validated at construction, ordered, keyed; no I/O."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

import strego
from strego.envelope import TaskMessage
from strego.limits import handler_limits, limit_key, queue_limits
from strego.task import Task


def _task(payload: Any) -> Task:
    message = TaskMessage(id="t1", type="x", queue="default", payload=b"", created_ms=0)
    return Task.received(message, payload, None)


def test_rate_limit_defaults_and_interval() -> None:
    """burst=None is 1; per accepts a timedelta; the interval is per / limit."""
    limit = strego.RateLimit("api", 10, timedelta(seconds=2))
    assert (limit.limit, limit.per_s, limit.burst, limit.key) == (10, 2.0, 1, None)
    assert limit.interval_ms == 200.0
    assert strego.RateLimit("api", 5, burst=3).burst == 3


@pytest.mark.parametrize(
    "build",
    [
        lambda: strego.RateLimit("", 1),
        lambda: strego.RateLimit("a{b}", 1),
        lambda: strego.RateLimit("a b", 1),
        lambda: strego.RateLimit("api", 0),
        lambda: strego.RateLimit("api", True),
        lambda: strego.RateLimit("api", 1.5),  # type: ignore[arg-type]
        lambda: strego.RateLimit("api", 10, per=0),
        lambda: strego.RateLimit("api", 10, per=-1),
        lambda: strego.RateLimit("api", 10, burst=0),
        lambda: strego.RateLimit("api", 10_000_000),
        lambda: strego.RateLimit("api", 10, key="tenant"),  # type: ignore[arg-type]
        lambda: strego.ConcurrencyLimit("pool", 0),
        lambda: strego.ConcurrencyLimit("pool", 2, key=3),  # type: ignore[arg-type]
        lambda: strego.ConcurrencyLimit(None, 2),  # type: ignore[arg-type]
    ],
)
def test_invalid_limits_fail_at_construction(build: Any) -> None:
    """Every invalid option is a ConfigurationError (a ValueError) when it is built."""
    with pytest.raises(ValueError):
        build()


def test_handler_limits_check_concurrency_first_and_unique_names() -> None:
    """Concurrency limits are asked first (a slot can be given back, a spent start
    cannot); two limits of one handler may not share a name; non-limits are refused."""
    rate, pool = strego.RateLimit("api", 10), strego.ConcurrencyLimit("pool", 2)
    assert handler_limits([rate, pool]) == (pool, rate)
    assert handler_limits(None) == ()
    with pytest.raises(strego.ConfigurationError, match="share a name"):
        handler_limits([rate, strego.ConcurrencyLimit("api", 1)])
    with pytest.raises(strego.ConfigurationError, match="RateLimit or ConcurrencyLimit"):
        handler_limits(["api"])  # type: ignore[list-item]


def test_queue_limits_take_no_key_and_valid_queues() -> None:
    """A queue-wide limit is checked inside the fetch script: no key function."""
    one = strego.RateLimit("q", 5)
    assert queue_limits({"emails": one}) == {"emails": (one,)}
    with pytest.raises(strego.ConfigurationError, match="cannot take a key"):
        queue_limits({"emails": strego.ConcurrencyLimit("q", 1, key=lambda t: "x")})
    with pytest.raises(strego.ConfigurationError):
        queue_limits({"bad queue": one})


def test_server_validates_limits_at_construction() -> None:
    """Server(queue_limits=...) and handle(limits=...) refuse bad values at once."""
    broker: Any = object()
    with pytest.raises(strego.ConfigurationError):
        strego.Server(broker, queue_limits=["emails"])  # type: ignore[arg-type]
    server = strego.Server(broker, queue_limits={"default": strego.RateLimit("q", 5)})
    with pytest.raises(strego.ConfigurationError):
        server.handle("x", lambda task: None, limits=[object()])  # type: ignore[list-item]
    assert "x" not in server.limits


def test_limit_key_values() -> None:
    """The key function's value names the limiter key; long or brace-bearing values are
    hashed (the key lands in a Redis key name); a non-str value is a TypeError."""
    by_tenant = strego.ConcurrencyLimit("t", 1, key=lambda t: t.payload["tenant"])
    assert limit_key(by_tenant, _task({"tenant": "acme"})) == "acme"
    assert limit_key(strego.ConcurrencyLimit("t", 1), _task({})) == ""
    hashed = limit_key(by_tenant, _task({"tenant": "x" * 500}))
    assert hashed.startswith("h:") and len(hashed) < 50
    assert limit_key(by_tenant, _task({"tenant": "{a}"})).startswith("h:")
    with pytest.raises(TypeError):
        limit_key(by_tenant, _task({"tenant": 3}))
