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
from functools import cache
from importlib import resources
from typing import Any

from ostwatch.timeutil import LOCAL_TZ
from schemas.models import BaseEvent
from sinks.clickhouse import ClickHouse

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


@cache
def sql_text(name: str) -> str:
    """``sinks/sql/<name>.sql`` without its comment lines (they are for readers, and
    client-side parameter binding must not see quotes inside them)."""
    text = resources.files("sinks").joinpath("sql", f"{name}.sql").read_text(encoding="utf-8")
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))


def aggregate_select(name: str, where: str) -> str:
    """An aggregate's SELECT over the archive rows matching ``where`` (SQL, may bind params)."""
    return (
        sql_text(name).replace("{dose_figures}", sql_text("dose_figures")).replace("{where}", where)
    )


def states_select(timeline: str, patients: str) -> str:
    """``patient_states``' SELECT: the states of the patients matching ``patients`` (SQL on
    patient_ref), from the timeline rows ``timeline`` (the live table, or recomputed)."""
    return (
        sql_text("patient_states").replace("{timeline}", timeline).replace("{in_scope}", patients)
    )


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


def _key_filter(keys: set[tuple[str, date]]) -> tuple[str, dict[str, Any]]:
    """A WHERE clause selecting exactly these facility-days, shaped so that ClickHouse can
    prune partitions (local_date) and use the primary key (facility_id) first."""
    facilities = sorted({facility for facility, _ in keys})
    days = sorted({day for _, day in keys})
    where = (
        "facility_id IN %(facilities)s AND local_date IN %(days)s "
        "AND (facility_id, local_date) IN %(keys)s"
    )
    return where, {"facilities": facilities, "days": days, "keys": sorted(keys)}


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
                "event_id IN %(ids)s AND facility_id IN %(facilities)s",
                {
                    "ids": sorted(touched.lifecycle),
                    "facilities": sorted(set(touched.lifecycle.values())),
                },
            )
            self._insert_states(sorted(touched.patients))
        if touched.latest is not None and touched.earliest is not None:
            self.db.command(
                "INSERT INTO archive_bounds VALUES (0, %(latest)s, %(earliest)s)",
                {"latest": touched.latest, "earliest": touched.earliest},
            )

    def _insert_select(self, table: str, where: str, parameters: Mapping[str, Any]) -> None:
        columns = ", ".join(AGGREGATE_BY_TABLE[table].columns)
        self.db.command(
            f"INSERT INTO {table} ({columns}) {aggregate_select(table, where)}", dict(parameters)
        )

    def _insert_timeline(self, where: str, parameters: Mapping[str, Any]) -> None:
        columns = ", ".join(TIMELINE_COLUMNS)
        self.db.command(
            f"INSERT INTO patient_timeline ({columns}) "
            f"{aggregate_select('patient_timeline', where)}",
            dict(parameters),
        )

    def _insert_states(self, patients: list[str] | None) -> None:
        """Recompute these patients' ``patient_states`` row (everyone's with None) from their
        whole timeline: after the timeline rows they are computed from."""
        where, parameters = (
            ("1", {})
            if patients is None
            else ("patient_ref IN %(patients)s", {"patients": patients})
        )
        timeline = f"SELECT * FROM patient_timeline FINAL WHERE {where}"  # noqa: S608
        self.db.command(
            "INSERT INTO patient_states (patient_ref, version, steps, take_home) "
            + states_select(timeline, "1"),
            parameters,
        )

    def rebuild(self) -> None:
        """Empty every aggregate and recompute it from the whole archive."""
        started = time.monotonic()
        for table in (*AGGREGATE_BY_TABLE, "patient_timeline", "patient_states", "archive_bounds"):
            self.db.command(f"TRUNCATE TABLE {table}")
        for table in AGGREGATE_BY_TABLE:
            self._insert_select(table, "1", {})
        self._insert_timeline("1", {})
        self._insert_states(None)
        self._insert_bounds()
        for table in (*AGGREGATE_BY_TABLE, "patient_timeline", "patient_states"):
            # Small tables: one part each makes every FINAL read cheap from the start.
            self.db.command(f"OPTIMIZE TABLE {table} FINAL")
        log.info("aggregates rebuilt from the archive in %.1f s", time.monotonic() - started)

    def _insert_bounds(self) -> None:
        self.db.command(
            "INSERT INTO archive_bounds SELECT 0, max(occurred_at), min(occurred_at) "
            "FROM events_archive HAVING count() > 0"
        )

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
        missing = self.db.query_rows(
            "SELECT toString(event_id), facility_id FROM events_archive "
            "WHERE event_type IN %(types)s "
            "AND event_id NOT IN (SELECT event_id FROM patient_timeline)",
            {"types": list(LIFECYCLE_TYPES)},
        )
        if missing:
            self._insert_timeline(
                "event_id IN %(ids)s", {"ids": sorted(event_id for event_id, _ in missing)}
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
        rows = self.db.query_rows(
            """
            SELECT t.patient_ref
            FROM (
                SELECT patient_ref, count() AS version FROM patient_timeline FINAL
                GROUP BY patient_ref
            ) AS t
            LEFT JOIN (
                SELECT patient_ref, max(version) AS version FROM patient_states
                GROUP BY patient_ref
            ) AS s ON t.patient_ref = s.patient_ref
            WHERE t.version != s.version
            SETTINGS join_use_nulls = 0
            """
        )
        return sorted(ref for (ref,) in rows)

    def _stale_keys(self, aggregate: DailyAggregate) -> set[tuple[str, date]]:
        types = {"types": list(aggregate.event_types)}
        archived = self.db.query_rows(
            "SELECT count() FROM events_archive WHERE event_type IN %(types)s", types
        )[0][0]
        aggregated = self.db.query_rows(
            f"SELECT sum(events) FROM {aggregate.table} FINAL"  # noqa: S608 - a fixed name
        )[0][0]
        if int(archived) == int(aggregated or 0):
            return set()
        rows = self.db.query_rows(
            f"""
            SELECT a.facility_id, a.local_date
            FROM (
                SELECT facility_id, local_date, count() AS events FROM events_archive
                WHERE event_type IN %(types)s GROUP BY facility_id, local_date
            ) AS a
            LEFT JOIN (
                SELECT facility_id, local_date, sum(events) AS events
                FROM {aggregate.table} FINAL GROUP BY facility_id, local_date
            ) AS g ON a.facility_id = g.facility_id AND a.local_date = g.local_date
            WHERE a.events != g.events
            """,  # noqa: S608 - a fixed table name
            types,
        )
        return {(facility, day) for facility, day in rows}
