"""What the intake counts since this worker started: for the live view, readiness and
``/api/status``. Written by the intake's ``StageRunner`` and service, read by the web views."""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ostwatch.metrics import LatencyHistogram
from sinks.records import IntakeBatch


@dataclass
class IntakeStats:
    """Counters since this worker started, for the live view and readiness."""

    started_at: float = field(default_factory=time.monotonic)
    batches: int = 0
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    redelivered: int = 0
    write_retries: int = 0
    quarantined: int = 0  # submissions the store refused alone (rejected with its reason)
    last_batch_at: float | None = None
    store_healthy: bool = True
    failure: str | None = None  # why the intake agent stopped; the worker is then leaving
    recent: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=120))
    rejected_reasons: Counter[str] = field(default_factory=Counter)
    freshness: LatencyHistogram = field(default_factory=LatencyHistogram)
    alert_changes: int = 0
    alert_failures: int = 0
    # Wall-clock seconds the committed batches spent in each stage (streams/intake/pipeline.py),
    # and waiting for their messages ("take": from the previous batch's end to this one's start).
    stage_seconds: dict[str, float] = field(default_factory=dict)

    def record_stages(self, spent: Mapping[str, float]) -> None:
        for stage, seconds in spent.items():
            self.stage_seconds[stage] = self.stage_seconds.get(stage, 0.0) + seconds

    def record(self, batch: IntakeBatch) -> None:
        now = time.monotonic()
        self.batches += 1
        self.accepted += len(batch.accepted)
        self.rejected += len(batch.rejected)
        self.duplicates += len(batch.duplicates)
        self.redelivered += len(batch.redelivered)
        self.last_batch_at = now
        self.recent.append((now, len(batch)))
        for item in batch.rejected:
            self.rejected_reasons[item.reason.split(":", 1)[0]] += 1

    def rate(self, window_s: float = 5.0) -> float:
        """Messages decided per second over the last few seconds."""
        now = time.monotonic()
        total = sum(count for at, count in self.recent if now - at <= window_s)
        return total / window_s

    def as_dict(self) -> dict[str, Any]:
        return {
            "uptime_s": round(time.monotonic() - self.started_at, 1),
            "batches": self.batches,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "duplicates": self.duplicates,
            "redelivered": self.redelivered,
            "write_retries": self.write_retries,
            "quarantined": self.quarantined,
            "events_per_s": round(self.rate(), 1),
            "store_healthy": self.store_healthy,
            "failure": self.failure,
            "top_rejection_reasons": dict(self.rejected_reasons.most_common(5)),
            "freshness": self.freshness.summary(),
            "alert_changes": self.alert_changes,
            "alert_failures": self.alert_failures,
            "stage_seconds": {stage: round(s, 3) for stage, s in self.stage_seconds.items()},
        }
