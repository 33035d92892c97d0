"""A model-based test of the delivery core: random interleavings of everything that can
happen to a task, on real worker processes and a real redis-server, checked after every
step.

Hypothesis drives a :class:`DeliveryModel`: it enqueues tasks whose handler runs until
the test opens its *gate* (so the test decides when a handler finishes, or fails), and
interleaves that with SIGKILL of a worker (restarted under a new name or its own),
SIGSTOP past the lease and SIGCONT, waiting for reclaim, cancel, consumer cleanup and
removal, graceful shutdown (SIGTERM, restarted) and Redis restarts (AOF, fsync always).

After every step (``@invariant``):

- **each task is in exactly one place**: its index record, the stream entry it
  points to, the scheduled / retry / dead sets and the finished ring agree; no stream
  entry without a task; no delivered entry outside every pending list (an atomic read);
- **no task runs twice at once**: from the execution log (each process writes S/D/X
  lines, outside Redis), never two runs in one process, and two processes only when
  one of them was frozen by SIGSTOP during its run (its lease lapsed: that is the
  documented limit, its outcome is fenced off).

At the end every gate opens and every task must reach **exactly one final state**
(completed, dead or cancelled) matching what happened: the queue's counters equal the
number of tasks in each final state (nothing counted twice), a completed task's handler
did finish, a cancelled one was cancelled by the test, a task ``cancel()`` returned
True for never starts again afterwards, a dead one failed or was poison, and
duplicate runs come only from killed or frozen processes.

Settings (environment): ``STREGO_MODEL_EXAMPLES`` (default 3; ``scripts/soak`` uses
many more), ``STREGO_MODEL_STEPS`` (steps per example, default 20),
``STREGO_MODEL_SHRINK=1`` to let hypothesis shrink a failure (slow: every attempt
starts real processes). ``STREGO_SOAK=1`` raises the defaults to 40 examples.

Replaying a failure: the test prints ``model seed: N`` first, and on failure
hypothesis prints the failing steps as a program (``state = DeliveryModel();
state.kill(pick=1); ...``) and a ``@reproduce_failure(...)`` line. Run the same random
choices again with ``STREGO_MODEL_SEED=N`` (and the same ``STREGO_MODEL_EXAMPLES`` /
``STREGO_MODEL_STEPS``), or put the reproduce_failure decorator on ``DeliveryModel``
to run just the failing example. The steps replay exactly; process timing does not, so
a race may need a few runs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import os
import random
import shutil
import signal
import tempfile
import time
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, Phase, seed, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

import strego
from strego.embedded import EmbeddedRedis
from tests.faults.execlog import DONE, STARTED, ExecLogReader
from tests.faults.harness import WorkerProcess
from tests.faults.model_state import Snapshot, overlaps, runs_of, snapshot
from tests.faults.worker_app import WorkerSpec
from tests.support.servers import start_redis

pytestmark = pytest.mark.faults

SOAK = os.environ.get("STREGO_SOAK") == "1"
EXAMPLES = int(os.environ.get("STREGO_MODEL_EXAMPLES", "40" if SOAK else "3"))
STEPS = int(os.environ.get("STREGO_MODEL_STEPS", "30" if SOAK else "20"))
SHRINK = os.environ.get("STREGO_MODEL_SHRINK") == "1"
SEED = os.environ.get("STREGO_MODEL_SEED")

GROUP = "faults"
QUEUE = "default"
SLOTS = 3  # worker processes alive at any time (one may be frozen)
CONCURRENCY = 2  # small: reclaimed and fetched tasks wait for slots
CLAIM_STALE_AFTER = 2.0  # renewed every 0.67 s: a live worker keeps its leases under load
CLAIM_CHECK_INTERVAL = 0.5
SHUTDOWN_TIMEOUT = 0.5
MAX_DELIVERIES = 10
CANCEL_GRACE_S = 1.0  # a handler may start this long after cancel() (the request's trip)
SETTLE_TIMEOUT_S = 120.0


class DeliveryModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.directory = Path(tempfile.mkdtemp(prefix="strego-model-"))
        self.gates = self.directory / "gates"
        self.gates.mkdir()
        self.redis_server: EmbeddedRedis = start_redis(
            "--appendonly", "yes", "--appendfsync", "always"
        )
        self.prefix = "model"
        self.tag = f"{self.prefix}:{{{QUEUE}}}"
        self.base = WorkerSpec(
            redis_url=self.redis_server.url,
            prefix=self.prefix,
            log_dir=str(self.directory / "exec"),
            consumer="unset",
            group=GROUP,
            concurrency=CONCURRENCY,
            claim_stale_after=CLAIM_STALE_AFTER,
            claim_check_interval=CLAIM_CHECK_INTERVAL,
            shutdown_timeout=SHUTDOWN_TIMEOUT,
            socket_timeout=2.0,
            block=1.0,
            max_deliveries=MAX_DELIVERIES,
        )
        Path(self.base.log_dir).mkdir()
        self.reader = ExecLogReader(self.base.log_dir)
        self.workers: list[WorkerProcess] = []
        self.names = 0
        for slot in range(SLOTS):
            self.workers.append(self._start(slot))
        self.stopped: set[int] = set()  # slots frozen by SIGSTOP
        self.killed: dict[int, float] = {}  # pid -> when it was known dead
        self.stalls: dict[int, list[float]] = {}  # pid -> when it was frozen
        self.tasks: list[str] = []
        self.retries: dict[str, int] = {}
        self.verdicts: dict[str, str] = {}  # gates opened: task id -> ok / fail
        self.cancelled: dict[str, float] = {}  # cancel() returned True at this time
        self.redis = aioredis.Redis.from_url(self.redis_server.url)
        self.broker = strego.RedisBroker(self.redis_server.url, prefix=self.prefix, group=GROUP)
        self.client = strego.Client(self.broker)
        self.inspector = strego.Inspector(self.broker)
        self.last: Snapshot | None = None
        self.steps: list[str] = []
        for worker in self.workers:  # the first steps act on working workers
            self.run(self._until_ready(worker.spec.consumer, worker.pid), timeout_s=130)

    # -- helpers -------------------------------------------------------------------

    def run(self, coro: object, timeout_s: float = 60) -> object:
        return self.loop.run_until_complete(asyncio.wait_for(coro, timeout_s))  # type: ignore[arg-type]

    def _start(self, slot: int) -> WorkerProcess:
        self.names += 1
        spec = dataclasses.replace(self.base, consumer=f"w{slot}.{self.names}")
        return WorkerProcess(spec, self.directory).start()

    def _restart(self, slot: int) -> None:
        self.workers[slot] = self._start(slot)

    def _running(self) -> list[int]:
        return [i for i, w in enumerate(self.workers) if w.alive() and i not in self.stopped]

    async def _with_redis(self, make: object) -> object:
        """Run a Redis call, waiting out a restart that is still loading its AOF."""
        deadline = time.monotonic() + 30
        while True:
            try:
                return await make()  # type: ignore[operator]
            except (ConnectionError, OSError, aioredis.ConnectionError, aioredis.BusyLoadingError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)
            except strego.BrokerUnavailableError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)

    def _snapshot(self) -> Snapshot:
        snap = self.run(self._with_redis(lambda: snapshot(self.redis, self.tag, GROUP)))
        assert isinstance(snap, Snapshot)
        return snap

    def _note(self, step: str) -> None:
        self.steps.append(f"{time.time():.3f} {step}")

    # -- rules ---------------------------------------------------------------------

    @initialize(count=st.integers(2, 6), scheduled=st.booleans(), retries=st.integers(0, 1))
    def first_tasks(self, count: int, scheduled: bool, retries: int) -> None:
        """Every example starts with work in flight."""
        self.enqueue(count, scheduled, retries, 0)

    @rule(
        count=st.integers(1, 3),
        scheduled=st.booleans(),
        retries=st.integers(0, 1),
        priority=st.integers(0, 2),
    )
    def enqueue(self, count: int, scheduled: bool, retries: int, priority: int) -> None:
        tasks = [
            strego.Task(
                "gate",
                {"gate": str(self.gates)},
                max_retry=retries,
                priority=priority,
                process_in=0.3 if scheduled else None,
            )
            for _ in range(count)
        ]
        self.run(self._with_redis(lambda: self.client.enqueue_many(tasks)))
        for task in tasks:
            self.tasks.append(task.id)
            self.retries[task.id] = retries
        self._note(f"enqueue {[t.id for t in tasks]}")

    @precondition(lambda self: len(self.verdicts) < len(self.tasks))
    @rule(pick=st.integers(0, 10_000), verdict=st.sampled_from(["ok", "ok", "fail"]))
    def open_gate(self, pick: int, verdict: str) -> None:
        """A handler finishes (or fails) now, or as soon as its task runs."""
        closed = [t for t in self.tasks if t not in self.verdicts]
        task_id = closed[pick % len(closed)]
        (self.gates / task_id).write_text(verdict)
        self.verdicts[task_id] = verdict
        self._note(f"open {task_id} {verdict}")

    @precondition(lambda self: bool(self._alive()))
    @rule(pick=st.integers(0, SLOTS - 1), restart_as=st.sampled_from(["new", "same", "removed"]))
    def kill(self, pick: int, restart_as: str) -> None:
        """SIGKILL a worker (frozen or not) mid-flight; a new process takes its slot,
        under a new consumer name (a new pod: others reclaim), the same one (a
        StatefulSet pod: it takes over what its predecessor held, counts kept), or a
        new one after an operator removed the dead consumer at once (its entries are
        handed over, none dropped)."""
        self._ensure_work()
        slot = self._alive()[pick % len(self._alive())]
        worker = self.workers[slot]
        pid = worker.kill()
        self.killed[pid] = time.time()
        self.stopped.discard(slot)
        self._note(f"kill {worker.spec.consumer} pid {pid}, restart as {restart_as}")
        if restart_as == "same":
            worker.restart()
            return
        if restart_as == "removed":
            consumer = worker.spec.consumer
            self.run(self._with_redis(lambda: self.inspector.remove_consumer(QUEUE, consumer)))
        self._restart(slot)

    @precondition(lambda self: len(self._running()) > 1)
    @rule(pick=st.integers(0, SLOTS - 1), wake_at_once=st.booleans())
    def stall(self, pick: int, wake_at_once: bool) -> None:
        """SIGSTOP a worker until its leases lapse (a suspended VM: it stays frozen
        until ``resume``), or SIGCONT it right then (a long GC pause: it wakes just as
        others may reclaim, and its own reclaim timer and renewal are both overdue)."""
        self._ensure_work()
        slot = self._running()[pick % len(self._running())]
        worker = self.workers[slot]
        worker.signal(signal.SIGSTOP)
        self.stopped.add(slot)
        self.stalls.setdefault(worker.pid, []).append(time.time())
        self._note(f"stall {worker.spec.consumer} pid {worker.pid} wake_at_once={wake_at_once}")
        self.run(self._until_lapsed(worker.spec.consumer))
        if wake_at_once:
            worker.signal(signal.SIGCONT)
            self.stopped.discard(slot)

    async def _until_lapsed(self, consumer: str) -> None:
        deadline = time.monotonic() + CLAIM_STALE_AFTER + 5
        while time.monotonic() < deadline:
            snap = await self._with_redis(lambda: snapshot(self.redis, self.tag, GROUP))
            assert isinstance(snap, Snapshot)
            mine = [p for ps in snap.pending.values() for p in ps if p.consumer == consumer]
            if all(p.idle_ms > CLAIM_STALE_AFTER * 1000 for p in mine):
                return
            await asyncio.sleep(0.1)

    async def _until_ready(self, consumer: str, pid: int) -> None:
        """Until this process (by pid: a restart under the same name finds its killed
        predecessor's heartbeat still there) has registered, its signal handlers set."""
        key = f"{self.prefix}:worker:{consumer}"
        deadline = time.monotonic() + 120  # a loaded 2-core machine: starts took 20 s
        while await self._with_redis(lambda: self.redis.hget(key, "pid")) != str(pid).encode():
            assert time.monotonic() < deadline, f"{consumer} never became ready"
            await asyncio.sleep(0.05)

    @precondition(lambda self: bool(self.stopped))
    @rule(pick=st.integers(0, SLOTS - 1))
    def resume(self, pick: int) -> None:
        """SIGCONT a frozen worker: its superseded deliveries must not land."""
        slots = sorted(self.stopped)
        slot = slots[pick % len(slots)]
        self.workers[slot].signal(signal.SIGCONT)
        self.stopped.discard(slot)
        self._note(f"resume {self.workers[slot].spec.consumer}")

    @rule()
    def reclaim(self) -> None:
        """Let time pass until what dead or frozen workers hold is reclaimed (or a
        bounded while: busy workers reclaim nothing, which is right)."""
        self._ensure_work()
        self.run(self._until_reclaimed(), timeout_s=60)
        self._note("reclaim")

    async def _until_reclaimed(self) -> None:
        live = {w.spec.consumer for i, w in enumerate(self.workers) if i not in self.stopped}
        deadline = time.monotonic() + CLAIM_STALE_AFTER + 4 * CLAIM_CHECK_INTERVAL + 2
        while time.monotonic() < deadline:
            snap = await self._with_redis(lambda: snapshot(self.redis, self.tag, GROUP))
            assert isinstance(snap, Snapshot)
            if all(p.consumer in live for ps in snap.pending.values() for p in ps):
                return
            await asyncio.sleep(0.1)

    @precondition(lambda self: bool(self.verdicts))
    @rule()
    def settle(self) -> None:
        """Let time pass until every task whose gate is open has ended (bounded: its
        worker may be frozen, or every slot held by tasks whose gates are closed)."""
        self.run(self._until_settled(), timeout_s=60)
        self._note("settle")

    async def _until_settled(self) -> None:
        deadline = time.monotonic() + CLAIM_STALE_AFTER + 3
        while time.monotonic() < deadline:
            snap = await self._with_redis(lambda: snapshot(self.redis, self.tag, GROUP))
            assert isinstance(snap, Snapshot)
            if all(snap.state(t) in ("c", "d", "x") for t in self.verdicts):
                return
            await asyncio.sleep(0.1)

    @precondition(lambda self: bool(self.tasks))
    @rule(pick=st.integers(0, 10_000))
    def cancel(self, pick: int) -> None:
        task_id = self.tasks[pick % len(self.tasks)]
        done = self.run(self._with_redis(lambda: self.client.cancel(task_id)))
        if done and task_id not in self.cancelled:
            self.cancelled[task_id] = time.time()
        self._note(f"cancel {task_id} -> {done}")

    @rule(remove_dead=st.booleans())
    def cleanup(self, remove_dead: bool) -> None:
        """Idle-consumer cleanup races live fetches; an operator removes dead consumers."""
        self._ensure_work()

        async def go() -> None:
            await self.broker.cleanup_consumers(QUEUE, 0.0)
            if remove_dead:
                live = {w.spec.consumer for w in self.workers if w.alive()}
                for consumer in await self.inspector.consumers(QUEUE):
                    if consumer.name not in live and consumer.name != "strego-handover":
                        await self.inspector.remove_consumer(QUEUE, consumer.name)

        self.run(self._with_redis(go))
        self._note(f"cleanup remove_dead={remove_dead}")

    @precondition(lambda self: bool(self._running()))
    @rule(pick=st.integers(0, SLOTS - 1))
    def shutdown(self, pick: int) -> None:
        """SIGTERM: running handlers get shutdown_timeout, the rest is handed back."""
        self._ensure_work()
        slot = self._running()[pick % len(self._running())]
        worker = self.workers[slot]
        self.run(
            self._until_ready(worker.spec.consumer, worker.pid), timeout_s=130
        )  # else SIGTERM hits the import
        worker.signal(signal.SIGTERM)
        code = self.run(worker.wait_exit(90), timeout_s=100)
        self._note(f"shutdown {worker.spec.consumer} -> {code}")
        assert code == 0, worker.output()
        self._restart(slot)

    @rule(kill=st.booleans())
    def restart_redis(self, kill: bool) -> None:
        self._ensure_work()
        self.redis_server.stop(kill=kill)
        self.redis_server.start()
        self._note(f"redis restart kill={kill}")

    def _ensure_work(self) -> None:
        """Faults on an idle system prove little: when every task has ended (cancels
        and open gates end them fast), enqueue two more first."""
        if not self._busy():
            self.enqueue(2, False, 0, 0)

    def _busy(self) -> bool:
        """Some task has not ended yet (faults on an idle system prove little)."""
        return self.last is None or any(
            self.last.state(t) not in ("c", "d", "x") for t in self.tasks
        )

    def _alive(self) -> list[int]:
        return [i for i, w in enumerate(self.workers) if w.alive()]

    # -- invariants ----------------------------------------------------------------

    @invariant()
    def each_task_in_one_place(self) -> None:
        self.last = snap = self._snapshot()
        problems = snap.problems(self.tasks)
        assert not problems, self._explain(problems)

    @invariant()
    def never_twice_at_once(self) -> None:
        self.reader.poll()
        runs, problems = runs_of(self.reader.records, self.killed)
        problems += overlaps(runs, self.stalls)
        assert not problems, self._explain(problems)

    def _explain(self, problems: list[str]) -> str:
        tails = "\n".join(
            f"--- {w.spec.consumer}\n" + "\n".join(w.output().splitlines()[-12:])
            for w in self.workers
        )
        return "\n".join([*problems, "steps:", *self.steps, tails])

    # -- the end -------------------------------------------------------------------

    def teardown(self) -> None:
        print(f"example: {len(self.tasks)} tasks, {len(self.steps)} steps: {self.steps}")
        try:
            if not self.tasks or self.last is None:
                return
            self._finish_everything()
        finally:
            self._close()

    def _finish_everything(self) -> None:
        for slot in list(self.stopped):
            self.workers[slot].signal(signal.SIGCONT)
        self.stopped.clear()
        for task_id in self.tasks:
            if task_id not in self.verdicts:
                (self.gates / task_id).write_text("ok")
                self.verdicts[task_id] = "ok"
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while True:
            snap = self._snapshot()
            assert not snap.problems(self.tasks), self._explain(snap.problems(self.tasks))
            self.never_twice_at_once()
            unfinished = [t for t in self.tasks if snap.state(t) not in ("c", "d", "x")]
            if not unfinished:
                break
            assert time.monotonic() < deadline, self._explain(
                [f"never finished: {[(t, snap.index.get(t)) for t in unfinished]}"]
            )
            time.sleep(0.1)
        self._check_final(snap)

    def _check_final(self, snap: Snapshot) -> None:
        self.reader.poll()
        problems: list[str] = []
        states = {t: snap.state(t) for t in self.tasks}
        for state, counter in (("c", "processed"), ("d", "dead"), ("x", "cancelled")):
            have = sum(1 for s in states.values() if s == state)
            if snap.stats.get(counter, 0) != have:
                problems.append(f"{counter} counted {snap.stats.get(counter, 0)}, tasks {have}")
        runs, _ = runs_of(self.reader.records, self.killed)
        finished_runs = {r.task_id for r in runs if r.end == DONE}
        innocent = set()  # pids neither killed nor frozen
        for record in self.reader.records:
            if record.pid not in self.killed and record.pid not in self.stalls:
                innocent.add(record.pid)
        for task_id, state in states.items():
            problems += self._final_problems(task_id, state, finished_runs)
            for attempt in range(self.retries[task_id] + 1):
                done_by = [
                    r.pid
                    for r in self.reader.records
                    if r.task_id == task_id and r.event == DONE and r.retry_count == attempt
                ]
                if sum(pid in innocent for pid in done_by) > 1:
                    problems.append(f"{task_id} attempt {attempt} finished twice: {done_by}")
        assert not problems, self._explain(problems)

    def _final_problems(self, task_id: str, state: str, finished_runs: set[str]) -> list[str]:
        problems = []
        asked_at = self.cancelled.get(task_id, math.inf)
        late = [
            r
            for r in self.reader.records
            if r.task_id == task_id and r.event == STARTED and r.at > asked_at + CANCEL_GRACE_S
        ]
        if late:
            problems.append(f"{task_id} started after cancel() returned True: {late}")
        if state == "c" and task_id not in finished_runs:
            problems.append(f"{task_id} completed but its handler never finished")
        if state == "x" and task_id not in self.cancelled:
            problems.append(f"{task_id} cancelled, but no cancel() returned True")
        if task_id in self.cancelled and state not in ("x", "c"):
            problems.append(f"{task_id}: cancel() returned True, yet it ended {state!r}")
        if state == "d":
            record = self.run(self.inspector.get_task(task_id))
            reason = getattr(record, "dead_reason", None)
            if not (self.verdicts.get(task_id) == "fail" or reason == "poison"):
                problems.append(f"{task_id} dead ({reason}) though it never failed")
        return problems

    def _close(self) -> None:
        for worker in self.workers:
            if worker.alive():
                worker.signal(signal.SIGCONT)
                worker.kill()
        self.run(self.broker.aclose())
        self.run(self.redis.aclose())
        self.loop.close()
        self.redis_server.cleanup()
        shutil.rmtree(self.directory, ignore_errors=True)


@pytest.mark.timeout(max(600, EXAMPLES * STEPS * 20))
def test_delivery_core_model() -> None:
    """Random interleavings of enqueue, finish, fail, SIGKILL, SIGSTOP past the lease,
    reclaim, cancel, cleanup, shutdown and Redis restarts: every invariant holds."""
    chosen = int(SEED) if SEED else random.randrange(1 << 32)
    print(f"model seed: {chosen} (replay: STREGO_MODEL_SEED={chosen})")
    run_state_machine_as_test(
        seed(chosen)(DeliveryModel),
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            database=None,
            print_blob=True,
            phases=(
                [Phase.explicit, Phase.generate, Phase.shrink]
                if SHRINK
                else [Phase.explicit, Phase.generate]
            ),
            suppress_health_check=list(HealthCheck),
        ),
    )
