"""From conditions found to alert changes: pure functions of what the rules found and what the
alerts table holds, with no database and no clock of their own.

An alert's identity comes from its condition (``Condition.alert_id``); reconciling gives each
found condition the next version of its stored alert when something a person acts on changed,
opens the new ones, and resolves the stored ones no longer found.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from schemas.alerts import SEVERITY_RANK, Alert, AlertChange
from sinks.alert_store import EPOCH
from streams.alerts.condition import Condition

PATIENT_KINDS = (
    "double_dosing",
    "take_home_violation",
    "inactive_patient_dosed",
    "commune_notification",
    "commune_unknown",
)
STOCK_KINDS = ("stock_low", "stock_out")
CLOCK_KINDS = ("report_due_soon", "report_overdue", "supervision_behind")
# Kinds that record something that happened: they stay open until a person acknowledges them
# (or late events show they did not happen). The others are states that clear by themselves.
INCIDENT_KINDS = frozenset({*PATIENT_KINDS, "count_discrepancy"})

Stored = Mapping[str, tuple[int, Alert]]  # alert_id → (sequence, newest stored version)
Anchors = Mapping[tuple[str, str], tuple[datetime, datetime | None]]


def reconcile(
    found: Sequence[Condition],
    stored: Stored,
    *,
    resolve_at: datetime,
    now: datetime,
    acks: Mapping[str, datetime] | None = None,
) -> list[AlertChange]:
    """Changes that bring ``stored`` (the alerts in the judged scope) to ``found``."""
    acks = acks or {}
    changes: list[AlertChange] = []
    seen: set[str] = set()
    for condition in found:
        alert_id = condition.alert_id
        if alert_id in seen:
            continue
        seen.add(alert_id)
        previous = stored.get(alert_id)
        acknowledged = acks.get(alert_id) or (previous[1].acknowledged_at if previous else None)
        alert = alert_for(condition, acknowledged, resolve_at, noticed_at=now)
        if previous is None:
            first = "opened" if alert.status == "open" else "resolved"
            changes.append(AlertChange(change=first, sequence=1, alert=alert))
            continue
        sequence, old = previous
        alert = alert.model_copy(update={"noticed_at": old.noticed_at})
        if same(old, alert):
            continue
        change = "resolved" if alert.status == "resolved" and old.status == "open" else "updated"
        if alert.status == "open" and old.status == "resolved":
            change = "opened"
        changes.append(AlertChange(change=change, sequence=sequence + 1, alert=alert))
    for alert_id, (sequence, old) in stored.items():
        if alert_id in seen or old.status == "resolved":
            continue
        gone = old.model_copy(update={"status": "resolved", "resolved_at": resolve_at})
        changes.append(AlertChange(change="resolved", sequence=sequence + 1, alert=gone))
    return changes


def alert_for(
    condition: Condition,
    acknowledged_at: datetime | None,
    at: datetime,
    noticed_at: datetime | None = None,
) -> Alert:
    """The alert a condition stands for at ``at``: resolved once it ended, or once a person
    acknowledged an incident."""
    status = "open"
    resolved_at = condition.resolved_at
    if resolved_at is not None and resolved_at <= at:
        status = "resolved"
    elif acknowledged_at is not None and condition.kind in INCIDENT_KINDS:
        status, resolved_at = "resolved", acknowledged_at
    else:
        resolved_at = None
    return Alert(
        alert_id=condition.alert_id,
        kind=condition.kind,
        severity=condition.severity,
        facility_id=condition.facility_id,
        subject=condition.subject,
        raised_at=condition.raised_at,
        status=status,
        message=condition.message,
        message_vi=condition.message_vi,
        resolved_at=resolved_at,
        noticed_at=noticed_at,
        acknowledged_at=acknowledged_at,
        escalated=condition.escalated,
        details=dict(condition.details),
    )


def same(old: Alert, new: Alert) -> bool:
    """Whether a change is worth a new version: what a person acts on, not every number."""
    keys = ("kind", "severity", "facility_id", "status", "escalated", "acknowledged_at")
    return all(getattr(old, k) == getattr(new, k) for k in keys)


def key_of(alert: Alert) -> tuple[str, str]:
    """The stock key (facility, item) of a stock or count alert."""
    return alert.facility_id, alert.subject


def only(stored: Stored, kinds: Sequence[str]) -> dict[str, tuple[int, Alert]]:
    """The stored alerts of these kinds."""
    return {k: v for k, v in stored.items() if v[1].kind in kinds}


def order_alerts(alerts: Iterable[Alert]) -> list[Alert]:
    """Open first, then by severity, newest first."""
    return sorted(
        alerts,
        key=lambda a: (
            a.status != "open",
            SEVERITY_RANK[a.severity],
            -a.raised_at.timestamp(),
            a.alert_id,
        ),
    )


def stock_identities(found: Sequence[Condition], stored: Stored, at: datetime) -> list[Condition]:
    """A stock condition keeps the id of the alert open for it at ``at``; a new one is
    dated by the instant it is first seen."""
    open_at = {
        (a.kind, a.facility_id, a.subject): a
        for _, a in stored.values()
        if a.raised_at <= at and (a.resolved_at is None or a.resolved_at > at)
    }
    named = []
    for condition in found:
        existing = open_at.get((condition.kind, condition.facility_id, condition.subject))
        if existing is not None:
            occurrence = existing.raised_at.isoformat()
            raised_at = existing.raised_at
        else:
            occurrence, raised_at = at.isoformat(), at
        named.append(replace(condition, occurrence=occurrence, raised_at=raised_at))
    return named


def recounted_alerts(
    counts: Stored, recounted: Iterable[tuple[str, str]], anchors: Anchors
) -> tuple[dict[str, tuple[int, Alert]], list[AlertChange]]:
    """Split the stored count discrepancies of the recounted stock keys: those raised after
    their key's anchor are judged again (the first part); those up to it were not, but an open
    one is resolved by the first count after the anchor, which supersedes it (the second)."""
    keys = set(recounted)
    judged: dict[str, tuple[int, Alert]] = {}
    superseded: list[AlertChange] = []
    for alert_id, (sequence, alert) in counts.items():
        key = key_of(alert)
        if key not in keys:
            continue
        anchor_at, recount_at = anchors.get(key, (EPOCH, None))
        if alert.raised_at > anchor_at:
            judged[alert_id] = (sequence, alert)
        elif recount_at is not None and alert.status == "open":
            resolved = alert.model_copy(update={"status": "resolved", "resolved_at": recount_at})
            superseded.append(AlertChange(change="resolved", sequence=sequence + 1, alert=resolved))
    return judged, superseded
