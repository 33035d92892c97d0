"""One venv per peer under ``<bench dir>/venvs/<name>``, built with pip on first use.

The bench dir lives outside the checkout (``$STREGO_BENCH_DIR``, default
``~/.cache/strego-bench``): the peers' installed sources are not ours, and keeping them out
of the tree keeps repository-wide searches and checks about this project only.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from benchmarks.systems import System

BENCH_DIR = Path(
    os.environ.get("STREGO_BENCH_DIR") or Path.home() / ".cache" / "strego-bench"
).resolve()
VENVS = BENCH_DIR / "venvs"
MARKER = ".bench-requirements"
PIP_TIMEOUT_S = 1800


class VenvError(RuntimeError):
    """A peer's venv could not be built; the message says why."""


def interpreter(system: System) -> Path:
    """The python that runs ``system``'s adapter, building its venv if needed."""
    if not system.requirements:
        return Path(sys.executable)
    home = VENVS / system.name
    python = home / "bin" / "python"
    wanted = "\n".join(system.requirements)
    marker = home / MARKER
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return python
    if not python.exists():
        print(f"  creating venv {home}", flush=True)
        _run([sys.executable, "-m", "venv", str(home)], timeout_s=300)
    print(f"  pip install {' '.join(system.requirements)}", flush=True)
    _run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *wanted.split()],
        timeout_s=PIP_TIMEOUT_S,
    )
    marker.write_text(wanted)
    return python


def _run(argv: list[str], *, timeout_s: float) -> None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise VenvError(f"{argv[2:4]} timed out after {timeout_s:.0f}s") from exc
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        tail = [line for line in lines if line.startswith("ERROR")][-2:] or lines[-3:]
        raise VenvError(f"{' '.join(argv[1:4])} failed: {' | '.join(tail)}")
