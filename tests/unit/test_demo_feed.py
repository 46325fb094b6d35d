"""The demo (``ostwatch up --simulate``) simulates a window that ends now, compressed, then goes
on live: at 600× a window starting now ran weeks ahead of the wall clock, and CONTRACT §1
refuses events dated more than a day after they arrive (issue 15)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from ostwatch.timeutil import LOCAL_TZ
from producers.feed import LIVE_DAYS, Schedule, demo_window, feed
from producers.simulator import build_province, generate, write_registry
from producers.simulator.generator import SimulatedEvent
from schemas.codec import encode_event
from schemas.models import parse_event_dict
from schemas.reference import parse_registry_dir
from streams.intake.classify import SEQ_HEADER, SOURCE_HEADER, RawMessage, classify

NOW = datetime(2026, 12, 6, 21, 30, tzinfo=UTC)  # 7 December, 04:30 local


def test_the_window_ends_today_and_then_goes_on_live() -> None:
    start, days = demo_window(30, date(2026, 12, 7))
    assert start == date(2026, 11, 7) and days == 30 + LIVE_DAYS


def test_the_schedule_compresses_until_it_catches_the_wall_clock_then_keeps_pace() -> None:
    first = NOW - timedelta(days=30)
    schedule = Schedule(first, NOW, 600.0)
    assert schedule.offset(first) == 0
    assert schedule.offset(first + timedelta(hours=10)) == 60  # 600×
    # The simulated clock meets the wall clock 30 days / 599 after the start (72.1 min)...
    meet = NOW + timedelta(days=30) / 599
    assert abs(schedule.offset(meet) - (meet - NOW).total_seconds()) < 1e-6
    # ...and from then on an event is sent when it happens, never before.
    later = NOW + timedelta(days=2, hours=3)
    assert schedule.offset(later) == (later - NOW).total_seconds()
    assert Schedule(first, NOW, None).offset(first + timedelta(days=29)) == 0  # flat out
    assert Schedule(first, NOW, None).offset(NOW + timedelta(hours=1)) == 3600


def _send_times(events: list[SimulatedEvent], speed: float) -> list[datetime]:
    schedule = Schedule(events[0].emit_at, NOW, speed)
    return [NOW + timedelta(seconds=schedule.offset(item.emit_at)) for item in events]


def test_every_simulated_event_is_accepted_when_the_demo_sends_it(tmp_path: Path) -> None:
    """Three days of history and the day in progress, through the stream's own decisions,
    each message stamped with the moment the demo sends it: nothing is refused."""
    today = NOW.astimezone(LOCAL_TZ).date()
    start, _ = demo_window(3, today)
    province = build_province(seed=1, target_year=start.year)
    write_registry(province, tmp_path)
    registry = parse_registry_dir(tmp_path)
    events = list(generate(province, start=start, days=4, seed=1))
    assert events[-1].emit_at > NOW  # the window reaches past now: those go out live
    sent = _send_times(events, 600.0)
    assert all(at >= datetime.fromisoformat(item.event["occurred_at"])
               for item, at in zip(events, sent, strict=True))  # fmt: skip
    rejected: list[str] = []
    for begin in range(0, len(events), 2000):
        chunk = range(begin, min(begin + 2000, len(events)))
        messages = [
            RawMessage(
                encode_event(parse_event_dict(events[n].event, arrival=sent[n])),
                [(SOURCE_HEADER, b"simulator:1"), (SEQ_HEADER, str(n).encode())],
                "ostwatch.events",
                0,
                n,
                timestamp=sent[n].timestamp(),
            )
            for n in chunk
        ]
        batch = classify(messages, registry, set(), sent[chunk[-1]]).batch
        rejected += [item.reason for item in batch.rejected]
    assert len(events) > 5000 and rejected == []


def test_the_old_plan_sent_events_from_the_future() -> None:
    """What the demo did before: start yesterday, 600× from there. Within two hours of
    wall time its events were days ahead of the wall clock."""
    yesterday = NOW.astimezone(LOCAL_TZ).date() - timedelta(days=1)
    province = build_province(seed=1, target_year=yesterday.year)
    events = list(generate(province, start=yesterday, days=5, seed=1))
    first = events[0].emit_at
    ahead = [
        item
        for item in events
        if (item.emit_at - first) / 600 < timedelta(hours=2)
        and datetime.fromisoformat(item.event["occurred_at"])
        > NOW + (item.emit_at - first) / 600 + timedelta(days=1)
    ]
    assert ahead  # refused under CONTRACT §1: the reason for the new plan


class _Recorder:
    """Stands in for the publisher: records what is published, and when."""

    def __init__(self) -> None:
        self.published: list[dict[str, Any]] = []

    def publish(self, event: dict[str, Any]) -> None:
        self.published.append(event)

    def flush(self) -> None:
        return None


def test_feed_sends_the_past_at_once_and_holds_what_has_not_happened_yet() -> None:
    now = datetime.now(UTC)
    past = [SimulatedEvent(now - timedelta(days=2, minutes=n), {"n": n}) for n in (3, 2, 1)]
    future = SimulatedEvent(now + timedelta(hours=1), {"n": "future"})
    recorder = _Recorder()
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()  # else the feed would wait an hour for it
    started = time.monotonic()
    count = feed([*past, future], recorder, speed=None, stop=stop)  # type: ignore[arg-type]
    assert count == 3 and [e["n"] for e in recorder.published] == [3, 2, 1]
    assert time.monotonic() - started < 30
