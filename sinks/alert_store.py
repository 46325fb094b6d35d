"""What the alert engine reads and writes in ClickHouse: the facts its rules need, the
``patient_events`` index it keeps, and the ``alerts`` / ``alert_acks`` tables."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

import orjson

from ostwatch.timeutil import LOCAL_TZ
from schemas.alerts import Alert
from sinks.archive_columns import ARCHIVE_COLUMNS, archive_row, column_list
from sinks.clickhouse import ClickHouse, as_utc
from sinks.queries import Sql, all_of, identifier, identifiers, sql
from sinks.records import Accepted

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ReceivedEvent(NamedTuple):
    """What the alert judge needs of one archived event to know what it touched."""

    event_id: str
    received_at: datetime
    event_type: str
    facility_id: str
    item: str
    patient_ref: str
    occurred_at: datetime


@dataclass(frozen=True)
class PatientFact:
    """One row of ``patient_events``: a dose or a lifecycle event of one patient."""

    patient_ref: str
    occurred_at: datetime
    event_id: str
    event_type: str
    facility_id: str
    local_date: date
    mode: str = ""
    take_home_days: int = 0
    item: str = ""
    dose_mg: float = 0.0
    to_facility_id: str = ""
    programme: str = ""
    residence_commune: str = ""
    max_days: int = 0
    reason: str = ""
    outcome: str = ""
    purpose: str = ""
    results: Mapping[str, str] = field(default_factory=dict)

    @property
    def positive(self) -> list[str]:
        """The substances a test found positive, sorted (none for other events)."""
        return sorted(s for s, result in self.results.items() if result == "positive")


@dataclass(frozen=True)
class Movement:
    """A stock event of one facility and item, in the item's units (counts carry the count)."""

    occurred_at: datetime
    event_id: str
    is_count: bool
    units: float  # the count for a count; the signed change otherwise


PATIENT_EVENT_COLUMNS = (
    "patient_ref",
    "occurred_at",
    "event_id",
    "event_type",
    "facility_id",
    "local_date",
    "mode",
    "take_home_days",
    "item",
    "dose_mg",
    "to_facility_id",
    "programme",
    "residence_commune",
    "max_days",
    "reason",
    "outcome",
    "purpose",
    "results",
)
ALERT_COLUMNS = (
    "alert_id",
    "sequence",
    "kind",
    "severity",
    "facility_id",
    "subject",
    "raised_at",
    "status",
    "resolved_at",
    "noticed_at",
    "acknowledged_at",
    "escalated",
    "message",
    "message_vi",
    "details",
    "changed_at",
)
STOCK_EVENT_TYPES = (
    "stock.received",
    "stock.adjusted",
    "stock.counted",
    "dose.dispensed",
    "test.performed",
)


