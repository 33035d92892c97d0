"""Run the scripts in examples/ as a user would: ``python examples/NAME.py``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.store.conftest import databases  # noqa: F401  (scratch PostgreSQL databases)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def example_env(**extra: str) -> dict[str, str]:
    """The environment without STREGO_* (so examples start their own Redis) plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREGO_")}
    env.update(extra)
    return env


def run_example(name: str, cwd: Path, **env: str) -> str:
    """Run one example to completion; return its stdout (stderr on failure)."""
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        cwd=cwd,
        env=example_env(**env),
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 0, f"{name} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout
