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

The engine reads the facts and orders the judging; the rest is pure and lives beside it: what
a batch touched (``scope``), the rules (``rules`` for patients, ``stock_rules``,
``calendar_rules``) and how found conditions become changes of stored alerts (``reconcile``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from ostwatch.settings import AlertSettings
from ostwatch.timeutil import LOCAL_TZ, utc_now
from schemas.alerts import AckSelection, Alert, AlertChange
from schemas.models import BaseEvent
from schemas.reference import RegistrySnapshot
from sinks.alert_store import PatientFact
from sinks.records import Accepted
from sinks.reports import Reports, Scope
from sinks.store import Store
from streams.alerts.calendar_rules import deadline_conditions, supervision_conditions
from streams.alerts.condition import Condition
from streams.alerts.judge import Sweep
from streams.alerts.reconcile import (
    CLOCK_KINDS,
    INCIDENT_KINDS,
    PATIENT_KINDS,
    STOCK_KINDS,
    Stored,
    alert_for,
    key_of,
    only,
    order_alerts,
    reconcile,
    recounted_alerts,
    stock_identities,
)
from streams.alerts.rules import (
    ANONYMOUS_TEST,
    anonymous_test_conditions,
    escalation,
    patient_conditions,
)
from streams.alerts.scope import AlertScope, scope_of
from streams.alerts.stock_rules import count_conditions, stock_conditions

log = logging.getLogger(__name__)

PATIENT_SLICE = 5000
# The events whose commune must be told (with a positive test's); see rules._trigger.
NOTIFYING_EVENTS = (
    "patient.enrolled",
    "patient.violation",
    "patient.discharged",
    "test.performed",
)


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
        changes = reconcile(found, only(stored, CLOCK_KINDS), resolve_at=now, now=now)
        if at is not None:
            stock = self._stock_conditions(at.at, None)
            changes += reconcile(
                stock_identities(stock, stored, at.at),
                only(stored, STOCK_KINDS),
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
        for change in reconcile(found, only(stored, CLOCK_KINDS), resolve_at=now, now=now):
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
        found += stock_identities(self._stock_conditions(at, None), stored, at)
        found += self._clock_conditions(registry, at)
        return order_alerts(alert_for(c, acks.get(c.alert_id), at) for c in found)

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
        """Every change what ``scope`` touched causes: its patients, its tests of no patient,
        its stock keys (positions, then the counts a movement may judge differently) and, when
        a report or a visit arrived, the deadlines and supervision. Incidents and stock resolve
        as of the newest event (T); the clock's kinds as of ``now``."""
        moment = self._reports().moment(None)
        if moment is None:
            return []
        at = moment.at
        acks = self.table.acknowledgements()
        changes = self._judge_patients(scope.patients, at, now, acks)
        if scope.tests:
            changes += self._judge_tests(scope.tests, at, now, acks)
        if scope.stock_from:
            changes += self._judge_stock(scope, at, now, acks)
        if scope.clock:
            stored = self.table.stored(kinds=CLOCK_KINDS, open_only=True)
            found = self._clock_conditions(self.store.registry(), now)
            changes += reconcile(found, stored, resolve_at=now, now=now)
        return changes

    def _judge_patients(
        self, patients: set[str], at: datetime, now: datetime, acks: Mapping[str, datetime]
    ) -> list[AlertChange]:
        """The patients' histories judged again, in slices, so that a first start over a
        large archive holds few histories at once."""
        ordered = sorted(patients)
        changes: list[AlertChange] = []
        for start in range(0, len(ordered), PATIENT_SLICE):
            some = set(ordered[start : start + PATIENT_SLICE])
            mine = self.table.stored(kinds=PATIENT_KINDS, subjects=some)
            found = self._patient_conditions(some, None, now, acks)
            changes += reconcile(found, mine, resolve_at=at, now=now, acks=acks)
        return changes

    def _judge_tests(
        self, event_ids: set[str], at: datetime, now: datetime, acks: Mapping[str, datetime]
    ) -> list[AlertChange]:
        """Positive tests of no patient, each its own subject."""
        subjects = {f"{ANONYMOUS_TEST}{event_id}" for event_id in event_ids}
        mine = self.table.stored(kinds=PATIENT_KINDS, subjects=subjects)
        found = self._test_conditions(event_ids, None, now, acks)
        return reconcile(found, mine, resolve_at=at, now=now, acks=acks)

    def _judge_stock(
        self, scope: AlertScope, at: datetime, now: datetime, acks: Mapping[str, datetime]
    ) -> list[AlertChange]:
        """The touched stock keys' positions at T, then their counts (``_judge_counts``)."""
        keys = set(scope.stock_from)
        items = {item for _, item in keys}
        stored = self.table.stored(kinds=STOCK_KINDS, subjects=items, open_only=True)
        # Incidents: resolved ones too, so that an acknowledged one is not raised again.
        stored |= self.table.stored(kinds=("count_discrepancy",), subjects=items)
        stock = self._stock_conditions(at, keys)
        changes = reconcile(
            stock_identities(stock, stored, at),
            {k: v for k, v in only(stored, STOCK_KINDS).items() if key_of(v[1]) in keys},
            resolve_at=at,
            now=now,
        )
        return changes + self._judge_counts(scope, stored, at, now, acks)

    def _judge_counts(
        self,
        scope: AlertScope,
        stored: Stored,
        at: datetime,
        now: datetime,
        acks: Mapping[str, datetime],
    ) -> list[AlertChange]:
        """Only a count on or after a touched day can be judged differently now: those keys'
        counts are judged again from their anchor, and the discrepancies up to the anchor
        that a later count superseded are resolved."""
        counted = self.table.counted_since(scope.stock_from)
        recounted = {key: day for key, day in scope.stock.items() if key in counted}
        if not recounted:
            return []
        counts, anchors = self._count_conditions(recounted, None)
        stored_counts = only(stored, ("count_discrepancy",))
        judged, superseded = recounted_alerts(stored_counts, recounted, anchors)
        return superseded + reconcile(counts, judged, resolve_at=at, now=now, acks=acks)

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
