"""Send generated events at a chosen speed: the thin layer between the simulator and Kafka."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime

from producers.publisher import EventPublisher
from producers.simulator.generator import SimulatedEvent


def feed(
    events: Iterable[SimulatedEvent],
    publisher: EventPublisher,
    *,
    speed: float | None,
    stop: threading.Event | None = None,
    on_progress: Callable[[int, datetime], None] | None = None,
    flush_every: int = 5000,
) -> int:
    """Publish events in emit order; ``speed`` is real time × N, or None for as fast as possible.

    The simulated clock starts at the first event's emit time; an event is sent when
    (emit_at − first emit_at) / speed wall seconds have passed. Returns the count sent.
    """
    sent = 0
    first_emit: datetime | None = None
    wall_start = time.monotonic()
    for item in events:
        if stop is not None and stop.is_set():
            break
        if first_emit is None:
            first_emit = item.emit_at
        if speed:
            due = wall_start + (item.emit_at - first_emit).total_seconds() / speed
            wait = due - time.monotonic()
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
