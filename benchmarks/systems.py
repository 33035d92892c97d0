"""Every system the suite measures: the ceiling, strego and the peers, with their settings.

A peer runs under its own venv (``$STREGO_BENCH_DIR/venvs/<name>``, default
``~/.cache/strego-bench``, built from ``requirements``);
the ceiling and strego run under the harness's own interpreter with ``src`` on the path.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

ENQUEUE = ("enqueue_single", "enqueue_bulk")
PROCESSED = ("processed_c10", "processed_c100", "processed_2p")
PINNED = ("processed_c10_pinned", "processed_2p_pinned")
PAYLOADS = ("payload_10k", "payload_1m")
SLEEP_SYNC = frozenset({"sleep_sync_c50"})  # systems whose sync handlers run in threads
SLEEP_ASYNC = frozenset({"sleep_async_c200"})  # systems with async handlers
PEER_WORKLOADS = frozenset({*ENQUEUE, *PROCESSED, *PINNED, *PAYLOADS, "latency"})
RESULTS = frozenset({"result_rtt"})  # systems with an "await the return value" API


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class System:
    name: str
    label: str
    kind: str  # "ceiling" | "strego" | "peer"
    adapter: str  # file name in benchmarks/adapters/
    workloads: frozenset[str]
    settings: str
    requirements: tuple[str, ...] = ()  # empty: the harness's own interpreter
    env: Mapping[str, str] = dataclasses.field(default_factory=dict)


SYSTEMS: tuple[System, ...] = (
    System(
        name="ceiling",
        label="ceiling: redis-py, batched",
        kind="ceiling",
        adapter="peer_ceiling.py",
        workloads=PEER_WORKLOADS | RESULTS,
        env={"CEILING_COUNT": "100"},
        settings="XADD one per await / pipelined in 100s; one consumer loop of "
        "XREADGROUP COUNT 100 BLOCK 1000 + pipelined XACK (no concurrency knob)",
    ),
    System(
        name="ceiling-1rtt",
        label="ceiling: redis-py, 1 round trip per step",
        kind="ceiling",
        adapter="peer_ceiling.py",
        workloads=frozenset({*PROCESSED, *PINNED}),
        env={"CEILING_COUNT": "1"},
        settings="one consumer loop of XREADGROUP COUNT 1 + one XACK per entry",
    ),
    System(
        name="strego",
        label="strego",
        kind="strego",
        adapter="peer_strego.py",
        workloads=PEER_WORKLOADS | SLEEP_SYNC | SLEEP_ASYNC | {"scheduled", "rss"} | RESULTS,
        settings="defaults (batch_size=10, JSON); Client.enqueue_many for bulk; "
        "Server(concurrency=C).run()",
    ),
    System(
        name="streaq",
        label="streaq",
        kind="peer",
        adapter="peer_streaq.py",
        workloads=PEER_WORKLOADS | SLEEP_ASYNC,
        requirements=("streaq", "redis[hiredis]"),
        settings="Worker(concurrency=C); task ttl=0 (no result), silent=True, "
        "max_tries=None; bulk: Worker.enqueue_many (pipeline)",
    ),
    System(
        name="saq",
        label="SAQ",
        kind="peer",
        adapter="peer_saq.py",
        workloads=PEER_WORKLOADS | SLEEP_ASYNC | RESULTS,
        requirements=("saq[hiredis]", "redis[hiredis]", "typing_extensions"),
        settings="Worker(concurrency=C), BLMOVE dequeue; job ttl=-1 (record deleted "
        "on finish), timeout=0; max_concurrent_ops=100, pool of 1000 connections; bulk: "
        "gather of 100 enqueue",
    ),
    System(
        name="taskiq",
        label="taskiq-redis (RedisStreamBroker)",
        kind="peer",
        adapter="peer_taskiq.py",
        workloads=PEER_WORKLOADS | SLEEP_ASYNC | RESULTS,
        requirements=("taskiq", "taskiq-redis", "redis[hiredis]"),
        settings="RedisStreamBroker (xread_count=100, no result backend); taskiq "
        "Receiver in-process, max_async_tasks=C; bulk: gather of 100 kiq",
    ),
    System(
        name="arq",
        label="arq",
        kind="peer",
        adapter="peer_arq.py",
        workloads=PEER_WORKLOADS | SLEEP_ASYNC | RESULTS,
        requirements=("arq", "redis[hiredis]"),
        settings="Worker(max_jobs=C, keep_result=0, poll_delay=0.01 [default 0.5]); "
        "bulk: gather of 100 enqueue_job",
    ),
    System(
        name="dramatiq",
        label="Dramatiq (redis)",
        kind="peer",
        adapter="peer_dramatiq.py",
        workloads=PEER_WORKLOADS | SLEEP_SYNC,
        requirements=("dramatiq[redis]", "redis[hiredis]"),
        settings="RedisBroker, default middleware, max_retries=0; Worker(worker_threads=C, "
        "worker_timeout=100 ms [default 1000]); bulk: 100 sequential send (no bulk API)",
    ),
    System(
        name="huey",
        label="Huey (RedisHuey)",
        kind="peer",
        adapter="peer_huey.py",
        workloads=PEER_WORKLOADS | SLEEP_SYNC,
        requirements=("huey", "redis[hiredis]"),
        settings="RedisHuey(blocking=True [BRPOP, read_timeout=1], results=False, "
        "store_none=False, utc=True, immediate=False); consumer worker_type='thread', "
        "workers=C, periodic=False, initial_delay=0.01, backoff=1.15, max_delay=0.1 s "
        "[defaults 0.1, 1.15, 10; a blocking storage only sleeps after a failed read], "
        "pool of C+10 connections; bulk: 100 sequential enqueues (no bulk API)",
    ),
    System(
        name="rq",
        label="RQ",
        kind="peer",
        adapter="peer_rq.py",
        workloads=frozenset(
            {*ENQUEUE, "processed_c10", "processed_2p", *PINNED, *PAYLOADS, "latency"}
        ),
        requirements=("rq", "redis[hiredis]"),
        settings="SimpleWorker (no fork per job), result_ttl=0, log WARNING; one job at "
        "a time per process (no concurrency knob); bulk: Queue.enqueue_many",
    ),
    System(
        name="celery",
        label="Celery (redis)",
        kind="peer",
        adapter="peer_celery.py",
        workloads=PEER_WORKLOADS | SLEEP_SYNC,
        requirements=("celery[redis]", "redis[hiredis]"),
        settings="--pool=threads -c C, --without-gossip/mingle/heartbeat, "
        "task_ignore_result, worker_disable_rate_limits, prefetch_multiplier=32; "
        "bulk: 100 apply_async on one producer (no bulk API)",
    ),
)


def select(names: str | None) -> tuple[System, ...]:
    """The systems named in a comma list (all when ``None``), in suite order."""
    if not names:
        return SYSTEMS
    wanted = {name.strip() for name in names.split(",")}
    unknown = wanted - {system.name for system in SYSTEMS}
    if unknown:
        raise SystemExit(f"unknown system(s): {', '.join(sorted(unknown))}")
    return tuple(system for system in SYSTEMS if system.name in wanted)
