"""Lua scripts: loaded from ``lua/*.lua`` once, run by EVALSHA, reloaded on NOSCRIPT.

``_lib.lua`` holds the helpers (ownership check, finished ring, counters), written
once; each script is loaded with the helpers it uses prepended (see :func:`with_lib`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from importlib import resources
from typing import Any

from redis.exceptions import NoScriptError, ResponseError

from strego.broker.redis.fastconn import lean_pipeline
from strego.broker.redis.topology import RedisClient

__all__ = ["Script", "ScriptCall", "Scripts"]

KeyOrArg = str | bytes | int | float


class Script:
    """One Lua script with its SHA1, so calls cost one EVALSHA."""

    def __init__(self, name: str, source: str) -> None:
        self.name = name
        self.source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()

    async def load(self, client: Any) -> None:
        # On a cluster redis-py sends SCRIPT LOAD to every master (a promoted replica
        # lacks scripts: Redis does not replicate SCRIPT LOAD), so one call covers all.
        await client.script_load(self.source)

    async def __call__(
        self, client: Any, keys: Sequence[KeyOrArg], args: Sequence[KeyOrArg]
    ) -> Any:
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            await self.load(client)
            return await client.evalsha(self.sha, len(keys), *keys, *args)


ScriptCall = tuple[Script, Sequence[KeyOrArg], Sequence[KeyOrArg]]


def _read(name: str) -> str:
    return resources.files("strego.broker.redis").joinpath("lua", f"{name}.lua").read_text()


# A top-level definition of _lib.lua: "local function name(" or "local NAME =" at the
# start of a line; it runs until the next one.
_DEFINITION = re.compile(r"^local (?:function )?([A-Za-z_]\w*)", re.M)
_WORD = re.compile(r"[A-Za-z_]\w*")


def with_lib(lib: str, source: str) -> str:
    """``source`` with the definitions of ``lib`` it uses (transitively), in lib order.

    Every call of a script runs its whole text, so each helper it carries is a closure
    built per call: prepending all of them cost every call a few microseconds of Redis
    CPU (measured; the hot enqueue, fetch and ack scripts use few of them). A name
    that appears only in a comment just includes one helper more: harmless.
    """
    starts = list(_DEFINITION.finditer(lib))
    head = lib[: starts[0].start()] if starts else lib
    chunks = {
        m.group(1): lib[m.start() : starts[i + 1].start() if i + 1 < len(starts) else len(lib)]
        for i, m in enumerate(starts)
    }
    wanted: set[str] = set()
    todo = [source]
    while todo:
        for word in set(_WORD.findall(todo.pop())):
            if word in chunks and word not in wanted:
                wanted.add(word)
                todo.append(chunks[word])
    kept = [chunks[m.group(1)] for m in starts if m.group(1) in wanted]
    return head + "".join(kept) + source


class Scripts:
    """Every script strego runs, by name."""

    def __init__(self) -> None:
        lib = _read("_lib")
        names = (
            "enqueue", "enqueue_many", "fetch", "ack", "retry", "dead", "promote", "renew",
            "claim", "cancel", "requeue", "delete", "handover", "release", "prepare",
            "trim_dead", "instance", "watch",
        )  # fmt: skip
        loaded = {name: Script(name, with_lib(lib, _read(name))) for name in names}
        # Global limits (issue 16): the fetch script checks queue-wide limits itself.
        # _limits.lua goes in whole (its constants sit between its functions).
        limits_lib = _read("_limits")
        for name in (
            "fetch",
            "limit_rate",
            "limit_acquire",
            "limit_release",
            "limit_renew",
            "limit_ahead",
        ):
            loaded[name] = Script(name, with_lib(lib, limits_lib + _read(name)))
        loaded["park"] = Script("park", with_lib(lib, _read("park")))
        self.limit_rate = loaded["limit_rate"]
        self.limit_acquire = loaded["limit_acquire"]
        self.limit_release = loaded["limit_release"]
        self.limit_renew = loaded["limit_renew"]
        self.limit_ahead = loaded["limit_ahead"]
        self.park = loaded["park"]
        self.enqueue = loaded["enqueue"]
        self.enqueue_many = loaded["enqueue_many"]
        self.fetch = loaded["fetch"]
        self.ack = loaded["ack"]
        self.retry = loaded["retry"]
        self.dead = loaded["dead"]
        self.promote = loaded["promote"]
        self.renew = loaded["renew"]
        self.claim = loaded["claim"]
        self.cancel = loaded["cancel"]
        self.requeue = loaded["requeue"]
        self.delete = loaded["delete"]
        self.handover = loaded["handover"]
        self.release = loaded["release"]
        self.prepare = loaded["prepare"]
        self.trim_dead = loaded["trim_dead"]
        self.instance = loaded["instance"]
        self.watch = loaded["watch"]
        self._loaded: set[str] = set()  # SHAs this process has loaded at least once

    async def run_many(self, client: RedisClient, calls: Sequence[ScriptCall]) -> list[Any]:
        """Run many script calls in one pipeline (one round trip when all are loaded).

        Results are returned in order; a script error is returned as the exception
        instance so one bad call does not hide the others' results.
        """
        if not calls:
            return []
        # Load a script before its first pipeline: else a first enqueue_many of 500
        # tasks is 500 NOSCRIPT errors and a second round trip.
        for script in {call[0] for call in calls if call[0].sha not in self._loaded}:
            await script.load(client)
            self._loaded.add(script.sha)
        if len(calls) == 1:  # the common case (one queue, an idle worker): no pipeline
            script, keys, args = calls[0]
            try:
                return [await script(client, keys, args)]
            except ResponseError as exc:  # same contract as the pipeline: returned
                return [exc]
        results = await _pipeline(client, calls)
        missing = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
        if missing:  # after a Redis restart or SCRIPT FLUSH: load and re-run those
            for script in {calls[i][0] for i in missing}:
                await script.load(client)
            again = await _pipeline(client, [calls[i] for i in missing])
            for i, result in zip(missing, again, strict=True):
                results[i] = result
        return results


async def _pipeline(client: RedisClient, calls: Sequence[ScriptCall]) -> list[Any]:
    lean = await lean_pipeline(
        client, [("EVALSHA", script.sha, len(keys), *keys, *args) for script, keys, args in calls]
    )
    if lean is not None:
        return [_classify(r) for r in lean]
    pipe = client.pipeline(transaction=False)
    for script, keys, args in calls:
        # execute_command, not pipe.evalsha: redis-py blocks the latter in cluster
        # pipelines (a node may lack the script); NOSCRIPT is handled by run_many.
        # On a cluster the pipeline is split per node, each call routed by its keys.
        pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
    results: list[Any] = await pipe.execute(raise_on_error=False)
    return [_classify(r) for r in results]


def _classify(result: Any) -> Any:
    if isinstance(result, ResponseError) and str(result).startswith("NOSCRIPT"):
        return NoScriptError(str(result))
    return result
