"""Adapter subprocesses: one-shot drivers and groups of workers, always bounded in time."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

ADAPTERS = Path(__file__).resolve().parent / "adapters"
SRC = Path(__file__).resolve().parent.parent / "src"


class BenchError(RuntimeError):
    """A workload failed; the message is the reason shown in the report."""


def adapter_env(extra: Mapping[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def tail(path: Path, lines: int = 4) -> str:
    if not path.exists():
        return ""
    text = [line.strip() for line in path.read_text(errors="replace").splitlines()]
    text = [line for line in text if line.strip("^~ ")]  # drop traceback carets
    return " | ".join(text[-lines:])


class Adapter:
    """How to start one system's adapter script: interpreter, file and environment."""

    def __init__(self, python: Path, script: str, env: Mapping[str, str], logs: Path) -> None:
        self.python = python
        self.script = ADAPTERS / script
        self.env = adapter_env(env)
        self.logs = logs
        logs.mkdir(parents=True, exist_ok=True)

    def argv(self, role: str, url: str, options: Sequence[str]) -> list[str]:
        return [str(self.python), str(self.script), role, "--url", url, *options]

    def drive(
        self,
        name: str,
        role: str,
        url: str,
        options: Sequence[str],
        timeout_s: float,
        watch: Callable[[], None] | None = None,
    ) -> Any:
        """Run one driver to completion and return the JSON it printed.

        ``watch`` is called while waiting (e.g. to fail fast when a worker died).
        """
        log = self.logs / f"{name}.log"
        with log.open("w") as err:
            proc = subprocess.Popen(
                self.argv(role, url, options),
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                env=self.env,
                start_new_session=True,
            )
            try:
                stdout = _communicate(proc, timeout_s, watch)
            except subprocess.TimeoutExpired as exc:
                raise BenchError(f"{role} timed out after {timeout_s:.0f}s") from exc
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        if proc.returncode != 0:
            raise BenchError(f"{role} exited {proc.returncode}: {tail(log)}")
        try:
            return json.loads(stdout.strip().splitlines()[-1])
        except (IndexError, ValueError) as exc:
            raise BenchError(f"{role} printed no result: {tail(log)}") from exc


class Workers:
    """``count`` worker processes of one adapter, each publishing a stats file."""

    def __init__(self, adapter: Adapter, name: str, url: str, *, count: int = 1) -> None:
        self.adapter = adapter
        self.name = name
        self.url = url
        self.count = count
        self.stats_dir = adapter.logs / f"{name}-stats"
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(
        self,
        concurrency: int,
        interval_s: float = 0.05,
        env: Mapping[str, str] | None = None,
        cpus: set[int] | None = None,
    ) -> Workers:
        self.stats_dir.mkdir(parents=True, exist_ok=True)
        for stale in self.stats_dir.glob("*"):
            stale.unlink()
        for i in range(self.count):
            options = ["--concurrency", str(concurrency), "--interval", str(interval_s)]
            options += ["--stats", str(self.stats_dir / f"w{i}.json")]
            with (self.adapter.logs / f"{self.name}-w{i}.log").open("w") as log:
                self.procs.append(
                    subprocess.Popen(
                        self.adapter.argv("work", self.url, options),
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        env={**self.adapter.env, **(env or {})},
                        start_new_session=True,
                        preexec_fn=None if cpus is None else _pin(cpus),
                    )
                )
        return self

    def stats(self) -> list[dict[str, Any]]:
        found = []
        for path in sorted(self.stats_dir.glob("*.json")):
            try:
                found.append(json.loads(path.read_text()))
            except (OSError, ValueError):
                continue  # mid-replace; the next poll reads it
        return found

    def processed(self) -> int:
        return sum(int(s["count"]) for s in self.stats())

    def check_alive(self) -> None:
        for i, proc in enumerate(self.procs):
            if proc.poll() is not None:
                log = self.adapter.logs / f"{self.name}-w{i}.log"
                raise BenchError(f"worker exited {proc.returncode}: {tail(log)}")

    def wait_processed(self, target: int, timeout_s: float) -> bool:
        """Poll until ``target`` tasks ran; False on timeout. Raises if a worker died."""
        deadline = time.monotonic() + timeout_s
        while self.processed() < target:
            self.check_alive()
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def pids(self) -> list[int]:
        return [proc.pid for proc in self.procs]

    def stop(self) -> None:
        """SIGTERM each worker's own process group, SIGKILL what is left after 5 s."""
        for proc in self.procs:
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + 5
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait()
            _signal_group(proc, signal.SIGKILL)  # children a peer may have left behind

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _pin(cpus: set[int]) -> Callable[[], None]:
    def pin() -> None:
        os.sched_setaffinity(0, cpus)

    return pin


def _communicate(
    proc: subprocess.Popen[str], timeout_s: float, watch: Callable[[], None] | None
) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        step = min(0.2, max(0.0, deadline - time.monotonic()))
        try:
            stdout, _ = proc.communicate(timeout=step)
            return stdout or ""
        except subprocess.TimeoutExpired:
            if time.monotonic() >= deadline:
                raise
            if watch is not None:
                watch()


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)  # the group this worker leads (start_new_session)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise BenchError(f"no VmRSS for pid {pid}")
