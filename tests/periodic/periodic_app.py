"""A worker process declaring one every-second schedule, for the SIGKILL test.

STREGO_REDIS_URL, STREGO_PREFIX, WORKER_LOG (each run's task id is appended to it,
outside the system under test), SKEW_S (this process' wall clock runs that many seconds
off). Run: python -m tests.periodic.periodic_app
"""

from __future__ import annotations

import os

import strego


def build() -> strego.Server:
    broker = strego.RedisBroker(
        os.environ["STREGO_REDIS_URL"],
        prefix=os.environ["STREGO_PREFIX"],
        group="tests",
        claim_stale_after=1.0,  # a killed worker's taken run is reclaimed quickly
        claim_check_interval=0.2,
    )
    server = strego.Server(
        broker,
        concurrency=4,
        shutdown_timeout=5,
        periodic=[strego.Periodic("beat", every=1)],
    )

    @server.handle("beat")
    def beat(task: strego.Task) -> None:  # sync: runs in the worker's threads
        with open(os.environ["WORKER_LOG"], "a") as log:
            log.write(f"{task.id} {os.getpid()}\n")
            log.flush()
            os.fsync(log.fileno())

    return server


if __name__ == "__main__":
    if os.environ.get("SKEW_S"):
        from tests.faults.skew import skew_clock

        skew_clock(float(os.environ["SKEW_S"]))
    build().run()
