"""Alerts: what the platform raises (CONTRACT §4), as stored, published and reported.

An alert is one *condition* (a kind, a facility and a subject, plus whatever makes it a
distinct occurrence), so its ``alert_id`` is derived from those and nothing else: the same
condition found again, by another worker or a replay, gets the same id and never a second
alert. ``raised_at`` is the event time at which the condition began (deterministic, so a
report as of T gives the same answer however often it is recomputed); ``noticed_at`` is the
wall-clock time the live stream first stored it.

Changes travel on the alerts topic as ``AlertChange`` JSON (key: ``alert_id``), which is
what the notifiers consume.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal, get_args

import orjson
from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "ALERT_KINDS",
    "ALERT_NAMESPACE",
    "LETTER_DOCUMENT",
    "LETTER_VERSION",
    "SEVERITY_RANK",
    "AckSelection",
    "Alert",
    "AlertChange",
    "AlertKind",
    "ChangeKind",
    "Severity",
    "alert_id_for",
]

AlertKind = Literal[
    "stock_low",
    "stock_out",
    "count_discrepancy",
    "double_dosing",
    "take_home_violation",
    "inactive_patient_dosed",
    "report_due_soon",
    "report_overdue",
    "supervision_behind",
    "commune_notification",
    "commune_unknown",
]
ALERT_KINDS: tuple[str, ...] = get_args(AlertKind)

Severity = Literal["info", "warning", "critical"]
SEVERITY_RANK: dict[str, int] = {"critical": 0, "warning": 1, "info": 2}

ChangeKind = Literal["opened", "updated", "resolved"]

# What a month's letters to communes (``ostwatch notices``) say they are, so that the
# facility's ``notices resolve`` knows a letter when it reads one.
LETTER_DOCUMENT = "ostwatch.commune_letters"
LETTER_VERSION = 1

# Fixed forever: changing it would give every existing condition a new alert_id.
ALERT_NAMESPACE = uuid.UUID("6f1d3c52-8a0e-4d4b-9a57-0c2b1e7f4a10")


def alert_id_for(kind: str, facility_id: str, subject: str, occurrence: str = "") -> str:
    """The stable id of one condition: a UUID5 over what identifies it."""
    return str(uuid.uuid5(ALERT_NAMESPACE, "\x1f".join((kind, facility_id, subject, occurrence))))


class Alert(BaseModel):
    """One alert as CONTRACT §4 lists it, plus what delivery and dashboards need."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    alert_id: str
    kind: AlertKind
    severity: Severity
    facility_id: str
    subject: str = Field(description="item code, patient_ref, or report_type/period")
    raised_at: datetime = Field(description="event time at which the condition began")
    status: Literal["open", "resolved"]
    message: str = Field(description="English, one line")
    message_vi: str = Field(description="Vietnamese, one line")
    resolved_at: datetime | None = None
    noticed_at: datetime | None = Field(
        default=None, description="wall clock when the live stream first stored it"
    )
    acknowledged_at: datetime | None = None
    escalated: bool = False
    details: dict[str, Any] = Field(
        default_factory=dict,
        description="kind-specific facts: on_hand, days_of_supply, commune, due_date, …",
    )

    def as_json(self) -> dict[str, Any]:
        """JSON-ready dict, instants as RFC 3339 UTC."""
        data: dict[str, Any] = orjson.loads(orjson.dumps(self.model_dump(mode="json")))
        return data


class AlertChange(BaseModel):
    """One message on the alerts topic: an alert opened, changed (severity, escalation,
    acknowledgement) or resolved. ``sequence`` grows per alert, so a notifier can tell a
    redelivered change from a new one (idempotency key: ``alert_id``/``sequence``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    change: ChangeKind
    sequence: int = Field(ge=1)
    alert: Alert

    @property
    def idempotency_key(self) -> str:
        return f"{self.alert.alert_id}/{self.sequence}"

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))

    @classmethod
    def from_bytes(cls, raw: bytes) -> AlertChange:
        return cls.model_validate_json(raw)


class AckSelection(BaseModel):
    """Which alerts one acknowledgement covers (``ostwatch alerts ack``): the alerts named by
    id, or every open alert not yet acknowledged that matches all the filters given. Bulk
    acknowledgement exists for what a person handles as one: a month's letters to a commune,
    or the notices a facility's onboarding raised."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    alert_ids: tuple[str, ...] = ()
    kinds: tuple[AlertKind, ...] = ()
    communes: tuple[str, ...] = Field(default=(), description="details.commune of the alert")
    facilities: tuple[str, ...] = ()
    before: datetime | None = Field(default=None, description="raised strictly before this")

    @model_validator(mode="after")
    def _ids_or_filters(self) -> AckSelection:
        filters = bool(self.kinds or self.communes or self.facilities or self.before)
        if self.alert_ids and filters:
            raise ValueError("give alert ids or filters, not both")
        if not self.alert_ids and not filters:
            raise ValueError(
                "name the alerts: alert ids, or filters (--kind, --commune, --facility, --before)"
            )
        if self.before is not None and self.before.tzinfo is None:
            raise ValueError("before: needs an offset, e.g. 2024-03-25T00:00:00+07:00")
        return self

    def matches(self, alert: Alert) -> bool:
        """Whether ``alert`` is covered (by id; or open, unacknowledged and every filter met)."""
        if self.alert_ids:
            return alert.alert_id in self.alert_ids
        return (
            alert.status == "open"
            and alert.acknowledged_at is None
            and (not self.kinds or alert.kind in self.kinds)
            and (not self.communes or alert.details.get("commune") in self.communes)
            and (not self.facilities or alert.facility_id in self.facilities)
            and (self.before is None or alert.raised_at < self.before)
        )
