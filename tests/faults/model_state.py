"""What the model test reads and checks: one atomic snapshot of a queue, and the
execution log turned into runs (who ran which task, from when to when).

Kept apart from the state machine (tests/faults/test_model.py) so each check reads
as one function over plain data.
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tests.faults.execlog import DONE, INTERRUPTED, STARTED, Record

__all__ = ["Run", "Snapshot", "overlaps", "runs_of", "snapshot"]

BANDS = 11

# One read of everything that says where a task is, atomic (a script), so the check
# never sees a half-applied transition: a real inconsistency, not a race of the test.
# KEYS: 1..11 streams  12 index  13 scheduled  14 retry  15 dead  16 finished  17 stats
# ARGV: 1 group
_SNAPSHOT = """
local streams = {}
for band = 1, 11 do
  local ids = {}
  for _, e in ipairs(redis.call('XRANGE', KEYS[band], '-', '+')) do ids[#ids + 1] = e[1] end
  local last, pel = '', {}
  local ok, groups = pcall(redis.call, 'XINFO', 'GROUPS', KEYS[band])
  if ok then
    for _, g in ipairs(groups) do
      local name, delivered
      for i = 1, #g, 2 do
        if g[i] == 'name' then name = g[i + 1] end
        if g[i] == 'last-delivered-id' then delivered = g[i + 1] end
      end
      if name == ARGV[1] then last = delivered end
    end
    local okp, p = pcall(redis.call, 'XPENDING', KEYS[band], ARGV[1], '-', '+', 100000)
    if okp then
      for _, x in ipairs(p) do pel[#pel + 1] = {x[1], x[2], x[3], x[4]} end
    end
  end
  streams[band] = {ids, last, pel}
end
return {streams, redis.call('HGETALL', KEYS[12]), redis.call('ZRANGE', KEYS[13], 0, -1),
        redis.call('ZRANGE', KEYS[14], 0, -1), redis.call('ZRANGE', KEYS[15], 0, -1),
        redis.call('LRANGE', KEYS[16], 0, -1), redis.call('HGETALL', KEYS[17])}
"""


@dataclasses.dataclass(frozen=True, slots=True)
class Pending:
    entry_id: str
    consumer: str
    idle_ms: int
    deliveries: int


@dataclasses.dataclass(frozen=True, slots=True)
class Snapshot:
    entries: dict[int, list[str]]  # band -> entry ids in the stream
    last_delivered: dict[int, str]  # band -> the group's last-delivered-id ('' = no group)
    pending: dict[int, list[Pending]]  # band -> the group's pending entries
    index: dict[str, str]  # task id -> index record
    scheduled: set[str]
    retry: set[str]
    dead: set[str]
    finished: list[str]
    stats: dict[str, int]

    def state(self, task_id: str) -> str:
        record = self.index.get(task_id)
        return record[0] if record else ""

    def problems(self, task_ids: Iterable[str]) -> list[str]:
        """Each task in exactly one place, and no delivered entry outside every
        pending list: what must hold between any two scripts."""
        refs: dict[tuple[int, str], str] = {}
        found = [p for t in task_ids for p in self._task_problems(t, refs)]
        return found + self._entry_problems(refs)

    def _task_problems(self, task_id: str, refs: dict[tuple[int, str], str]) -> list[str]:
        """The task's index record and the structures that hold it agree."""
        record = self.index.get(task_id)
        if record is None:
            return [f"{task_id}: no index record"]
        state, band_text, ref = record.split("|")[:3]
        zsets = {"s": self.scheduled, "r": self.retry, "d": self.dead}
        places = [name for name, members in zsets.items() if task_id in members]
        places += ["finished"] if task_id in self.finished else []
        found = []
        if state in ("p", "k"):
            band = int(band_text)
            if ref not in self.entries.get(band, []):
                found.append(f"{task_id}: {record!r} but entry {ref} not in band {band}")
            refs[(band, ref)] = task_id
            expected: list[str] = []
        elif state in ("s", "r", "d"):
            expected = [state]
        elif state in ("c", "x"):
            expected = ["finished"]
        else:
            return [f"{task_id}: unknown state {record!r}"]
        if places != expected:
            found.append(f"{task_id}: {record!r} found in {places}, expected {expected}")
        return found

    def _entry_problems(self, refs: dict[tuple[int, str], str]) -> list[str]:
        """Every stream entry is one waiting task's; delivered ones sit in a pending list."""
        found = []
        for band, ids in self.entries.items():
            held = {p.entry_id for p in self.pending[band]}
            last = self.last_delivered[band]
            for entry_id in ids:
                if (band, entry_id) not in refs:
                    found.append(f"entry {entry_id} in band {band} belongs to no pending task")
                if last and _id(entry_id) <= _id(last) and entry_id not in held:
                    found.append(f"entry {entry_id} (band {band}) delivered, in no pending list")
            found += [
                f"pending entry {e} (band {band}) has no stream entry" for e in held - set(ids)
            ]
        return found


def _id(entry_id: str) -> tuple[int, int]:
    ms, seq = entry_id.split("-")
    return int(ms), int(seq)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _pairs(flat: Sequence[Any]) -> dict[str, str]:
    return {_text(flat[i]): _text(flat[i + 1]) for i in range(0, len(flat), 2)}


async def snapshot(redis: Any, tag: str, group: str) -> Snapshot:  # Any: redis-py 7.2-neutral
    """Read queue ``tag`` (``<prefix>:{<queue>}``) in one script."""
    keys = [f"{tag}:stream:{band}" for band in range(BANDS)]
    keys += [f"{tag}:{name}" for name in ("tasks", "scheduled", "retry", "dead", "finished")]
    keys.append(f"{tag}:stats")
    raw = await redis.eval(_SNAPSHOT, len(keys), *keys, group)
    streams, index, scheduled, retry, dead, finished, stats = raw
    entries, last, pending = {}, {}, {}
    for band, (ids, delivered, pel) in enumerate(streams):
        entries[band] = [_text(i) for i in ids]
        last[band] = _text(delivered)
        pending[band] = [Pending(_text(e), _text(c), int(idle), int(n)) for e, c, idle, n in pel]
    return Snapshot(
        entries=entries,
        last_delivered=last,
        pending=pending,
        index=_pairs(index),
        scheduled={_text(x) for x in scheduled},
        retry={_text(x) for x in retry},
        dead={_text(x) for x in dead},
        finished=[_text(x) for x in finished],
        stats={k: int(v) for k, v in _pairs(stats).items()},
    )


@dataclasses.dataclass(frozen=True, slots=True)
class Run:
    """One execution of a task's handler in one process."""

    task_id: str
    pid: int
    retry_count: int
    began: float
    ended: float  # math.inf while running (or until its process is known dead)
    end: str  # DONE, INTERRUPTED, "killed" or "running"


def runs_of(records: Iterable[Record], killed: Mapping[int, float]) -> tuple[list[Run], list[str]]:
    """Pair each start with its end, per process; a process that starts a task it is
    already running is reported (one process never runs a task twice at once)."""
    open_runs: dict[tuple[int, str], Record] = {}
    runs: list[Run] = []
    problems: list[str] = []
    for record in records:
        key = (record.pid, record.task_id)
        if record.event == STARTED:
            if key in open_runs:
                problems.append(
                    f"{record.task_id}: pid {record.pid} started it again at {record.at:.3f} "
                    f"while running it since {open_runs[key].at:.3f}"
                )
            open_runs[key] = record
        elif record.event in (DONE, INTERRUPTED):
            began = open_runs.pop(key, None)
            if began is None:
                continue  # handlers that log no start (not the gate handler)
            runs.append(
                Run(
                    record.task_id, record.pid, began.retry_count, began.at, record.at, record.event
                )
            )
    for (pid, task_id), began in open_runs.items():
        if pid in killed:
            runs.append(Run(task_id, pid, began.retry_count, began.at, killed[pid], "killed"))
        else:
            runs.append(Run(task_id, pid, began.retry_count, began.at, math.inf, "running"))
    return runs, problems


def overlaps(runs: Iterable[Run], stalls: Mapping[int, list[float]]) -> list[str]:
    """Runs of one task in two processes at once. Allowed only when one of them was
    frozen (SIGSTOP) during its run: strego cannot stop code that is not running, and
    a frozen worker's lease lapses by design; its outcome is fenced off instead."""
    by_task: dict[str, list[Run]] = defaultdict(list)
    for run in runs:
        by_task[run.task_id].append(run)
    found = []
    for task_id, task_runs in by_task.items():
        task_runs.sort(key=lambda r: r.began)
        for i, first in enumerate(task_runs):
            for second in task_runs[i + 1 :]:
                if second.began >= first.ended:
                    continue
                if _frozen_during(first, stalls) or _frozen_during(second, stalls):
                    continue
                found.append(f"{task_id} ran twice at once: {first} and {second}")
    return found


def _frozen_during(run: Run, stalls: Mapping[int, list[float]]) -> bool:
    return any(run.began <= at < run.ended for at in stalls.get(run.pid, []))
