"""The reports of CONTRACT §5, in event time, as of any moment T.

Every report reads the live aggregates for the complete local days before T's day and runs
the aggregate's own SELECT over the archive for T's day up to T (one day of raw events at
most), so an answer "as of 12 March 07:30" costs about the same as one for now. With
``source="archive"`` the same reports are recomputed from the archive alone: the baseline
the benchmark compares against, and a cross-check for the tests and for replay.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

from ostwatch.timeutil import LOCAL_TZ
from schemas.reference import RegistrySnapshot
from sinks.aggregates import AGGREGATE_BY_TABLE, select_of
from sinks.clickhouse import ClickHouse, as_utc
from sinks.queries import Sql, all_of, identifier, identifiers, sql

log = logging.getLogger(__name__)

Source = Literal["aggregates", "archive"]
USE_WINDOW_DAYS = 14
MEDICATION_PROGRAMMES = ("methadone", "buprenorphine")
TEST_GROUPINGS = ("month", "purpose")


class ReportError(ValueError):
    """A report request that cannot be answered as asked (unknown facility, bad range)."""


@dataclass(frozen=True)
class Moment:
    """The T a report is answered at, and T's local day (Asia/Ho_Chi_Minh)."""

    at: datetime
    day: date

    @classmethod
    def of(cls, at: datetime) -> Moment:
        return cls(at, at.astimezone(LOCAL_TZ).date())


@dataclass(frozen=True)
class Scope:
    """Which facilities and local days a report covers; None means no restriction."""

    facilities: frozenset[str] | None = None
    date_from: date | None = None
    date_to: date | None = None
    item: str | None = None


def resolve_scope(
    registry: RegistrySnapshot | None,
    *,
    facilities: Iterable[str] = (),
    under: Iterable[str] = (),
    district: str | None = None,
    province: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    item: str | None = None,
) -> Scope:
    """Turn the CLI's filters into a set of facility ids (every filter given must hold)."""
    if date_from and date_to and date_from > date_to:
        raise ReportError(f"--from {date_from} is after --to {date_to}")
    facilities, under = list(facilities), list(under)
    if not (facilities or under or district or province):
        return Scope(None, date_from, date_to, item)
    if registry is None:
        raise ReportError("no registry loaded yet: load one with `ostwatch registry load DIR`")
    unknown = [f for f in (*facilities, *under) if f not in registry.facilities]
    if unknown:
        raise ReportError(f"unknown facility {unknown[0]!r}")
    chosen = set(registry.facilities)
    if facilities:
        chosen &= set(facilities)
    if under:
        chosen &= set().union(*(registry.descendants_of(unit) | {unit} for unit in under))
    if district:
        chosen &= {f.facility_id for f in registry.facilities.values() if f.district == district}
    if province:
        chosen &= {f.facility_id for f in registry.facilities.values() if f.province == province}
    return Scope(frozenset(chosen), date_from, date_to, item)


@dataclass(frozen=True)
class _Query:
    sql: str
    parameters: dict[str, Any]


def number(value: float) -> float:
    """Report numbers: rounding noise from float sums removed, never -0.0."""
    rounded = round(float(value), 6)
    return 0.0 if rounded == 0 else rounded


def _scope_where(scope: Scope, *, dates: bool, item: bool = False) -> tuple[Sql, dict[str, Any]]:
    clauses: list[Sql] = []
    parameters: dict[str, Any] = {}
    if scope.facilities is not None:
        clauses.append(sql("report_filters.facilities"))
        parameters["scope_facilities"] = sorted(scope.facilities) or [""]
    if dates and scope.date_from:
        clauses.append(sql("report_filters.date_from"))
        parameters["scope_from"] = scope.date_from
    if dates and scope.date_to:
        clauses.append(sql("report_filters.date_to"))
        parameters["scope_to"] = scope.date_to
    if item and scope.item:
        clauses.append(sql("report_filters.item"))
        parameters["scope_item"] = scope.item
    return all_of(clauses), parameters


