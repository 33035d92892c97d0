"""Which queues to read next: weighted shares (default) or strict order."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Collection, Mapping

__all__ = ["QueueSelector"]


class QueueSelector:
    """Splits free slots among queues that may have work.

    Weighted mode samples each slot by weight, so a low-weight queue always gets its
    share (no starvation) and shares hold over many fetches. Strict mode gives every
    slot to the first queue in order that may have work.
    """

    def __init__(
        self, weights: Mapping[str, int], *, strict: bool, rng: random.Random | None = None
    ):
        self._weights = dict(weights)
        self._strict = strict
        self._rng = rng or random.Random()

    def plan(self, free: int, skip: Collection[str]) -> list[tuple[str, int]]:
        candidates = [q for q in self._weights if q not in skip]
        if free <= 0 or not candidates:
            return []
        if self._strict or len(candidates) == 1:
            return [(candidates[0], free)]
        weights = [self._weights[q] for q in candidates]
        picks = Counter(self._rng.choices(candidates, weights=weights, k=free))
        return [(q, picks[q]) for q in candidates if picks[q]]
