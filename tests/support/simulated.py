"""A simulated province in a real embedded ClickHouse, fed through the real intake and alert
engine (no broker):
what the dashboards, the alert rules and the live view are tested on.

The simulator sends clean data, so a few lines a real feed also brings are added on purpose
(declared here, not hidden): three lines that are not valid events and three events sent
twice, so the data-quality panels have rejections and duplicates to show.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from dashboards.render import TimeRange
from ostwatch.settings import AlertSettings
from ostwatch.timeutil import LOCAL_TZ
from producers.simulator.generator import generate
from producers.simulator.province import build_province
from producers.simulator.registry_files import write_registry
from tests.support.intake import IntakeHarness

# Start so that the run crosses the 25th, the monthly reports' due day (timeliness panel).
START = date(2024, 3, 24)
DAYS = 9
BAD_LINES: tuple[bytes, ...] = (
    b"not json at all",
    b'{"event_type": "dose.dispensed", "schema_version": 1}',
    b'{"event_id": "00000000-0000-4000-8000-000000000001", "event_type": "stock.counted", '
    b'"schema_version": 1, "occurred_at": "2024-03-22T08:00:00+07:00", '
    b'"facility_id": "NOWHERE", "item": "MET-10", "quantity_on_hand": 5}',
)


@dataclass
class SimulatedProvince:
    harness: IntakeHarness
    events: list[dict[str, Any]]
    start: date
    days: int

    @property
    def db(self) -> Any:
        return self.harness.db

    def time_range(self, end: datetime | None = None) -> TimeRange:
        """From the first simulated day to ``end`` (default: the wall clock, which covers
        when the submissions were decided)."""
        start = datetime.combine(self.start, datetime.min.time(), LOCAL_TZ)
        return TimeRange(start, end or datetime.now(LOCAL_TZ) + timedelta(hours=1))


def load_province(
    chdb_dir: Path, tmp: Path, *, start: date = START, days: int = DAYS
) -> SimulatedProvince:
    province = build_province(seed=1, target_year=start.year)
    registry_dir = tmp / "registry"
    write_registry(province, registry_dir, live_from=start)
    harness = IntakeHarness(chdb_dir, registry_dir, alert_settings=AlertSettings())
    events = [item.event for item in generate(province, start=start, days=days, seed=1)]
    for index in range(0, len(events), 5000):
        harness.send(events[index : index + 5000], framing="batch")
    harness.send([*BAD_LINES, *events[:3]], framing="line")
    return SimulatedProvince(harness, events, start, days)
