"""The hold a worker process has on its consumer name: two live processes never share one.

Ownership checks (and the delivery fence) tell consumers apart by name, so two live
processes given the same ``consumer`` would pass each other's checks. Each worker
therefore holds a token under ``P:instance:<group>:<name>`` that its heartbeat
refreshes and that expires :data:`TTL_S` seconds after it stops (a crash).

At start, a name held by a token that is

* refreshed while we watch: a live process has the name. Refused with
  :class:`ConfigurationError` (within one heartbeat interval).
* from a process on this very kernel and PID namespace whose pid is gone: its
  holder crashed. Taken at once (a restarted pod or a supervisor's respawn).
* anything else (another host, say): we cannot tell a crash from a pause, so we wait,
  logging why, until the token expires (at most ``TTL_S``), then take the name.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

from strego.broker.base import WorkerRegistration
from strego.errors import ConfigurationError

if TYPE_CHECKING:
    from strego.broker.redis.scripts import Scripts

__all__ = ["TTL_S", "InstanceToken"]

log = logging.getLogger("strego")
TTL_S = 15.0  # the heartbeat refreshes it every 5 s: three missed beats and it is gone


@dataclasses.dataclass(frozen=True, slots=True)
class _Holder:
    """Who holds a name: what the token says about its process."""

    instance: str
    host: str
    pid: int
    kernel: str  # boot id + PID namespace: where a pid means the same process

    @classmethod
    def parse(cls, raw: bytes) -> _Holder:
        try:
            data = json.loads(raw)
            return cls(str(data["i"]), str(data["h"]), int(data["p"]), str(data["k"]))
        except (ValueError, KeyError, TypeError):
            return cls(raw.decode(errors="replace"), "?", 0, "")

    def dumps(self) -> str:
        return json.dumps({"i": self.instance, "h": self.host, "p": self.pid, "k": self.kernel})

    def __str__(self) -> str:
        return f"pid {self.pid} on {self.host}"


def _kernel_id() -> str:
    """This boot and PID namespace ('' where /proc cannot tell: never trusted)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""
    return f"{boot}/{namespace}"


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # it exists, as another user
    return False


class InstanceToken:
    def __init__(
        self, redis: Any, scripts: Scripts, key: str, registration: WorkerRegistration
    ) -> None:
        self._redis = redis
        self._scripts = scripts
        self._key = key
        self._name = registration.name
        self._me = _Holder(secrets.token_hex(8), registration.host, registration.pid, _kernel_id())
        self._token = self._me.dumps()

    async def acquire(self) -> None:
        """Take the name; wait out a crashed holder; refuse a live one."""
        ttl_ms = int(TTL_S * 1000)
        last_ttl: int | None = None
        warned = False
        while True:
            if await self._redis.set(self._key, self._token, nx=True, px=ttl_ms):
                return
            raw = await self._redis.get(self._key)
            if raw is None:
                continue
            holder = _Holder.parse(raw)
            if self._crashed_here(holder):
                log.info("consumer name %r: its previous holder (%s) is gone", self._name, holder)
                await self._redis.delete(self._key)
                continue
            remaining = int(await self._redis.pttl(self._key))
            if last_ttl is not None and remaining > last_ttl + 200:
                raise ConfigurationError(
                    f"consumer name {self._name!r} is in use by a live worker ({holder}): "
                    "two processes must not share a consumer name"
                )
            if not warned:
                log.warning(
                    "consumer name %r is held by %s, which may have crashed: waiting up to "
                    "%.0fs for its hold to expire before starting",
                    self._name,
                    holder,
                    remaining / 1000,
                )
                warned = True
            last_ttl = remaining
            await asyncio.sleep(min(1.0, max(0.05, remaining / 1000)))

    def _crashed_here(self, holder: _Holder) -> bool:
        return (
            bool(self._me.kernel)
            and holder.kernel == self._me.kernel
            and (holder.pid != self._me.pid and _process_gone(holder.pid))
        )

    async def refresh(self) -> None:
        """Keep the hold (from the heartbeat); retake it after an outage; say if lost."""
        status, holder = await self._scripts.instance(
            self._redis, [self._key], [self._token, int(TTL_S * 1000)]
        )
        if int(status) == 0:
            log.error(
                "consumer name %r was taken by another process (%s) while this worker "
                "could not reach Redis: two live workers share it now; stop one",
                self._name,
                _Holder.parse(holder),
            )

    async def release(self) -> None:
        """Give the name up at a clean exit, so a restart need not wait."""
        if await self._redis.get(self._key) == self._token.encode():
            await self._redis.delete(self._key)
