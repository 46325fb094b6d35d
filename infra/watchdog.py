"""The supervisor's watchdog: a worker with work waiting that decides nothing is replaced.

A worker can look alive and still do nothing: frozen (SIGSTOP, a stuck system call), or
holding its partitions while it reads nothing (seen once on the embedded broker). Its own
API cannot be trusted to say so (a frozen worker does not answer at all), so the watchdog
judges from the outside, from the intake group's position on the broker: the worker has
*lag* (messages past the group's committed offsets, end offsets from the Fetch high
watermark) and its committed offsets have not moved for ``stall_s`` seconds. The intake
commits right after every decided batch, so committed offsets moving is the same as
submissions being decided.

Not a stall: no lag (nothing to do); a worker not ready yet (starting, warming up); a
worker that answers and says ClickHouse is unavailable (it is retrying; a new worker could
not write either); a worker that answers and says it is deciding a batch, for up to
``batch_limit_s`` (the first batch after a start on a national archive waits for the alert
judge's catch-up: 3 s on a quiet machine, 31 s seen on a loaded one, when a 30 s watchdog
replaced it again and again). Pure decisions here; ``infra.stack`` does the restarting.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from infra.offset_check import GroupPosition


@dataclass(frozen=True)
class Health:
    """What the worker's own API said (``answered`` False: it did not answer at all)."""

    answered: bool
    ready: bool = False
    store_healthy: bool = True
    batch_s: float | None = None  # how long the batch being decided has taken so far


@dataclass
class Watchdog:
    """Progress of one worker process, fed one observation at a time."""

    stall_s: float
    batch_limit_s: float = 600.0
    started_at: float = field(default_factory=time.monotonic)
    ready_at: float | None = None
    last_progress: float | None = None  # monotonic
    last_progress_wall: datetime | None = None
    committed: dict[int, int | None] | None = None
    lag: dict[int, int] = field(default_factory=dict)
    state: str = "starting"

    def worker_started(self, now: float | None = None) -> None:
        """A new worker process: nothing is judged until it is ready."""
        self.started_at = time.monotonic() if now is None else now
        self.ready_at = None
        self.last_progress = None
        self.committed = None
        self.state = "starting"

    def _progress(self, now: float) -> None:
        self.last_progress = now
        self.last_progress_wall = datetime.now(UTC)

    def observe(
        self, health: Health, position: GroupPosition | None, now: float | None = None
    ) -> bool:
        """Take one look; True when the worker is stalled and must be replaced."""
        now = time.monotonic() if now is None else now
        if self.ready_at is None:
            if not (health.answered and health.ready):
                self.state = "starting"
                return False
            self.ready_at = now
            self._progress(now)
        if position is None:
            self.state = "broker unreachable"
            return False  # cannot judge; the broker's own supervision handles it
        moved = self.committed is not None and any(
            (offset or 0) > (self.committed.get(partition) or 0)
            for partition, offset in position.committed.items()
        )
        self.committed = dict(position.committed)
        self.lag = position.lag()
        if moved or not any(self.lag.values()):
            self._progress(now)
        if health.answered and not health.store_healthy:
            self._progress(now)  # hold the clock: it retries ClickHouse, a restart cannot help
            self.state = "waiting for ClickHouse"
            return False
        if health.answered and health.batch_s is not None and health.batch_s < self.batch_limit_s:
            self._progress(now)  # deciding a batch is work
            self.state = "deciding a batch"
            return False
        stalled_for = now - (self.last_progress or now)
        if any(self.lag.values()) and self.stall_s > 0 and stalled_for >= self.stall_s:
            self.state = "stalled"
            return True
        self.state = "running" if health.answered else "not answering"
        return False

    def stalled_for(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        return now - (self.last_progress or now)

    def as_dict(self, now: float | None = None) -> dict[str, Any]:
        now = time.monotonic() if now is None else now
        return {
            "state": self.state,
            "lag": sum(self.lag.values()),
            "lag_by_partition": {str(p): lag for p, lag in sorted(self.lag.items())},
            "last_progress_at": (
                self.last_progress_wall.isoformat() if self.last_progress_wall else None
            ),
            "last_progress_s_ago": (
                round(now - self.last_progress, 1) if self.last_progress is not None else None
            ),
        }
