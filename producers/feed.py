"""Send generated events at a chosen speed: the thin layer between the simulator and Kafka.

No event is sent before it happens: the simulated clock runs ``speed`` times faster than the
wall clock only until it has caught up with it, then keeps pace (CONTRACT §1 refuses events
dated more than a day after they reach the platform). A demo therefore simulates a window
that ends now — ``demo_window`` days back, compressed — and then goes on live.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from ostwatch.timeutil import utc_now
from producers.publisher import EventPublisher
from producers.simulator.generator import SimulatedEvent

# How long a demo goes on live once its simulated clock has caught up with the wall clock.
LIVE_DAYS = 366


def demo_window(history_days: int, today: date) -> tuple[date, int]:
    """(first day, days to generate) for a demo: ``history_days`` whole local days before
    ``today``, sent compressed, then today and LIVE_DAYS more, sent as they happen."""
    return today - timedelta(days=history_days), history_days + LIVE_DAYS


@dataclass(frozen=True, slots=True)
class Schedule:
    """When each event is sent, in seconds after the feed started at ``started_at``.

    Compressed: (emit_at − first emit_at) / speed (no wait at all when ``speed`` is None);
    but never before emit_at itself, so once the simulated clock reaches the wall clock it
    runs at 1× (live) and no event ever arrives before its own time.
    """

    first_emit: datetime
    started_at: datetime
    speed: float | None

    def offset(self, emit_at: datetime) -> float:
        compressed = (emit_at - self.first_emit).total_seconds() / self.speed if self.speed else 0.0
        return max(compressed, (emit_at - self.started_at).total_seconds())


def feed(
    events: Iterable[SimulatedEvent],
    publisher: EventPublisher,
    *,
    speed: float | None,
    stop: threading.Event | None = None,
    on_progress: Callable[[int, datetime], None] | None = None,
    flush_every: int = 5000,
    now: Callable[[], datetime] = utc_now,
) -> int:
    """Publish events in emit order as ``Schedule`` says (``speed`` is real time × N, or None
    for as fast as possible up to the wall clock); returns the count sent."""
    sent = 0
    schedule: Schedule | None = None
    wall_start = time.monotonic()
    started_at = now()
    for item in events:
        if stop is not None and stop.is_set():
            break
        if schedule is None:
            schedule = Schedule(item.emit_at, started_at, speed)
        wait = wall_start + schedule.offset(item.emit_at) - time.monotonic()
        if wait > 0:
            publisher.flush()
            if stop is not None:
                if stop.wait(wait):
                    break
            else:
                time.sleep(wait)
        publisher.publish(item.event)
        sent += 1
        if sent % flush_every == 0:
            publisher.flush()
        if on_progress is not None:
            on_progress(sent, item.emit_at)
    publisher.flush()
    return sent
