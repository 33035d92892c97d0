"""An embedded redis-server never outlives the process that started it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil

from tests.support.servers import redis_binary

_PARENT = """
import sys, time
from strego.embedded import EmbeddedRedis
server = EmbeddedRedis(binary=sys.argv[1]).start()
print(server.process.pid, flush=True)
time.sleep(60)
"""


def _gone(pid: int, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def test_server_dies_when_parent_is_sigkilled() -> None:
    """SIGKILL of the parent (no cleanup runs) still takes the redis-server down."""
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT, redis_binary()], stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    redis_pid = int(parent.stdout.readline())
    assert psutil.pid_exists(redis_pid)
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    parent.stdout.close()
    assert _gone(redis_pid), "redis-server outlived its SIGKILLed parent"


def test_server_runs_in_its_own_session() -> None:
    """A terminal Ctrl-C (SIGINT to the foreground group) does not hit the server."""
    from strego.embedded import EmbeddedRedis

    with EmbeddedRedis(binary=redis_binary()) as server:
        assert server.process is not None
        assert os.getpgid(server.process.pid) != os.getpgid(0)
