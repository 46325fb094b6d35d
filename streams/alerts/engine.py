"""The alert engine: judges the rules over what changed, and keeps the stored alerts in step.

Live, the judging worker (``streams.alerts.judge``) calls ``after_intake`` with every batch it
archived (before it commits the offsets), ``sweep`` for what other workers archived, and a
timer calls ``on_clock`` for what the wall clock changes (deadlines, supervision, escalation,
stock as days pass). Each returns ``AlertChange``s: the worker publishes them on the alerts
topic, then ``commit``s them to the alerts table. If it dies in between, the batch is
redelivered, judged again against the unchanged table, and the same changes (same
``alert_id`` and ``sequence``) are published again: notifiers deduplicate on that key.
Reports read the table (``current``) or judge everything afresh as of T (``as_of``), which
never writes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

from ostwatch.settings import AlertSettings
from ostwatch.timeutil import LOCAL_TZ, utc_now
from schemas.alerts import SEVERITY_RANK, AckSelection, Alert, AlertChange
from schemas.models import BaseEvent
from schemas.reference import RegistrySnapshot
from sinks.alert_store import EPOCH, STOCK_EVENT_TYPES, PatientFact
from sinks.records import Accepted
from sinks.reports import Reports, Scope
from sinks.store import Store
from streams.alerts.judge import Sweep
from streams.alerts.rules import (
    ANONYMOUS_TEST,
    Condition,
    anonymous_test_conditions,
    count_conditions,
    deadline_conditions,
    escalation,
    patient_conditions,
    stock_conditions,
    supervision_conditions,
)

log = logging.getLogger(__name__)

PATIENT_KINDS = (
    "double_dosing",
    "take_home_violation",
    "inactive_patient_dosed",
    "commune_notification",
    "commune_unknown",
)
STOCK_KINDS = ("stock_low", "stock_out")
PATIENT_SLICE = 5000
# The events whose commune must be told (with a positive test's); see rules._trigger.
NOTIFYING_EVENTS = (
    "patient.enrolled",
    "patient.violation",
    "patient.discharged",
    "test.performed",
)
CLOCK_KINDS = ("report_due_soon", "report_overdue", "supervision_behind")
# Kinds that record something that happened: they stay open until a person acknowledges them
# (or late events show they did not happen). The others are states that clear by themselves.
INCIDENT_KINDS = frozenset({*PATIENT_KINDS, "count_discrepancy"})


@dataclass(frozen=True)
class Acknowledged:
    """What one acknowledgement did: a change per alert it acknowledged, and how many of the
    alerts it named had been acknowledged before (left as they were)."""

    changes: list[AlertChange]
    already: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "acknowledged": len(self.changes),
            "already_acknowledged": self.already,
            "changes": [change.model_dump(mode="json") for change in self.changes],
        }


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


class AlertEngine:
    """Judges alert conditions and reconciles them with the alerts table."""

    def __init__(self, store: Store, settings: AlertSettings, *, live: bool = False) -> None:
        """``live``: the worker's engine, which keeps the stored alerts in memory."""
        self.store = store
        self.settings = settings
        self.table = store.alerts(cached=live)

    # -- live --------------------------------------------------------------------------

    def index(self, accepted: Sequence[Accepted]) -> None:
        """Add the batch's patient events to the per-patient index (idempotent)."""
        self.table.index_accepted(accepted)

    def after_intake(
        self, events: Sequence[BaseEvent], now: datetime | None = None
    ) -> list[AlertChange]:
        """Judge everything the archived batch touched; the changes are not yet stored."""
        scope = scope_of(events)
        if not scope:
            return []
        return self._judge(scope, now or utc_now())

    def on_clock(self, now: datetime | None = None) -> list[AlertChange]:
        """Judge what the passing of time changes: deadlines, supervision, escalation, stock."""
        now = now or utc_now()
        registry = self.store.registry()
        self.table.acknowledgements()  # acknowledged elsewhere: no longer open, not escalated
        # Open ones suffice: these kinds are states, and a state found again after it
        # cleared is a new episode with a new id.
        stored = self.table.stored(kinds=(*CLOCK_KINDS, *STOCK_KINDS), open_only=True)
        notices = self.table.stored(kinds=("commune_notification",), open_only=True)
        at = self._reports().moment(None)
        found = self._clock_conditions(registry, now)
        changes = self._reconcile(found, _only(stored, CLOCK_KINDS), resolve_at=now, now=now)
        if at is not None:
            stock = self._stock_conditions(at.at, None)
            changes += self._reconcile(
                self._stock_identities(stock, stored, at.at),
                _only(stored, STOCK_KINDS),
                resolve_at=at.at,
                now=now,
            )
        changes += self._escalations(notices, now)
        return changes

    def catch_up(self, margin: timedelta) -> tuple[list[AlertChange], datetime | None]:
        """On becoming the judge: index and judge whatever was archived after the last judged
        event, less ``margin`` (batches other workers were still writing then). Returns the
        changes and the newest ``received_at`` judged."""
        started = time.monotonic()
        self.table.forget()
        reindexed = self.table.reindex_missing()
        progress = self.table.progress()
        newest = progress
        scope = AlertScope()
        since = progress - margin if progress else None
        rows = self.table.received_since(since)
        for event_type, facility, item, patient, at, received in rows:
            scope.add(event_type, facility, item, patient, at)
            newest = max(newest or received, received)
        if any(row[0] == "test.performed" and not row[3] for row in rows):
            scope.tests.update(self.table.anonymous_test_ids(since))
        changes = self._judge(scope, utc_now()) if scope else []
        log.info(
            "alerts caught up: %d patient events indexed, %d patients and %d stock keys judged,"
            " %d changes (%.1f s)",
            reindexed,
            len(scope.patients),
            len(scope.stock_from),
            len(changes),
            time.monotonic() - started,
        )
        return changes, newest

    def sweep(
        self, sweep: Sweep, now: datetime | None = None
    ) -> tuple[list[AlertChange], list[tuple[str, datetime]]]:
        """Judge the events other workers archived that this judge has not judged yet;
        returns the changes and those events' (event_id, received_at), for ``Sweep.note``
        once the changes are stored."""
        scope = AlertScope()
        fresh = []
        for event in self.table.received_events(sweep.since):
            if event.event_id not in sweep.judged:
                scope.add(
                    event.event_type,
                    event.facility_id,
                    event.item,
                    event.patient_ref,
                    event.occurred_at,
                    event.event_id,
                )
                fresh.append((event.event_id, event.received_at))
        return (self._judge(scope, now or utc_now()) if scope else []), fresh

    def commit(self, changes: Sequence[AlertChange]) -> None:
        """Store published changes (how far the archive is judged is the service's to record,
        ``IntakeService._judged``)."""
        self.table.write([(c.sequence, c.alert) for c in changes], utc_now())

    def acknowledge_many(
        self, selection: AckSelection, note: str = "", now: datetime | None = None
    ) -> Acknowledged:
        """Record one person's acknowledgement of every alert ``selection`` covers (an
        incident, a commune notification included, is resolved by it); the changes are not
        yet stored (``commit``, or publish first as the worker does). KeyError names an
        alert id that does not exist."""
        now = now or utc_now()
        if selection.alert_ids:
            stored = self.table.stored(alert_ids=list(selection.alert_ids))
            missing = [alert_id for alert_id in selection.alert_ids if alert_id not in stored]
            if missing:
                raise KeyError(missing[0])
        else:
            stored = self.table.stored(kinds=list(selection.kinds) or None, open_only=True)
        covered = sorted(
            (alert.alert_id, sequence, alert)
            for sequence, alert in stored.values()
            if selection.matches(alert)
        )
        fresh = [(sequence, alert) for _, sequence, alert in covered if not alert.acknowledged_at]
        self.table.acknowledge([alert.alert_id for _, alert in fresh], now, note)
        changes = []
        for sequence, alert in fresh:
            update: dict[str, Any] = {"acknowledged_at": now}
            if alert.kind in INCIDENT_KINDS and alert.status == "open":
                update |= {"status": "resolved", "resolved_at": now}
            changes.append(
                AlertChange(
                    change="resolved" if update.get("status") == "resolved" else "updated",
                    sequence=sequence + 1,
                    alert=alert.model_copy(update=update),
                )
            )
        if changes:
            log.info(
                "%d alert(s) acknowledged, %d already were",
                len(changes),
                len(covered) - len(changes),
                extra={"selection": selection.model_dump(mode="json", exclude_defaults=True)},
            )
        return Acknowledged(changes, len(covered) - len(changes))

    def acknowledge(
        self, alert_id: str, note: str = "", now: datetime | None = None
    ) -> AlertChange | None:
        """Acknowledge one alert and store the change (None: it was acknowledged before)."""
        outcome = self.acknowledge_many(AckSelection(alert_ids=(alert_id,)), note, now)
        self.commit(outcome.changes)
        return outcome.changes[0] if outcome.changes else None

    # -- reports ---------------------------------------------------------------------------

    def current(self, now: datetime | None = None) -> list[Alert]:
        """The stored alerts, with deadlines and supervision judged against ``now``."""
        now = now or utc_now()
        stored = self.table.stored()
        found = self._clock_conditions(self.store.registry(), now)
        for change in self._reconcile(found, _only(stored, CLOCK_KINDS), resolve_at=now, now=now):
            stored[change.alert.alert_id] = (change.sequence, change.alert)
        return order_alerts(alert for _, alert in stored.values())

    def as_of(self, at: datetime) -> list[Alert]:
        """Every alert as it stood at T, judged from the events up to T alone."""
        registry = self.store.registry()
        acks = {k: v for k, v in self.table.acknowledgements().items() if v <= at}
        found = self._patient_conditions(None, at, at, acks)
        found += self._test_conditions(None, at, at, acks)
        found += self._count_conditions(None, at)[0]
        stored = self.table.stored(kinds=STOCK_KINDS)
        found += self._stock_identities(self._stock_conditions(at, None), stored, at)
        found += self._clock_conditions(registry, at)
        return order_alerts(_alert(c, acks.get(c.alert_id), at) for c in found)

    def notices(self, since: datetime, until: datetime) -> list[dict[str, Any]]:
        """Every commune notification for an event in [since, until), as a line of the
        commune's letter: judged afresh from every event known now (live_from included),
        acknowledged or not, since the letter is what the commune must be told."""
        patients = self.table.patients_with(NOTIFYING_EVENTS, since, until)
        found = self._patient_conditions(patients, None, until, {})
        tests = self.table.anonymous_tests(None, until - timedelta(microseconds=1), since)
        live_from = _live_from(self.store.registry())
        found += anonymous_test_conditions(tests, self.settings, until, live_from=live_from)
        lines = [
            notice_line(condition)
            for condition in found
            if condition.kind == "commune_notification" and since <= condition.raised_at < until
        ]
        return sorted(
            lines, key=lambda line: (line["commune"], line["occurred_at"], line["event_id"])
        )

    # -- judging ---------------------------------------------------------------------------

    def _judge(self, scope: AlertScope, now: datetime) -> list[AlertChange]:
        at = self._reports().moment(None)
        if at is None:
            return []
        changes: list[AlertChange] = []
        acks = self.table.acknowledgements()
        patients = sorted(scope.patients)
        # In slices, so that a first start over a large archive holds few histories at once.
        for start in range(0, len(patients), PATIENT_SLICE):
            some = set(patients[start : start + PATIENT_SLICE])
            mine = self.table.stored(kinds=PATIENT_KINDS, subjects=some)
            found = self._patient_conditions(some, None, now, acks)
            changes += self._reconcile(found, mine, resolve_at=at.at, now=now, acks=acks)
        if scope.tests:
            subjects = {f"{ANONYMOUS_TEST}{event_id}" for event_id in scope.tests}
            mine = self.table.stored(kinds=PATIENT_KINDS, subjects=subjects)
            found = self._test_conditions(scope.tests, None, now, acks)
            changes += self._reconcile(found, mine, resolve_at=at.at, now=now, acks=acks)
        if scope.stock_from:
            keys = set(scope.stock_from)
            items = {item for _, item in keys}
            stored = self.table.stored(kinds=STOCK_KINDS, subjects=items, open_only=True)
            # Incidents: resolved ones too, so that an acknowledged one is not raised again.
            stored |= self.table.stored(kinds=("count_discrepancy",), subjects=items)
            stock = self._stock_conditions(at.at, keys)
            changes += self._reconcile(
                self._stock_identities(stock, stored, at.at),
                {k: v for k, v in _only(stored, STOCK_KINDS).items() if _key(v[1]) in keys},
                resolve_at=at.at,
                now=now,
            )
            # Only a count on or after a touched day can be judged differently now.
            counted = self.table.counted_since(scope.stock_from)
            recounted = {key: day for key, day in scope.stock.items() if key in counted}
            if recounted:
                counts, anchors = self._count_conditions(recounted, None)
                judged, superseded = {}, []
                for alert_id, (sequence, alert) in _only(stored, ("count_discrepancy",)).items():
                    key = _key(alert)
                    if key not in recounted:
                        continue
                    anchor_at, recount_at = anchors.get(key, (EPOCH, None))
                    if alert.raised_at > anchor_at:
                        judged[alert_id] = (sequence, alert)
                    elif recount_at is not None and alert.status == "open":
                        superseded.append(
                            AlertChange(
                                change="resolved",
                                sequence=sequence + 1,
                                alert=alert.model_copy(
                                    update={"status": "resolved", "resolved_at": recount_at}
                                ),
                            )
                        )
                changes += superseded
                changes += self._reconcile(counts, judged, resolve_at=at.at, now=now, acks=acks)
        if scope.clock:
            stored = self.table.stored(kinds=CLOCK_KINDS, open_only=True)
            found = self._clock_conditions(self.store.registry(), now)
            changes += self._reconcile(found, stored, resolve_at=now, now=now)
        return changes

    def _reports(self) -> Reports:
        return self.store.reports("aggregates")

    def _patient_conditions(
        self,
        patients: set[str] | None,
        until: datetime | None,
        clock: datetime,
        acks: Mapping[str, datetime],
    ) -> list[Condition]:
        registry = self.store.registry()
        parents, live_from = _dispensing_parents(registry), _live_from(registry)
        found: list[Condition] = []
        facts: Mapping[str, list[PatientFact]] = self.table.patient_facts(patients, until)
        for history in facts.values():
            found += patient_conditions(
                history, parents, self.settings, clock, acks, live_from=live_from
            )
        return found

    def _test_conditions(
        self,
        event_ids: set[str] | None,
        until: datetime | None,
        clock: datetime,
        acks: Mapping[str, datetime],
    ) -> list[Condition]:
        """Notices for positive tests of no patient_ref (these ids; all: None) up to T."""
        tests = self.table.anonymous_tests(event_ids, until)
        live_from = _live_from(self.store.registry())
        return anonymous_test_conditions(tests, self.settings, clock, acks, live_from=live_from)

    def _stock_conditions(self, at: datetime, keys: set[tuple[str, str]] | None) -> list[Condition]:
        scope = Scope(facilities=frozenset(f for f, _ in keys)) if keys is not None else Scope()
        rows = self._reports().stock(at, scope)
        if keys is not None:
            rows = [r for r in rows if (r["facility_id"], r["item"]) in keys]
        return stock_conditions(rows, self.settings, at)

    def _stock_identities(
        self,
        found: Sequence[Condition],
        stored: Mapping[str, tuple[int, Alert]],
        at: datetime,
    ) -> list[Condition]:
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

    def _count_conditions(
        self, since: Mapping[tuple[str, str], date] | None, until: datetime | None
    ) -> tuple[list[Condition], dict[tuple[str, str], tuple[datetime, datetime | None]]]:
        """Count discrepancies, and per stock key judged from an anchor (the last count
        before the earliest touched day) that anchor's instant and the first count after it:
        alerts up to the anchor were not judged again, but that later count supersedes them."""
        registry = self.store.registry()
        items = registry.items if registry else {}
        mg = {code: float(row.mg_per_unit) for code, row in items.items() if row.mg_per_unit}
        since_day = min(since.values()) if since else None
        windows = self.table.count_windows(since, mg, until, since_day)
        anchors: dict[tuple[str, str], tuple[datetime, datetime | None]] = {}
        found: list[Condition] = []
        for (facility, item), (anchor_at, base, movements) in windows.items():
            if anchor_at is not None:
                recounts = [m.occurred_at for m in movements if m.is_count]
                anchors[(facility, item)] = (anchor_at, min(recounts, default=None))
            unit = items[item].unit if item in items else ""
            found += count_conditions(
                facility, item, movements, self.settings, base=base, unit=unit
            )
        return found, anchors

    def _clock_conditions(
        self, registry: RegistrySnapshot | None, clock: datetime
    ) -> list[Condition]:
        if registry is None:
            return []
        since = self.table.earliest_day()
        if since is None:
            return []
        found = deadline_conditions(registry, self.table.submissions(), clock, since, self.settings)
        year_start = date(clock.astimezone(LOCAL_TZ).year, 1, 1)
        found += supervision_conditions(
            registry, self.table.visits(year_start), clock, self.settings
        )
        return found

    def _escalations(
        self, stored: Mapping[str, tuple[int, Alert]], now: datetime
    ) -> list[AlertChange]:
        after = timedelta(days=self.settings.commune_escalation_days)
        changes = []
        for sequence, alert in stored.values():
            if alert.status != "open" or alert.escalated or alert.acknowledged_at is not None:
                continue
            if now - alert.raised_at <= after:
                continue
            days = self.settings.commune_escalation_days
            escalated = alert.model_copy(update=escalation(alert.message, alert.message_vi, days))
            changes.append(AlertChange(change="updated", sequence=sequence + 1, alert=escalated))
        return changes

    # -- reconciling -------------------------------------------------------------------------

    def _reconcile(
        self,
        found: Sequence[Condition],
        stored: Mapping[str, tuple[int, Alert]],
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
            alert = _alert(condition, acknowledged, resolve_at, noticed_at=now)
            if previous is None:
                first = "opened" if alert.status == "open" else "resolved"
                changes.append(AlertChange(change=first, sequence=1, alert=alert))
                continue
            sequence, old = previous
            alert = alert.model_copy(update={"noticed_at": old.noticed_at})
            if _same(old, alert):
                continue
            change = (
                "resolved" if alert.status == "resolved" and old.status == "open" else "updated"
            )
            if alert.status == "open" and old.status == "resolved":
                change = "opened"
            changes.append(AlertChange(change=change, sequence=sequence + 1, alert=alert))
        for alert_id, (sequence, old) in stored.items():
            if alert_id in seen or old.status == "resolved":
                continue
            gone = old.model_copy(update={"status": "resolved", "resolved_at": resolve_at})
            changes.append(AlertChange(change="resolved", sequence=sequence + 1, alert=gone))
        return changes


def _alert(
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


def _same(old: Alert, new: Alert) -> bool:
    """Whether a change is worth a new version: what a person acts on, not every number."""
    keys = ("kind", "severity", "facility_id", "status", "escalated", "acknowledged_at")
    return all(getattr(old, k) == getattr(new, k) for k in keys)


def _key(alert: Alert) -> tuple[str, str]:
    return alert.facility_id, alert.subject


def _only(
    stored: Mapping[str, tuple[int, Alert]], kinds: Sequence[str]
) -> dict[str, tuple[int, Alert]]:
    return {k: v for k, v in stored.items() if v[1].kind in kinds}


def notice_line(condition: Condition) -> dict[str, Any]:
    """A commune notification as a line of the commune's letter (JSON-ready)."""
    details = condition.details
    local = condition.raised_at.astimezone(LOCAL_TZ)
    anonymous = condition.subject.startswith(ANONYMOUS_TEST)
    return {
        "commune": details["commune"],
        "occurred_at": condition.raised_at.isoformat(),
        "date": local.date().isoformat(),
        "time": local.strftime("%H:%M"),
        "facility_id": condition.facility_id,
        "notice": details.get("notice", ""),
        "reason": details.get("reason", ""),
        "purpose": details.get("purpose", ""),
        "positive": list(details.get("positive", ())),
        "patient_ref": "" if anonymous else condition.subject,
        "alert_id": condition.alert_id,
        "event_id": details["event_id"],
    }


def _live_from(registry: RegistrySnapshot | None) -> dict[str, date]:
    """Facility → the first local day it sent events (facilities.csv ``live_from``)."""
    if registry is None:
        return {}
    return {
        row.facility_id: row.live_from
        for row in registry.facilities.values()
        if row.live_from is not None
    }


def _dispensing_parents(registry: RegistrySnapshot | None) -> dict[str, str]:
    """Dispensing point → the treatment facility its patients are enrolled at."""
    if registry is None:
        return {}
    return {
        row.facility_id: row.parent_id
        for row in registry.facilities.values()
        if row.type == "dispensing_point" and row.parent_id
    }
