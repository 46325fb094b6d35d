"""The live aggregates: which rows an accepted batch touches, and recomputing them.

Each aggregate row is a pure function of the archived events behind its key, recomputed by
one ``INSERT … SELECT`` over the archive (SQL in ``sinks/sql``). That makes every refresh
idempotent and order-free: a late event, a redelivered batch or a worker killed between the
archive write and the refresh all end in the same rows once the key is refreshed again.
The worker refreshes before it commits offsets, and ``reconcile`` repairs any key whose row
disagrees with the archive at start-up (a crash, a lost broker, or data from before this
migration).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from ostwatch.timeutil import LOCAL_TZ
from schemas.models import BaseEvent
from sinks.clickhouse import ClickHouse
from sinks.queries import Sql, identifier, identifiers, placeholders, sql
from sinks.queries import sql_text as sql_text  # read by reports and the monthly report

log = logging.getLogger(__name__)

LIFECYCLE_TYPES = (
    "patient.enrolled",
    "patient.transferred",
    "patient.discharged",
    "patient.take_home_approved",
    "patient.take_home_revoked",
)


@dataclass(frozen=True)
class DailyAggregate:
    """A table with one row per (facility_id, [item,] local_date), rebuilt per facility-day
    (every item of it: the events say which facility-days they touch)."""

    table: str
    event_types: tuple[str, ...]
    columns: tuple[str, ...]


DAILY_AGGREGATES: tuple[DailyAggregate, ...] = (
    DailyAggregate(
        "dispensing_daily",
        ("dose.dispensed",),
        (
            "facility_id",
            "local_date",
            "events",
            "patients_dosed",
            "observed_doses",
            "take_home_handouts",
            "mg_observed",
            "mg_take_home",
        ),
    ),
    DailyAggregate(
        "stock_daily",
        ("stock.received", "stock.adjusted", "stock.counted", "dose.dispensed", "test.performed"),
        (
            "facility_id",
            "item",
            "local_date",
            "events",
            "received",
            "adjusted",
            "dose_mg_days",
            "tests",
            "counted",
            "count_at",
            "count_event_id",
            "count_on_hand",
            "after_received_adjusted",
            "after_dose_mg_days",
            "after_tests",
        ),
    ),
    DailyAggregate(
        "dispensing_items_daily",
        ("dose.dispensed",),
        (
            "facility_id",
            "item",
            "local_date",
            "events",
            "patients",
            "observed_doses",
            "take_home_handouts",
            "mg_observed",
            "mg_take_home",
        ),
    ),
    DailyAggregate(
        "tests_daily",
        ("test.performed",),
        ("facility_id", "local_date", "events", "tests", "positive"),
    ),
)
AGGREGATE_BY_TABLE = {aggregate.table: aggregate for aggregate in DAILY_AGGREGATES}
TIMELINE_COLUMNS = (
    "patient_ref",
    "facility_id",
    "occurred_at",
    "event_id",
    "event_type",
    "membership",
    "take_home",
    "programme",
    "max_days",
)


def select_of(table: str, where: Sql) -> Sql:
    """An aggregate's SELECT (its own file) over the archive rows matching ``where``; the
    dispensing aggregates share their dose figures (``dose_figures.sql``)."""
    if "dose_figures" in placeholders(table):
        return sql(table, where=where, dose_figures=sql("dose_figures"))
    return sql(table, where=where)


def aggregate_select(name: str, where: str) -> str:
    """``select_of`` for callers that assemble their SQL as text (the monthly report)."""
    return select_of(name, Sql(where))


def states_select(timeline: str, patients: str) -> str:
    """``patient_states``' SELECT: the states of the patients matching ``patients`` (SQL on
    patient_ref), from the timeline rows ``timeline`` (the live table, or recomputed)."""
    return sql("patient_states", timeline=Sql(timeline), in_scope=Sql(patients))


@dataclass
class Touched:
    """The aggregate keys a set of accepted events affects."""

    facility_days: dict[str, set[tuple[str, date]]] = field(default_factory=dict)
    lifecycle: dict[str, str] = field(default_factory=dict)  # event_id -> facility_id
    patients: set[str] = field(default_factory=set)  # whose lifecycle events these are
    latest: datetime | None = None
    earliest: datetime | None = None

    def __bool__(self) -> bool:
        # Any accepted event moves the archive's bounds (T without --as-of), even one that
        # touches no aggregate row (a report.submitted).
        return bool(self.facility_days or self.lifecycle or self.latest is not None)


def touched_by(events: Iterable[BaseEvent]) -> Touched:
    """Which daily rows and timeline entries the events change."""
    touched = Touched()
    for event in events:
        occurred = event.occurred_at_utc
        key = (event.facility_id, occurred.astimezone(LOCAL_TZ).date())
        for aggregate in DAILY_AGGREGATES:
            if event.event_type in aggregate.event_types:
                touched.facility_days.setdefault(aggregate.table, set()).add(key)
        if event.event_type in LIFECYCLE_TYPES:
            touched.lifecycle[event.event_id] = event.facility_id
            touched.patients.add(str(getattr(event, "patient_ref", "") or ""))
        if touched.latest is None or occurred > touched.latest:
            touched.latest = occurred
        if touched.earliest is None or occurred < touched.earliest:
            touched.earliest = occurred
    return touched


def _key_filter(keys: set[tuple[str, date]]) -> tuple[Sql, dict[str, Any]]:
    """Exactly these facility-days (``aggregate_keys.sql``), with their parameters."""
    facilities = sorted({facility for facility, _ in keys})
    days = sorted({day for _, day in keys})
    return sql("aggregate_filters.keys"), {
        "facilities": facilities,
        "days": days,
        "keys": sorted(keys),
    }


class Aggregates:
    """Refreshes, reconciles and rebuilds the aggregate tables over one ClickHouse."""

    def __init__(self, db: ClickHouse) -> None:
        self.db = db

    def refresh(self, touched: Touched) -> None:
        """Recompute every row the events touched, from the archive (idempotent)."""
        for table, keys in touched.facility_days.items():
            where, parameters = _key_filter(keys)
            self._insert_select(table, where, parameters)
        if touched.lifecycle:
            self._insert_timeline(
                sql("aggregate_filters.timeline_at"),
                {
                    "ids": sorted(touched.lifecycle),
                    "facilities": sorted(set(touched.lifecycle.values())),
                },
            )
            self._insert_states(sorted(touched.patients))
        if touched.latest is not None and touched.earliest is not None:
            self.db.command(
                sql("archive_bounds_add"),
                {"latest": touched.latest, "earliest": touched.earliest},
            )

    def _insert_select(self, table: str, where: Sql, parameters: Mapping[str, Any]) -> None:
        self._insert(table, AGGREGATE_BY_TABLE[table].columns, where, parameters)

    def _insert_timeline(self, where: Sql, parameters: Mapping[str, Any]) -> None:
        self._insert("patient_timeline", TIMELINE_COLUMNS, where, parameters)

    def _insert(
        self, table: str, columns: Iterable[str], where: Sql, parameters: Mapping[str, Any]
    ) -> None:
        statement = sql(
            "aggregate_insert",
            table=identifier(table),
            columns=identifiers(columns),
            select=select_of(table, where),
        )
        self.db.command(statement, dict(parameters))

    def _insert_states(self, patients: list[str] | None) -> None:
        """Recompute these patients' ``patient_states`` row (everyone's with None) from their
        whole timeline: after the timeline rows they are computed from."""
        where, parameters = (
            (sql("aggregate_filters.everything"), {})
            if patients is None
            else (sql("aggregate_filters.patients"), {"patients": patients})
        )
        timeline = sql("patient_states_timeline", where=where)
        select = sql(
            "patient_states", timeline=timeline, in_scope=sql("aggregate_filters.everything")
        )
        self.db.command(sql("patient_states_insert", select=select), parameters)

    def rebuild(self) -> None:
        """Empty every aggregate and recompute it from the whole archive."""
        started = time.monotonic()
        for table in (*AGGREGATE_BY_TABLE, "patient_timeline", "patient_states", "archive_bounds"):
            self.db.command(sql("truncate", table=identifier(table)))
        for table in AGGREGATE_BY_TABLE:
            self._insert_select(table, sql("aggregate_filters.everything"), {})
        self._insert_timeline(sql("aggregate_filters.everything"), {})
        self._insert_states(None)
        self._insert_bounds()
        for table in (*AGGREGATE_BY_TABLE, "patient_timeline", "patient_states"):
            # Small tables: one part each makes every FINAL read cheap from the start.
            self.db.command(sql("optimize_final", table=identifier(table)))
        log.info("aggregates rebuilt from the archive in %.1f s", time.monotonic() - started)

    def _insert_bounds(self) -> None:
        self.db.command(sql("archive_bounds_rebuild"))

    def reconcile(self) -> int:
        """Refresh every key whose row disagrees with the archive; return how many keys.

        Cheap when all agree (one count per table); otherwise compares per key.
        """
        repaired = 0
        for aggregate in DAILY_AGGREGATES:
            stale = self._stale_keys(aggregate)
            if stale:
                where, parameters = _key_filter(stale)
                self._insert_select(aggregate.table, where, parameters)
                repaired += len(stale)
        missing = self.db.query_rows(sql("timeline_missing"), {"types": list(LIFECYCLE_TYPES)})
        if missing:
            self._insert_timeline(
                sql("aggregate_filters.timeline"),
                {"ids": sorted(event_id for event_id, _ in missing)},
            )
            repaired += len(missing)
        stale_patients = self._stale_patients()
        if stale_patients:
            self._insert_states(stale_patients)
            repaired += len(stale_patients)
        self._insert_bounds()
        if repaired:
            log.warning("reconciled %d aggregate keys with the archive", repaired)
        return repaired

    def _stale_patients(self) -> list[str]:
        """Patients whose ``patient_states`` row is missing or older than their timeline."""
        return sorted(ref for (ref,) in self.db.query_rows(sql("patient_states_stale")))

    def _stale_keys(self, aggregate: DailyAggregate) -> set[tuple[str, date]]:
        types = {"types": list(aggregate.event_types)}
        table = identifier(aggregate.table)
        archived = self.db.query_rows(sql("aggregate_archived_events"), types)[0][0]
        aggregated = self.db.query_rows(sql("aggregate_counted_events", table=table))[0][0]
        if int(archived) == int(aggregated or 0):
            return set()
        rows = self.db.query_rows(sql("aggregate_stale_keys", table=table), types)
        return {(facility, day) for facility, day in rows}
