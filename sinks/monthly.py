"""The monthly report (CONTRACT §6): what a district sends the CDC and the CDC the Department
of Health — patient flows, dispensing, the stock ledger, tests and report timeliness — for a
unit and every facility below it, each unit's row rolling up its own facilities.

Computed in ClickHouse (``sql/monthly_*.sql``), one query per list: stock from the live daily
aggregates, patient flows from ``patient_states`` (each patient's steps, kept at intake),
dispensing from ``dispensing_items_daily`` (its day rows carry the day's patients as a set of
hashes, so distinct patients over a month stay exact), tests from the period's partition of
the archive. With ``source="archive"`` every list is recomputed from the archive alone: the
baseline the benchmark compares against and a cross-check for the tests.

The period is a local month (Asia/Ho_Chi_Minh), from its first local midnight to the next
month's; the figures count the events that occurred in it up to the cut-off, the earlier of
T (``--as-of``, else the latest event) and the period's last millisecond.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

from ostwatch.timeutil import LOCAL_TZ
from schemas.calendar import due_instant, periods_due_in
from schemas.reference import FacilityRow, RegistrySnapshot
from sinks.aggregates import aggregate_select, sql_text, states_select
from sinks.ledger import LedgerError, Month
from sinks.reports import Moment, ReportError, Reports, day_rows, number
from sinks.store import as_utc

log = logging.getLogger(__name__)

LISTS = ("patients", "dispensing", "stock", "tests", "timeliness")
# What identifies a row of each list, after facility_id (CONTRACT §6).
LIST_KEYS: Mapping[str, str] = {
    "patients": "programme",
    "dispensing": "item",
    "stock": "item",
    "tests": "purpose",
    "timeliness": "report_type",
}
STOCK_FLOWS = ("opening", "received", "adjusted", "used", "closing")
# The patients list's counts, in document order, before and after `discharged`.
ENTRY_FIGURES = ("active_start", "enrolled", "transferred_in", "transferred_out")
EXIT_FIGURES = ("active_end", "take_home_end", "enrolled_year", "completed_year")


class MonthlyError(ReportError):
    """A monthly report that cannot be produced as asked (bad period, unknown unit)."""


@dataclass(frozen=True)
class Hierarchy:
    """The units a report covers, in the order a reader expects them: each unit, then the
    facilities below it (depth first, in registry file order)."""

    registry: RegistrySnapshot
    tops: tuple[str, ...]

    @classmethod
    def of(cls, registry: RegistrySnapshot, unit: str | None) -> Hierarchy:
        if unit is None:
            tops = tuple(f.facility_id for f in registry.facilities.values() if not f.parent_id)
            return cls(registry, tops)
        if unit not in registry.facilities:
            raise MonthlyError(f"--unit: unknown facility {unit!r}")
        return cls(registry, (unit,))

    @cached_property
    def order(self) -> dict[str, int]:
        """Every covered facility id → its position in reading order (with its depth)."""
        found: dict[str, int] = {}
        pending = list(reversed(self.tops))
        while pending:
            current = pending.pop()
            if current in found:
                continue
            found[current] = len(found)
            pending.extend(reversed(self.registry.children_of(current)))
        return found

    @cached_property
    def depth(self) -> dict[str, int]:
        depths: dict[str, int] = {}
        for facility_id in self.order:
            parent = self.registry.facilities[facility_id].parent_id
            depths[facility_id] = depths[parent] + 1 if parent in depths else 0
        return depths

    def rollup(self) -> list[tuple[str, str]]:
        """(facility, unit) for each facility and each covered unit its figures count in:
        itself and every ancestor, up to the report's top units."""
        pairs = []
        facilities = self.registry.facilities
        for facility_id in self.order:
            current: str | None = facility_id
            while current is not None and current in self.order:
                pairs.append((facility_id, current))
                current = facilities[current].parent_id
        return pairs

    def unit_rows(self, keep: Iterable[str]) -> list[dict[str, Any]]:
        """The covered units as the document lists them (names for people): those in ``keep``
        and every unit above them; a unit with nothing of its own or below it (the Department
        of Health above no facility) would be an empty page."""
        facilities = self.registry.facilities
        kept: set[str] = set()
        for facility_id in keep:
            current: str | None = facility_id
            while current is not None and current in self.order and current not in kept:
                kept.add(current)
                current = facilities[current].parent_id
        return [
            {
                "facility_id": facility_id,
                "name": facilities[facility_id].name,
                "type": facilities[facility_id].type,
                "parent_id": facilities[facility_id].parent_id,
                "depth": self.depth[facility_id],
            }
            for facility_id in self.order
            if facility_id in kept
        ]


