"""What a due schedule fires: the catch-up rules as one pure function.

A worker reads (on Redis' clock) a schedule's stored next fire time and the time now,
and asks :func:`plan` which ticks to enqueue and what the next fire time becomes. The
compare-and-set script then applies that plan only if the stored next fire time is
still the one it was computed from, so two workers never both apply one.
"""

from __future__ import annotations

import collections
import dataclasses

from strego.periodic.schedule import PeriodicSpec

__all__ = ["FirePlan", "plan"]

# Far behind (a week-long outage of a minutely cron): only this much of the past is
# walked, so the work per call stays bounded. Older ticks count as missed either way.
_LOOK_BACK_MS = 7 * 86_400_000


@dataclasses.dataclass(frozen=True, slots=True)
class FirePlan:
    """Ticks to enqueue (ascending epoch ms) and the schedule's next fire time."""

    ticks: tuple[int, ...]
    next_ms: int
    missed: int  # due ticks not fired (catch-up rules, lateness)


def plan(
    spec: PeriodicSpec,
    *,
    stored_next_ms: int,
    now_ms: int,
    catchup: str,
    max_catchup: int,
    max_lateness_ms: int,
) -> FirePlan:
    """Apply the catch-up rules to the ticks due in ``[stored_next_ms, now_ms]``.

    ``stored_next_ms <= 0`` means the schedule was just declared, changed or resumed:
    nothing is due, it starts at the first tick after now. ``latest`` fires the last
    due tick if it is at most ``max_lateness_ms`` late; ``all`` the last
    ``max_catchup`` due ticks; ``none`` the due tick only when it is the only one (no
    tick was missed) and at most ``max_lateness_ms`` late.
    """
    next_ms = spec.next_after(now_ms)
    if stored_next_ms <= 0 or stored_next_ms > now_ms:
        return FirePlan((), next_ms if stored_next_ms <= 0 else stored_next_ms, 0)
    start = max(stored_next_ms, now_ms - _LOOK_BACK_MS)
    skipped = 0 if start == stored_next_ms else 1  # at least one older tick was missed
    keep = max_catchup if catchup == "all" else 1
    recent: collections.deque[int] = collections.deque(maxlen=keep)
    due = 0
    for tick in spec.iter_from(start):
        if tick > now_ms:
            break
        recent.append(tick)
        due += 1
    if not recent:  # a tick vanished (the definition changed under the stored time)
        return FirePlan((), next_ms, 0)
    if catchup == "all":
        fire = tuple(recent)
    elif now_ms - recent[-1] > max_lateness_ms or (catchup == "none" and due + skipped > 1):
        fire = ()
    else:
        fire = (recent[-1],)
    return FirePlan(fire, next_ms, due + skipped - len(fire))
