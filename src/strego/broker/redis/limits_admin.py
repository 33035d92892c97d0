"""Reading global limiters for Inspector.limits(): declarations, use, recent waits.

Two pipelined rounds: the declared limiters with their counters, waits and busiest
keys; then each listed key's state. Read-only; nothing here runs a script.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import Any

from strego.broker.redis.connection import text
from strego.broker.redis.keys import LimitKeys
from strego.records import LimitInfo, LimitKeyUse, LimitWait, ms_to_datetime


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


__all__ = ["read_limits"]

KEYS_SHOWN = 50  # a keyed limiter lists its most recently used keys
WAITS_SHOWN = 20


async def read_limits(redis: Any, prefix: str) -> list[LimitInfo]:
    declared = sorted(text(m) for m in await redis.smembers(LimitKeys.declared(prefix)))
    limiters = []
    for entry in declared:
        queue, _, name = entry.partition("\t")
        limiters.append(LimitKeys(prefix, name, queue or None))
    if not limiters:
        return []
    pipe = redis.pipeline(transaction=False)
    for keys in limiters:
        pipe.hgetall(keys.meta)
        pipe.hgetall(keys.counters)
        pipe.lrange(keys.waits, 0, WAITS_SHOWN - 1)
        pipe.zrevrange(keys.registry, 0, KEYS_SHOWN - 1, withscores=True)
    first = await pipe.execute(raise_on_error=False)
    now_ms = time.time() * 1000
    pipe = redis.pipeline(transaction=False)
    plans = []
    for n, keys in enumerate(limiters):
        meta, counters, waits, used = first[4 * n : 4 * n + 4]
        if not isinstance(meta, dict) or not meta:
            continue  # declared once, not since for a week: its declaration expired
        names = [(text(k), s) for k, s in used] if isinstance(used, list) else []
        if not names:
            names = [("", 0.0)]
        for key, _ in names:
            per_key = keys.per_key(key)
            pipe.hmget(per_key[0], "t", "b")
            pipe.zcount(per_key[1], now_ms, "+inf")
            pipe.zcard(per_key[3])
        plans.append((keys, _decode(meta), _decode(counters), waits, names))
    second = await pipe.execute(raise_on_error=False)
    found, at = [], 0
    for keys, meta, counters, waits, names in plans:
        uses = []
        for key, last in names:
            state, holders, parked = second[at : at + 3]
            at += 3
            uses.append(_key_use(meta, key, last, state, holders, parked, now_ms))
        found.append(_info(keys, meta, counters, waits, uses))
    return found


def _decode(raw: Any) -> dict[str, str]:
    return {text(k): text(v) for k, v in raw.items()} if isinstance(raw, dict) else {}


def _num(value: Any) -> float | None:
    try:
        return float(text(value)) if value is not None else None
    except ValueError:
        return None


def _key_use(
    meta: dict[str, str],
    key: str,
    last: float,
    state: Any,
    holders: Any,
    parked: Any,
    now_ms: float,
) -> LimitKeyUse:
    if meta.get("kind") == "rate":
        tat, book = (state if isinstance(state, list) else [None, None])[:2]
        ahead = max(_num(tat) or 0, _num(book) or 0) - now_ms
        limit = int(meta.get("limit", "1"))
        interval = float(meta.get("per", "1")) * 1000 / limit
        in_use = min(limit, max(0, math.ceil(ahead / interval)))
    else:
        in_use = holders if isinstance(holders, int) else 0
    return LimitKeyUse(
        key=key,
        in_use=in_use,
        parked=parked if isinstance(parked, int) else 0,
        last_used=ms_to_datetime(int(last)) if last else None,
    )


def _info(
    keys: LimitKeys,
    meta: dict[str, str],
    counters: dict[str, str],
    waits: Any,
    uses: list[LimitKeyUse],
) -> LimitInfo:
    recent = []
    for raw in waits if isinstance(waits, list) else []:
        at, _, rest = text(raw).partition(":")
        wait, _, key = rest.partition(":")
        if at.isdigit() and wait.isdigit():
            recent.append(LimitWait(_at(int(at)), int(wait) / 1000, key))
    rate = meta.get("kind") == "rate"
    return LimitInfo(
        name=keys.name,
        kind="rate" if rate else "concurrency",
        queue=keys.queue,
        limit=int(meta.get("limit", "0")),
        per_s=float(meta.get("per", "1")) if rate else None,
        burst=int(meta.get("burst", "1")) if rate else None,
        keyed=meta.get("keyed") == "1",
        in_use=sum(u.in_use for u in uses),
        parked=sum(u.parked for u in uses),
        granted=int(_num(counters.get("granted")) or 0),
        held=int(_num(counters.get("held")) or 0),
        recent_waits=recent,
        keys=[u for u in uses if u.key or meta.get("keyed") != "1"],
    )