def _local_text(instant: datetime) -> str:
    """RFC 3339 in local time, milliseconds only when there are some."""
    return instant.astimezone(LOCAL_TZ).isoformat(timespec="milliseconds").replace(".000+", "+")


class MonthlyReport(Reports):
    """Answers ``report monthly`` from ClickHouse (live aggregates, or the archive alone),
    with the other reports' notion of T."""

    def answer(self, period: str, unit: str | None, as_of: datetime | None) -> dict[str, Any]:
        """The whole document: its period, the units covered and the five lists."""
        try:
            month = Month.parse(period, flag="--period")
        except LedgerError as exc:
            raise MonthlyError(str(exc)) from None
        registry = self._registry()
        if registry is None:
            raise MonthlyError("no registry loaded yet: load one with `ostwatch registry load DIR`")
        hierarchy = Hierarchy.of(registry, unit)
        unit_asked = [unit] if unit is not None else []
        start = month.starts
        following = month.ends + timedelta(milliseconds=1)
        moment = self.moment(as_of)
        lists: dict[str, list[dict[str, Any]]] = {key: [] for key in LISTS}
        cut = None
        if moment is not None:
            cut = min(moment.at, month.ends)
            query = _MonthQuery(self, hierarchy, month, Moment.of(cut))
            lists = {
                "patients": query.patients(),
                "dispensing": query.dispensing(),
                "stock": query.stock(),
                "tests": query.tests(),
                "timeliness": query.timeliness(moment.at),
            }
        return {
            "period": month.label,
            "unit": unit,
            "from": _local_text(start),
            "to": _local_text(following),
            "as_of": _local_text(cut) if cut is not None else None,
            "units": hierarchy.unit_rows(
                [*(row["facility_id"] for rows in lists.values() for row in rows), *unit_asked]
            ),
            **{name: _in_order(rows, hierarchy, name) for name, rows in lists.items()},
        }


def _in_order(rows: list[dict[str, Any]], hierarchy: Hierarchy, name: str) -> list[dict[str, Any]]:
    key = LIST_KEYS[name]
    return sorted(rows, key=lambda row: (hierarchy.order[row["facility_id"]], str(row[key])))


