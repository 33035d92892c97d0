"""How big each workload is and how long it may take: the full run and ``--quick``."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Params:
    enqueue_single_n: int
    enqueue_bulk_n: int
    batch: int = 100
    processed_n: int
    latency_n: int
    latency_gap_s: float = 0.05
    scheduled_n: int
    scheduled_spacing_s: float = 0.02
    rss_n: int
    sleep_sync_n: int
    sleep_async_n: int
    payload_10k_n: int
    payload_1m_n: int
    rss_chunk: int = 20_000
    enqueue_timeout_s: float
    process_timeout_s: float
    latency_timeout_s: float
    rss_timeout_s: float

    @classmethod
    def full(cls) -> Params:
        return cls(
            enqueue_single_n=5_000,
            enqueue_bulk_n=20_000,
            processed_n=20_000,
            latency_n=200,
            scheduled_n=200,
            rss_n=200_000,
            sleep_sync_n=10_000,
            sleep_async_n=40_000,
            payload_10k_n=10_000,
            payload_1m_n=300,
            enqueue_timeout_s=120,
            process_timeout_s=240,
            latency_timeout_s=180,
            rss_timeout_s=900,
        )

    @classmethod
    def quick(cls) -> Params:
        return cls(
            enqueue_single_n=500,
            enqueue_bulk_n=2_000,
            processed_n=2_000,
            latency_n=30,
            scheduled_n=30,
            rss_n=20_000,
            sleep_sync_n=2_000,
            sleep_async_n=8_000,
            payload_10k_n=2_000,
            payload_1m_n=50,
            rss_chunk=10_000,
            enqueue_timeout_s=60,
            process_timeout_s=60,
            latency_timeout_s=60,
            rss_timeout_s=180,
        )
