"""What every alert rule produces: a ``Condition``, an alert found in the facts before it
is stored, and the way its messages write instants and days for staff.

A condition's identity (kind, facility, subject, occurrence) is chosen so that recomputing it
from the same or later facts gives the same ``alert_id`` (``streams.alerts.rules`` explains
why that matters).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from ostwatch.timeutil import LOCAL_TZ
from schemas.alerts import AlertKind, Severity, alert_id_for


@dataclass(frozen=True)
class Condition:
    """An alert condition found in the facts, before it is stored."""

    kind: AlertKind
    severity: Severity
    facility_id: str
    subject: str
    raised_at: datetime
    message: str
    message_vi: str
    occurrence: str = ""
    id_facility: str | None = None  # overrides facility_id in the id (cross-facility kinds)
    resolved_at: datetime | None = None
    escalated: bool = False
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def alert_id(self) -> str:
        facility = self.facility_id if self.id_facility is None else self.id_facility
        return alert_id_for(self.kind, facility, self.subject, self.occurrence)


def local_time(instant: datetime) -> str:
    """An instant as staff read it: local time, dd/mm/yyyy HH:MM."""
    return instant.astimezone(LOCAL_TZ).strftime("%d/%m/%Y %H:%M")


def local_day(day: date) -> str:
    """A day as staff read it: dd/mm/yyyy."""
    return day.strftime("%d/%m/%Y")
