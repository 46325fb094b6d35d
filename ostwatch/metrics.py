"""Small in-process metrics: a latency histogram with exact-enough percentiles."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class LatencyHistogram:
    """Counts latencies in 1 ms buckets up to ``limit_ms`` (larger ones in the last bucket).

    Constant memory and O(1) recording, so the worker can record every message; a
    percentile is exact to the millisecond below the limit.
    """

    limit_ms: int = 60_000
    count: int = 0
    total_ms: float = 0.0
    max_ms: float = 0.0
    _buckets: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._buckets = [0] * (self.limit_ms + 1)

    def record(self, latency_s: float) -> None:
        latency_ms = max(0.0, latency_s * 1000)
        self._buckets[min(int(latency_ms), self.limit_ms)] += 1
        self.count += 1
        self.total_ms += latency_ms
        self.max_ms = max(self.max_ms, latency_ms)

    def percentile(self, share: float) -> float | None:
        """The latency (ms, upper edge of its bucket) below which ``share`` of samples fall."""
        if not self.count:
            return None
        rank = max(1, int(share * self.count + 0.999999))
        seen = 0
        for bucket, n in enumerate(self._buckets):
            seen += n
            if seen >= rank:
                return float(min(bucket + 1, self.limit_ms))
        return float(self.limit_ms)

    def reset(self) -> None:
        self._buckets = [0] * (self.limit_ms + 1)
        self.count, self.total_ms, self.max_ms = 0, 0.0, 0.0

    def summary(self) -> dict[str, float | int | None]:
        return {
            "samples": self.count,
            "p50_ms": self.percentile(0.50),
            "p95_ms": self.percentile(0.95),
            "p99_ms": self.percentile(0.99),
            "max_ms": round(self.max_ms, 1),
            "mean_ms": round(self.total_ms / self.count, 1) if self.count else None,
        }


def resident_memory_mb() -> float | None:
    """This process's resident memory now (not its peak), for ``/api/status``; Linux only."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return round(pages * os.sysconf("SC_PAGE_SIZE") / 1e6, 1)