class AlertStore:
    """Reads and writes of the alert engine over one ClickHouse connection.

    With ``cached`` (the live worker, the one writer of judged alerts) the stored alerts are
    kept in memory, read whole once at start, so a batch never scans the alerts table.
    """

    def __init__(self, db: ClickHouse, *, cached: bool = False) -> None:
        self.db = db
        self._cached = cached
        self._cache: dict[str, tuple[int, Alert]] | None = None
        self._by_subject: dict[str, set[str]] = {}

    # -- the patient index -----------------------------------------------------------------

    def index_accepted(self, accepted: Sequence[Accepted]) -> None:
        """Index a batch's patient events straight from the batch (no archive read)."""
        rows = [archive_row(item) for item in accepted if getattr(item.event, "patient_ref", None)]
        if not rows:
            return
        positions = [ARCHIVE_COLUMNS.index(name) for name in PATIENT_EVENT_COLUMNS]
        columns = [[row[p] for row in rows] for p in positions]
        self.db.insert_columns("patient_events", columns, PATIENT_EVENT_COLUMNS)

    def index_patient_events(self, where: Sql, parameters: Mapping[str, Any]) -> None:
        """Copy the archived patient events matching ``where`` into ``patient_events``."""
        columns = column_list(PATIENT_EVENT_COLUMNS)
        self.db.command(sql("patient_events_index", columns=columns, where=where), dict(parameters))

    def reindex_missing(self) -> int:
        """Index archived patient events the index lacks (a crash between the two writes)."""
        counts = self.db.query_rows(sql("patient_events_counts"))[0]
        if int(counts[0]) == int(counts[1]):
            return 0
        before = int(counts[1])
        self.index_patient_events(sql("alert_filters.unindexed"), {})
        return int(counts[0]) - before

    def patient_facts(
        self, patients: Iterable[str] | None, until: datetime | None
    ) -> dict[str, list[PatientFact]]:
        """Every indexed event of these patients (all patients: None) up to ``until``."""
        clauses: list[Sql] = []
        parameters: dict[str, Any] = {}
        if patients is not None:
            clauses.append(sql("alert_filters.patients"))
            parameters["patients"] = sorted(patients) or [""]
        if until is not None:
            clauses.append(sql("alert_filters.until"))
            parameters["until"] = until
        found: dict[str, list[PatientFact]] = {}
        for fact in self._facts("patient_events", clauses, parameters):
            found.setdefault(fact.patient_ref, []).append(fact)
        return found

    def _facts(
        self, table: str, clauses: Sequence[Sql], parameters: Mapping[str, Any]
    ) -> list[PatientFact]:
        """Rows of ``table`` as facts, each event once (a redelivered batch may have indexed
        the same event twice)."""
        query = sql(
            "patient_facts",
            columns=column_list(PATIENT_EVENT_COLUMNS),
            table=identifier(table),
            where=all_of(clauses),
        )
        rows = self.db.query_rows(query, dict(parameters))
        facts: list[PatientFact] = []
        seen: set[str] = set()
        for row in rows:
            values = dict(zip(PATIENT_EVENT_COLUMNS, row, strict=True))
            values["event_id"] = str(values["event_id"])
            if values["event_id"] in seen:
                continue
            seen.add(values["event_id"])
            values["occurred_at"] = as_utc(values["occurred_at"])
            values["results"] = dict(values["results"] or {})
            facts.append(PatientFact(**values))
        return facts

    # -- tests of no patient_ref ---------------------------------------------------------------

    def anonymous_tests(
        self, event_ids: Iterable[str] | None, until: datetime | None, since: datetime | None = None
    ) -> list[PatientFact]:
        """Positive tests with no patient_ref (these event_ids; all: None) from ``since`` up to
        ``until``, read from the archive: they belong to no patient's history, so each is
        judged alone."""
        clauses = [sql("alert_filters.anonymous_tests")]
        parameters: dict[str, Any] = {}
        if since is not None:
            clauses.append(sql("alert_filters.since"))
            parameters["since"] = since
        if event_ids is not None:
            clauses.append(sql("alert_filters.event_ids"))
            parameters["ids"] = sorted(event_ids) or [str(uuid.UUID(int=0))]
        if until is not None:
            clauses.append(sql("alert_filters.until"))
            parameters["until"] = until
        return self._facts("events_archive", clauses, parameters)

    def patients_with(
        self, event_types: Sequence[str], since: datetime, until: datetime
    ) -> set[str]:
        """The patients with an event of these types in [since, until) (the archive is
        partitioned by local month, so a month's question reads that month)."""
        rows = self.db.query_rows(
            sql("patients_with"),
            {
                "types": list(event_types),
                "first": since.astimezone(LOCAL_TZ).date(),
                "last": until.astimezone(LOCAL_TZ).date(),
                "since": since,
                "until": until,
            },
        )
        return {str(patient) for (patient,) in rows}

    def anonymous_test_ids(self, received_after: datetime | None) -> set[str]:
        """The positive tests of no patient_ref archived after an instant (all: None)."""
        query = sql("anonymous_test_ids", anonymous=sql("alert_filters.anonymous_tests"))
        rows = self.db.query_rows(query, {"since": received_after or EPOCH})
        return {str(event_id) for (event_id,) in rows}

    # -- stock movements around counts -------------------------------------------------------

    def count_windows(
        self,
        keys: Iterable[tuple[str, str]] | None,
        mg_per_unit: Mapping[str, float],
        until: datetime | None,
        since_day: date | None = None,
    ) -> dict[tuple[str, str], tuple[datetime | None, float | None, list[Movement]]]:
        """Per facility and item: the anchor (the last count before ``since_day``: its time
        and value, or None), and every movement after it up to ``until``, in item units."""
        clauses = [sql("alert_filters.stock_events")]
        parameters: dict[str, Any] = {
            "types": list(STOCK_EVENT_TYPES),
            "items": sorted(mg_per_unit) or [""],
            "mg": [float(mg_per_unit[i]) for i in sorted(mg_per_unit)] or [1.0],
        }
        if keys is not None:
            keys = sorted(set(keys))
            clauses.append(sql("alert_filters.stock_keys"))
            parameters["keys"] = keys or [("", "")]
            parameters["facilities"] = sorted({f for f, _ in keys}) or [""]
        if until is not None:
            clauses.append(sql("alert_filters.until"))
            parameters["until"] = until
        where = all_of(clauses)
        anchors: dict[tuple[str, str], tuple[datetime, float]] = {}
        if since_day is not None:
            parameters["since_day"] = since_day
            rows = self.db.query_rows(sql("stock_count_anchors", where=where), parameters)
            anchors = {(f, i): (as_utc(last[0]), float(last[1])) for f, i, last in rows}
        rows = self.db.query_rows(sql("stock_movements", where=where), parameters)
        windows: dict[tuple[str, str], tuple[datetime | None, float | None, list[Movement]]] = {}
        for facility, item, occurred, event_id, event_type, units in rows:
            at = as_utc(occurred)
            anchor = anchors.get((facility, item))
            key = (facility, item)
            if key not in windows:
                windows[key] = (anchor[0], anchor[1], []) if anchor else (None, None, [])
            if anchor is not None and at <= anchor[0]:
                continue
            windows[key][2].append(
                Movement(at, event_id, event_type == "stock.counted", float(units))
            )
        return windows

    def counted_since(self, earliest: Mapping[tuple[str, str], datetime]) -> set[tuple[str, str]]:
        """The stock keys with a physical count at or after their given instant: only those
        counts can be judged differently once movements from that instant on arrive."""
        if not earliest:
            return set()
        since = min(earliest.values())
        rows = self.db.query_rows(
            sql("stock_counted_since"),
            {
                "facilities": sorted({f for f, _ in earliest}),
                "since": since.astimezone(LOCAL_TZ).date(),
            },
        )
        return {
            (facility, item)
            for facility, item, last in rows
            if (facility, item) in earliest and as_utc(last) >= earliest[(facility, item)]
        }

    # -- deadlines and supervision --------------------------------------------------------

    def submissions(self) -> dict[tuple[str, str, str], datetime]:
        """(reporter, report_type, period) → its earliest report.submitted."""
        rows = self.db.query_rows(sql("reports_submitted"))
        return {(f, t, p): as_utc(at) for f, t, p, at in rows}

    def visits(self, since: date) -> dict[str, list[datetime]]:
        """Supervision visits per visited facility since a local day."""
        rows = self.db.query_rows(sql("supervision_visits"), {"since": since})
        found: dict[str, list[datetime]] = {}
        for facility, at in rows:
            found.setdefault(facility, []).append(as_utc(at))
        return found

    def earliest_day(self) -> date | None:
        rows = self.db.query_rows(sql("archive_earliest"))
        earliest, count = rows[0]
        return as_utc(earliest).astimezone(LOCAL_TZ).date() if count else None

    # -- alerts ----------------------------------------------------------------------------

    def acknowledgements(self) -> dict[str, datetime]:
        """alert_id → when a person first acknowledged it. The cache takes in the versions an
        acknowledgement wrote elsewhere (``ostwatch alerts ack`` goes through any worker's
        API), so that the judge's next version of such an alert follows them."""
        rows = self.db.query_rows(sql("alert_acks"))
        acks = {alert_id: as_utc(at) for alert_id, at in rows}
        if self._cache is not None:
            behind = [i for i in acks if i in self._cache and not self._cache[i][1].acknowledged_at]
            if behind:
                fresh = self._read(sql("alert_filters.alert_ids"), {"ids": behind})
                self._remember(fresh.values())
        return acks

    def acknowledge(self, alert_ids: Sequence[str], at: datetime, note: str) -> None:
        """One person's acknowledgement of these alerts, in one insert."""
        if not alert_ids:
            return
        count = len(alert_ids)
        self.db.insert_columns(
            "alert_acks",
            [list(alert_ids), [at] * count, [note] * count],
            ["alert_id", "acknowledged_at", "note"],
        )

    def stored(
        self,
        kinds: Sequence[str] | None = None,
        alert_ids: Sequence[str] | None = None,
        subjects: Iterable[str] | None = None,
        open_only: bool = False,
    ) -> dict[str, tuple[int, Alert]]:
        """Stored alerts (newest version of each) → (sequence, alert), filtered so that a
        batch reads only the alerts it may change."""
        if self._cached:
            cache = self._fresh_cache()
            if alert_ids is not None:
                candidates: Iterable[str] = [i for i in alert_ids if i in cache]
            elif subjects is not None:
                candidates = {i for s in subjects for i in self._by_subject.get(s, ())}
            else:
                candidates = cache
            found = {}
            for alert_id in candidates:
                sequence, alert = cache[alert_id]
                if (kinds is None or alert.kind in kinds) and (
                    not open_only or alert.status == "open"
                ):
                    found[alert_id] = (sequence, alert)
            return found
        clauses: list[Sql] = []
        parameters: dict[str, Any] = {}
        if kinds is not None:
            clauses.append(sql("alert_filters.kinds"))
            parameters["kinds"] = list(kinds) or [""]
        if alert_ids is not None:
            clauses.append(sql("alert_filters.alert_ids"))
            parameters["ids"] = list(alert_ids) or [""]
        if subjects is not None:
            clauses.append(sql("alert_filters.subjects"))
            parameters["subjects"] = sorted(subjects) or [""]
        if open_only:
            clauses.append(sql("alert_filters.open"))
        return self._read(all_of(clauses), parameters)

    def forget(self) -> None:
        """Drop the cache: another worker may have written alerts since it was read (this
        worker has just become the judge: the alert role, docs/operations.md "Scale-out")."""
        self._cache = None
        self._by_subject = {}

    def _fresh_cache(self) -> dict[str, tuple[int, Alert]]:
        """The cache: read whole once, then kept by ``write``. Acknowledgements made by the
        CLI reach the engine through ``acknowledgements``, which it reads for every batch."""
        if self._cache is None:
            self._cache = self._read(all_of(()), {})
            for alert_id, (_, alert) in self._cache.items():
                self._by_subject.setdefault(alert.subject, set()).add(alert_id)
        return self._cache

    def _read(self, where: Sql, parameters: dict[str, Any]) -> dict[str, tuple[int, Alert]]:
        """The stored alerts matching ``where``, newest version of each."""
        query = sql("alerts_stored", columns=identifiers(ALERT_COLUMNS), where=where)
        rows = self.db.query_dicts(query, parameters)
        found: dict[str, tuple[int, Alert]] = {}
        for row in rows:
            sequence = int(row.pop("sequence"))
            row.pop("changed_at")
            for name in ("raised_at", "resolved_at", "noticed_at", "acknowledged_at"):
                if row[name] is not None:
                    row[name] = as_utc(row[name])
            row["escalated"] = bool(row["escalated"])
            row["details"] = orjson.loads(row["details"] or "{}")
            known = found.get(row["alert_id"])
            if known is None or sequence > known[0]:
                found[row["alert_id"]] = (sequence, Alert(**row))
        return found

    def write(self, versions: Sequence[tuple[int, Alert]], changed_at: datetime) -> None:
        """Store new versions of alerts (the highest sequence per alert wins)."""
        if not versions:
            return
        rows = [
            (
                alert.alert_id,
                sequence,
                alert.kind,
                alert.severity,
                alert.facility_id,
                alert.subject,
                alert.raised_at,
                alert.status,
                alert.resolved_at,
                alert.noticed_at or changed_at,
                alert.acknowledged_at,
                int(alert.escalated),
                alert.message,
                alert.message_vi,
                orjson.dumps(alert.details).decode(),
                changed_at,
            )
            for sequence, alert in versions
        ]
        self.db.insert_rows("alerts", rows, ALERT_COLUMNS)
        self._remember(versions)

    def _remember(self, versions: Iterable[tuple[int, Alert]]) -> None:
        """Keep newer versions in the cache, if there is one."""
        if self._cache is None:
            return
        for sequence, alert in versions:
            known = self._cache.get(alert.alert_id)
            if known is None or sequence > known[0]:
                self._cache[alert.alert_id] = (sequence, alert)
                self._by_subject.setdefault(alert.subject, set()).add(alert.alert_id)

    # -- progress --------------------------------------------------------------------------

    def progress(self) -> datetime | None:
        rows = self.db.query_rows(sql("alert_progress"))
        at, count = rows[0]
        return as_utc(at) if count else None

    def advance(self, received_at: datetime) -> None:
        self.db.command(sql("alert_progress_advance"), {"at": received_at.astimezone(UTC)})

    def received_since(
        self, since: datetime | None
    ) -> list[tuple[str, str, str, str, datetime, datetime]]:
        """(event_type, facility_id, item, patient_ref, earliest occurred_at, latest
        received_at) of the events archived after ``since`` (all: None): what no judge may
        have judged yet, grouped so that a whole archive stays a short list."""
        rows = self.db.query_rows(sql("received_since"), {"since": since or EPOCH})
        return [(str(a), str(b), str(c), str(d), as_utc(e), as_utc(f)) for a, b, c, d, e, f in rows]

    def received_events(self, since: datetime) -> list[ReceivedEvent]:
        """Each event archived after ``since``: the judge's sweep, a minute at a time."""
        rows = self.db.query_rows(sql("received_events"), {"since": since})
        return [
            ReceivedEvent(str(a), as_utc(b), str(c), str(d), str(e), str(f), as_utc(g))
            for a, b, c, d, e, f, g in rows
        ]
