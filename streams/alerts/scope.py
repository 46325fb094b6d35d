"""What a batch touched, as the alert engine judges it again: patients, tests of no patient,
stock keys from their earliest movement, and whether deadlines or supervision may change."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

from ostwatch.timeutil import LOCAL_TZ
from schemas.models import BaseEvent
from sinks.alert_store import STOCK_EVENT_TYPES


@dataclass
class AlertScope:
    """What a batch touched: patients, tests of no patient (by event_id), and per stock key
    (facility, item) the earliest movement (counts after the last count before its local
    day are judged again)."""

    patients: set[str] = field(default_factory=set)
    tests: set[str] = field(default_factory=set)
    stock_from: dict[tuple[str, str], datetime] = field(default_factory=dict)
    clock: bool = False

    @property
    def stock(self) -> dict[tuple[str, str], date]:
        """Per stock key, the local day of its earliest movement."""
        return {key: at.astimezone(LOCAL_TZ).date() for key, at in self.stock_from.items()}

    def add(
        self,
        event_type: str,
        facility: str,
        item: str,
        patient: str,
        at: datetime,
        event_id: str = "",
    ) -> None:
        if patient:
            self.patients.add(patient)
        elif event_type == "test.performed" and event_id:
            self.tests.add(event_id)
        if event_type in STOCK_EVENT_TYPES and item:
            key = (facility, item)
            self.stock_from[key] = min(at, self.stock_from.get(key, at))
        if event_type in ("report.submitted", "supervision.visited"):
            self.clock = True

    def __bool__(self) -> bool:
        return bool(self.patients or self.tests or self.stock_from or self.clock)


def scope_of(events: Iterable[BaseEvent]) -> AlertScope:
    scope = AlertScope()
    for event in events:
        scope.add(
            event.event_type,
            event.facility_id,
            str(getattr(event, "item", "") or ""),
            str(getattr(event, "patient_ref", "") or ""),
            event.occurred_at_utc,
            event.event_id,
        )
    return scope