def day_rows(table: str, source: Source, where: str, *, tail: bool = True) -> Sql:
    """SQL for the day rows of aggregate ``table`` matching ``where``, as of T (bound as
    ``%(t)s``, its local day as ``%(t_day)s``): the complete days before T's day from the live
    table (or recomputed from the archive), then T's own day up to T from the archive. Without
    ``tail`` T is the end of its day, and T's day is taken as complete like the others."""
    scope = Sql(where)
    days = sql("report_filters.before_t_day" if tail else "report_filters.through_t_day")
    if source == "archive":
        older = select_of(table, all_of([days, scope]))
    else:
        older = sql(
            "report_day_rows.live",
            columns=identifiers(AGGREGATE_BY_TABLE[table].columns),
            table=identifier(table),
            where=all_of([days, scope]),
        )
    if not tail:
        return older
    today = select_of(table, all_of([sql("report_filters.t_day_until_t"), scope]))
    return sql("report_day_rows.with_tail", older=older, tail=today)


class Reports:
    """Answers every report from the live aggregates (or, for comparison, the archive)."""

    def __init__(
        self, db: ClickHouse, registry: Callable[[], RegistrySnapshot | None], source: Source
    ) -> None:
        self.db = db
        self._registry = registry
        self.source = source

    # -- time ------------------------------------------------------------------------------

    def moment(self, as_of: datetime | None) -> Moment | None:
        """T: the given time, or the latest occurred_at accepted so far; None if no events."""
        if as_of is not None:
            return Moment.of(as_of)
        rows = self.db.query_rows(sql(f"report_moment.{self.source}"))
        latest, count = rows[0]
        return Moment.of(as_utc(latest)) if count else None

    def _days(self, table: str, moment: Moment, where: Sql) -> Sql:
        """Day rows of an aggregate: complete days before T's day, then T's day up to T."""
        return day_rows(table, self.source, where)

    def _run(self, query: _Query, moment: Moment) -> list[dict[str, Any]]:
        parameters = {"t": moment.at, "t_day": moment.day, **query.parameters}
        return self.db.query_dicts(query.sql, parameters)

    # -- reports ---------------------------------------------------------------------------

    def dispensing(self, as_of: datetime | None, scope: Scope) -> list[dict[str, Any]]:
        """Per facility and local day: patients dosed, doses by mode, milligrams."""
        moment = self.moment(as_of)
        if moment is None:
            return []
        where, parameters = _scope_where(scope, dates=True)
        query = sql("report_dispensing", days=self._days("dispensing_daily", moment, where))
        return [
            {
                "facility_id": row["facility_id"],
                "date": row["local_date"].isoformat(),
                "patients_dosed": int(row["patients_dosed"]),
                "observed_doses": int(row["observed_doses"]),
                "take_home_handouts": int(row["take_home_handouts"]),
                "mg_observed": number(row["mg_observed"]),
                "mg_take_home": number(row["mg_take_home"]),
            }
            for row in self._run(_Query(query, parameters), moment)
        ]

    def tests(
        self, as_of: datetime | None, scope: Scope, by: str = "month"
    ) -> list[dict[str, Any]]:
        """Per facility and month (and purpose, ``by="purpose"``): tests performed and
        positive results per substance."""
        if by not in TEST_GROUPINGS:
            raise ReportError(f"--by: one of {', '.join(TEST_GROUPINGS)}, not {by!r}")
        moment = self.moment(as_of)
        if moment is None:
            return []
        where, parameters = _scope_where(scope, dates=True)
        if by == "purpose":
            query = sql("report_tests_by_purpose", where=where)
        else:
            query = sql("report_tests", days=self._days("tests_daily", moment, where))
        return [
            {
                "facility_id": row["facility_id"],
                "month": row["month"].strftime("%Y-%m"),
                **({"purpose": row["purpose"]} if by == "purpose" else {}),
                "tests": int(row["tests"]),
                "positive": {k: int(v) for k, v in sorted(row["positive"].items())},
            }
            for row in self._run(_Query(query, parameters), moment)
        ]

    def stock(self, as_of: datetime | None, scope: Scope) -> list[dict[str, Any]]:
        """Per facility and item: on hand at T, average daily use over 14 days, days of supply."""
        moment = self.moment(as_of)
        if moment is None:
            return []
        registry = self._registry()
        items = registry.items if registry else {}
        medications = {code: row for code, row in items.items() if row.mg_per_unit}
        where, parameters = _scope_where(scope, dates=False, item=True)
        window_start = moment.day - timedelta(days=USE_WINDOW_DAYS - 1)
        query = sql("report_stock", days=self._days("stock_daily", moment, where))
        parameters |= {
            "items": sorted(medications) or [""],
            "mg_per_unit": [float(medications[c].mg_per_unit or 0) for c in sorted(medications)]
            or [0.0],
            "window_start": window_start,
        }
        rows = []
        for row in self._run(_Query(query, parameters), moment):
            on_hand = float(row["on_hand"])
            first_use: date | None = row["first_use"]
            average = 0.0
            if first_use is not None:
                days = (moment.day - max(first_use, window_start)).days + 1
                average = float(row["used_in_window"]) / max(days, 1)
            item = items.get(row["item"])
            rows.append(
                {
                    "facility_id": row["facility_id"],
                    "item": row["item"],
                    "unit": item.unit if item else None,
                    "on_hand": number(on_hand),
                    "avg_daily_use": number(average),
                    "days_of_supply": number(on_hand / average) if average > 0 else None,
                }
            )
        return rows

    def _standing(self, at: datetime, scope: Scope) -> list[dict[str, Any]]:
        """Active patients per facility and programme at ``at`` (with take-home approvals)."""
        if self.source == "archive":
            timeline = select_of("patient_timeline", sql("report_filters.until_t"))
        else:
            timeline = sql("report_moment.live_timeline")
        where, parameters = _scope_where(scope, dates=False)
        query = sql("report_patients", timeline=timeline, where=where)
        return self._run(_Query(query, parameters), Moment.of(at))

    def patients(self, as_of: datetime | None, scope: Scope) -> list[dict[str, Any]]:
        """Per facility and programme: active patients (and those with take-home approval)."""
        moment = self.moment(as_of)
        if moment is None:
            return []
        return [
            {
                "facility_id": row["facility_id"],
                "programme": row["programme"],
                "active": int(row["active"]),
                "take_home_approved": int(row["take_home_approved"]),
            }
            for row in self._standing(moment.at, scope)
        ]

    def targets(self, as_of: datetime | None, scope: Scope) -> list[dict[str, Any]]:
        """Per target row: each target beside its actual, rolled up over the unit's subtree.

        A year's actuals are taken at the end of that year, or at T if T comes first.
        """
        registry = self._registry()
        if registry is None or not registry.targets:
            return []
        moment = self.moment(as_of)
        rows = []
        standing_by_year: dict[int, Mapping[str, Mapping[str, tuple[int, int]]]] = {}
        for target in registry.targets:
            if scope.facilities is not None and target.facility_id not in scope.facilities:
                continue
            if target.year not in standing_by_year:
                standing_by_year[target.year] = self._standing_at_year_end(target.year, moment)
            standing = standing_by_year[target.year]
            unit = registry.descendants_of(target.facility_id) | {target.facility_id}
            routine = take_home = detox = 0
            for facility_id in unit:
                for programme, (active, approved) in standing.get(facility_id, {}).items():
                    if programme in MEDICATION_PROGRAMMES:
                        routine += active - approved
                        take_home += approved
                    elif programme == "community_detox":
                        detox += active
            rows.append(
                {
                    "facility_id": target.facility_id,
                    "year": target.year,
                    "routine_target": target.routine_target,
                    "routine_actual": routine,
                    "take_home_target": target.take_home_target,
                    "take_home_actual": take_home,
                    "community_detox_target": target.community_detox_target,
                    "community_detox_actual": detox,
                }
            )
        return rows

    def _standing_at_year_end(
        self, year: int, moment: Moment | None
    ) -> Mapping[str, Mapping[str, tuple[int, int]]]:
        if moment is None:
            return {}
        year_end = datetime(year + 1, 1, 1, tzinfo=LOCAL_TZ) - timedelta(milliseconds=1)
        at = min(moment.at, year_end)
        standing: dict[str, dict[str, tuple[int, int]]] = defaultdict(dict)
        for row in self._standing(at, Scope()):
            standing[row["facility_id"]][row["programme"]] = (
                int(row["active"]),
                int(row["take_home_approved"]),
            )
        return standing


def percent(actual: int, target: int | None) -> float | None:
    """Actual as a share of target, for tables; None without a target."""
    if not target:
        return None
    return math.floor(1000 * actual / target + 0.5) / 10
