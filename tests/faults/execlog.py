"""The execution log: what handlers really ran, kept outside the system under test.

Each worker process appends to its own file ``exec-<pid>.log``, one line per event,
written with a single ``os.write`` on an ``O_APPEND`` descriptor (and fsync'd when
asked), so a SIGKILL can cut the log only between lines. Lines are
``<event> <task id> <pid> <unix time> <retry count>`` with event ``S`` (handler
started), ``D`` (handler finished, before its outcome is sent to Redis) or ``X``
(handler interrupted: cancelled, superseded or cut off by shutdown; written only by
handlers that log it, see the ``gate`` handler).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections import Counter
from pathlib import Path

__all__ = ["DONE", "INTERRUPTED", "STARTED", "ExecLog", "ExecLogReader", "Record"]

# Captured at import, before a test may skew this process's clock (see skew.py):
# the log always holds real time, so tests can compare processes.
_real_time = time.time
STARTED = "S"
DONE = "D"
INTERRUPTED = "X"


class ExecLog:
    """The writing side, used inside a worker process."""

    def __init__(self, directory: str, *, fsync: bool) -> None:
        self.pid = os.getpid()
        path = Path(directory) / f"exec-{self.pid}.log"
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._fsync = fsync

    def write(self, event: str, task_id: str, retry_count: int) -> None:
        line = f"{event} {task_id} {self.pid} {_real_time():.6f} {retry_count}\n".encode()
        os.write(self._fd, line)
        if self._fsync:
            os.fsync(self._fd)


@dataclasses.dataclass(frozen=True, slots=True)
class Record:
    event: str
    task_id: str
    pid: int
    at: float
    retry_count: int


class ExecLogReader:
    """The reading side, used by tests: incremental, so polling a big log stays cheap."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self._offsets: dict[Path, int] = {}
        self.records: list[Record] = []
        self.done: Counter[str] = Counter()
        self.started: Counter[str] = Counter()

    def poll(self) -> list[Record]:
        """Read lines appended since the last poll; return the new records."""
        new: list[Record] = []
        for path in sorted(self.directory.glob("exec-*.log")):
            offset = self._offsets.get(path, 0)
            with path.open("rb") as fh:
                fh.seek(offset)
                chunk = fh.read()
            end = chunk.rfind(b"\n") + 1  # only whole lines; a torn tail waits
            self._offsets[path] = offset + end
            for raw in chunk[:end].decode().splitlines():
                event, task_id, pid, at, retry_count = raw.split(" ")
                new.append(Record(event, task_id, int(pid), float(at), int(retry_count)))
        for record in new:
            if record.event == DONE:
                self.done[record.task_id] += 1
            elif record.event == STARTED:
                self.started[record.task_id] += 1
        self.records.extend(new)
        return new

    def done_by(self, task_id: str) -> list[int]:
        """Pids of the processes that finished ``task_id``, in log order per file."""
        return [r.pid for r in self.records if r.event == DONE and r.task_id == task_id]

    def started_by(self, task_id: str) -> list[int]:
        return [r.pid for r in self.records if r.event == STARTED and r.task_id == task_id]

    def duplicates(self) -> dict[str, int]:
        """Task ids whose handler finished more than once, with the count."""
        return {task_id: n for task_id, n in self.done.items() if n > 1}