class _MonthQuery:
    """One report's queries: the month, the cut-off and the roll-up, bound once."""

    def __init__(
        self, report: MonthlyReport, hierarchy: Hierarchy, month: Month, cut: Moment
    ) -> None:
        self.report = report
        self.hierarchy = hierarchy
        self.month = month
        self.cut = cut
        covered = sorted(hierarchy.order)
        everything = len(covered) == len(hierarchy.registry.facilities)
        self.where = "1" if everything else "facility_id IN %(scope_facilities)s"
        year_start = datetime(month.first_day.year, 1, 1, tzinfo=LOCAL_TZ)
        # Each facility → the covered units its figures count in (itself and those above it):
        # the roll-up of the sums, done once on the small per-facility results.
        self.units_of: dict[str, list[str]] = {}
        for facility_id, unit_id in hierarchy.rollup():
            self.units_of.setdefault(facility_id, []).append(unit_id)
        # Every parameter is formatted into every query: only those the queries need.
        self.parameters: dict[str, Any] = {} if everything else {"scope_facilities": covered}
        self.parameters |= {
            "start": month.starts,
            "first_day": month.first_day,
            "year_start": year_start,
            "year_first_day": year_start.date(),
            "cut": cut.at,
            "cut_day": cut.day,
            "t": cut.at,
            "t_day": cut.day,
        }

    @property
    def complete(self) -> bool:
        """Whether the cut-off is the period's end: every day of it is a complete day."""
        return self.cut.at >= self.month.ends

    def _run(
        self, name: str, parameters: Mapping[str, Any] | None = None, **fragments: str
    ) -> list[dict[str, Any]]:
        # A whole month needs no instant filter beyond its days (cheaper on the archive).
        before_cut = "1" if self.complete else "occurred_at <= %(cut)s"
        sql = sql_text(name).replace("{before_cut}", before_cut)
        for fragment, text in fragments.items():
            sql = sql.replace("{" + fragment + "}", text)
        return self.report.db.query_dicts(
            sql.replace("{where}", self.where), {**self.parameters, **(parameters or {})}
        )

    # -- the lists ----------------------------------------------------------------------

    def patients(self) -> list[dict[str, Any]]:
        if self.report.source == "archive":
            timeline = aggregate_select("patient_timeline", "occurred_at <= %(cut)s")
        else:
            timeline = "SELECT * FROM patient_timeline WHERE occurred_at <= %(cut)s"
        in_scope, scope = "1", {}
        if self.where != "1":
            # A unit's patients: those with a timeline row at one of its facilities.
            in_unit = f"SELECT DISTINCT patient_ref FROM ({timeline}) WHERE {self.where}"  # noqa: S608
            in_scope = f"patient_ref IN ({in_unit})"
            if self.report.source == "archive":
                # Bound as a literal set: the recomputed timeline is read once for it, not
                # once more for each time the states' SQL names its timeline.
                refs = self.report.db.query_rows(in_unit, self.parameters)
                scope = {"scope_patients": sorted(ref for (ref,) in refs) or [""]}
                in_scope = "patient_ref IN %(scope_patients)s"
        if self.report.source == "archive":
            states = states_select(timeline, in_scope)
        else:
            # Read with the live states in the one query (a round trip less).
            states = f"SELECT * FROM patient_states FINAL WHERE {in_scope}"  # noqa: S608
        rows = _rolled_up(
            self._run("monthly_patients", scope, states=states),
            self.units_of,
            "programme",
            (*ENTRY_FIGURES, "discharged", *EXIT_FIGURES),
        )
        return [
            {
                "facility_id": row["facility_id"],
                "programme": row["programme"],
                **{name: int(row[name]) for name in ENTRY_FIGURES},
                "discharged": {k: int(v) for k, v in sorted(row["discharged"].items()) if v},
                **{name: int(row[name]) for name in EXIT_FIGURES},
            }
            for row in rows
        ]

    def dispensing(self) -> list[dict[str, Any]]:
        # Only the period's days: a month of day rows per facility and item, not the year.
        days = day_rows(
            "dispensing_items_daily",
            self.report.source,
            f"local_date >= %(first_day)s AND {self.where}",
            tail=not self.complete,
        )
        return [
            {
                "facility_id": row["unit_id"],
                "item": row["item"],
                "patients_dosed": int(row["patients_dosed"]),
                "observed_doses": int(row["observed_doses"]),
                "take_home_handouts": int(row["take_home_handouts"]),
                "mg_observed": number(row["mg_observed"]),
                "mg_take_home": number(row["mg_take_home"]),
            }
            # Distinct patients do not add up: rolled up in SQL, over the (facility, unit) pairs.
            for row in self._run(
                "monthly_dispensing",
                {"rollup": self.hierarchy.rollup()},
                days=days,
                rollup=sql_text("monthly_rollup"),
            )
        ]

    def stock(self) -> list[dict[str, Any]]:
        registry = self.hierarchy.registry
        medications = {code: row for code, row in registry.items.items() if row.mg_per_unit}
        self.parameters |= {
            "items": sorted(medications) or [""],
            "mg_per_unit": [float(medications[c].mg_per_unit or 0) for c in sorted(medications)]
            or [0.0],
        }
        days = day_rows("stock_daily", self.report.source, self.where, tail=not self.complete)
        rows = []
        by_facility = self._run("monthly_stock", days=days)
        for row in _rolled_up(by_facility, self.units_of, "item", STOCK_FLOWS):
            figures = {name: number(row[name]) for name in STOCK_FLOWS}
            difference = (
                figures["closing"]
                - figures["opening"]
                - figures["received"]
                - figures["adjusted"]
                + figures["used"]
            )
            item = registry.items.get(row["item"])
            rows.append(
                {
                    "facility_id": row["facility_id"],
                    "item": row["item"],
                    "unit": item.unit if item else None,
                    **{name: figures[name] for name in ("opening", "received", "adjusted", "used")},
                    "count_difference": number(difference),
                    "closing": figures["closing"],
                }
            )
        return rows

    def tests(self) -> list[dict[str, Any]]:
        rows = _rolled_up(
            self._run("monthly_tests"), self.units_of, "purpose", ("tests", "positive")
        )
        return [
            {
                "facility_id": row["facility_id"],
                "purpose": row["purpose"],
                "tests": int(row["tests"]),
                "positive": {k: int(v) for k, v in sorted(row["positive"].items()) if v},
            }
            for row in rows
        ]

    def timeliness(self, t: datetime) -> list[dict[str, Any]]:
        """Every report falling due in the month, per reporter of its type in the scope."""
        registry = self.hierarchy.registry
        year, month = self.month.first_day.year, self.month.first_day.month
        due: list[tuple[str, str, datetime, str | None, str]] = []
        for deadline in registry.deadlines.values():
            for period in periods_due_in(deadline.frequency, year, month):
                due.append(
                    (
                        deadline.report_type,
                        period,
                        due_instant(period, deadline.due_day),
                        deadline.recipient_id,
                        deadline.reporter_type,
                    )
                )
        if not due:
            return []
        reporters = {
            facility.facility_id
            for *_, reporter_type in due
            for facility in _of_type(registry.facilities.values(), reporter_type)
            if facility.facility_id in self.hierarchy.order
        }
        if not reporters:
            return []
        submitted = {
            (row["facility_id"], row["report_type"], row["period"]): as_utc(row["submitted_at"])
            for row in self.report.db.query_dicts(
                sql_text("monthly_submissions"),
                {
                    "t": t,
                    "reporters": sorted(reporters),
                    "wanted": sorted({(report_type, period) for report_type, period, *_ in due}),
                },
            )
        }
        rows = []
        for report_type, period, due_at, recipient, reporter_type in due:
            for facility in _of_type(registry.facilities.values(), reporter_type):
                if facility.facility_id not in self.hierarchy.order:
                    continue
                at = submitted.get((facility.facility_id, report_type, period))
                rows.append(
                    {
                        "facility_id": facility.facility_id,
                        "report_type": report_type,
                        "period": period,
                        "due": _local_text(due_at),
                        "submitted_at": _local_text(at) if at is not None else None,
                        "on_time": (at < due_at) if at is not None else None,
                        "recipient_id": recipient,
                    }
                )
        return rows


def _rolled_up(
    rows: Iterable[Mapping[str, Any]],
    units_of: Mapping[str, Sequence[str]],
    key: str,
    figures: Sequence[str],
) -> list[dict[str, Any]]:
    """Per-facility rows added up into every covered unit each facility counts in (numbers
    add; a mapping, such as outcome → count, adds key by key); facilities outside the
    report's scope count nowhere."""
    totals: dict[tuple[str, Any], dict[str, Any]] = {}
    for row in rows:
        for unit in units_of.get(row["facility_id"], ()):
            total = totals.get((unit, row[key]))
            if total is None:
                total = totals[unit, row[key]] = {"facility_id": unit, key: row[key]}
            for name in figures:
                value = row[name]
                if isinstance(value, Mapping):
                    added = total.setdefault(name, {})
                    for part, amount in value.items():
                        added[part] = added.get(part, 0) + amount
                else:
                    total[name] = total.get(name, 0) + value
    return list(totals.values())


def _of_type(facilities: Iterable[FacilityRow], kind: str) -> list[FacilityRow]:
    return [facility for facility in facilities if facility.type == kind]
