"""The public surface: a sorted __all__, every name importable, no heavy imports."""

from __future__ import annotations

import subprocess
import sys

import strego


def test_all_is_sorted_and_importable() -> None:
    """__all__ is sorted and every name in it resolves."""
    assert list(strego.__all__) == sorted(strego.__all__)
    for name in strego.__all__:
        assert getattr(strego, name) is not None


def test_import_is_light() -> None:
    """`import strego` imports neither redis, psycopg nor starlette."""
    code = (
        "import sys, strego; "
        "print(sorted(m for m in ('redis', 'psycopg', 'starlette') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_errors_share_one_root() -> None:
    """Every public exception subclasses StregoError."""
    for name in (
        "BrokerUnavailableError",
        "DuplicateTaskError",
        "SkipRetry",
        "RetryAfter",
        "TaskTimeoutError",
        "TaskNotFoundError",
        "ConfigurationError",
        "TaskFailedError",
        "TaskCancelledError",
        "ResultTimeoutError",
    ):
        assert issubclass(getattr(strego, name), strego.StregoError)
