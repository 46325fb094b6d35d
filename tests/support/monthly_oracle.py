"""The monthly report (CONTRACT §6) recomputed the plain way, for checking the real one.

Written from CONTRACT §3 and §6 and the choices docs/reports-monthly.md documents, never
from the SQL: each figure is an ordinary loop over the events. Where the SQL derives a figure
(the month's count difference from the movements it leaves unexplained, a patient's moves
from window functions over state changes), this module walks the events one by one instead
(every count compared with the on hand computed just before it; a patient's state asked
afresh before and after every instant), so agreement means two methods agree.

Input: the events that passed validation, as contract JSON objects in arrival order
(duplicates included: the first accepted wins). Output: the document's five lists, with the
same keys, fields and row order as ``sinks.monthly.MonthlyReport``.

The choices, in one place (docs/reports-monthly.md):

* The period is the local month; the cut-off is the earlier of T (``as_of`` or the latest
  occurred_at) and the period's last millisecond. Events after the cut-off do not count;
  timeliness counts submissions up to T.
* A patient's state at a facility at instant x: not active, or active in the programme of
  their latest enrolment anywhere up to x (``unknown`` without one); membership is the last
  join or leave at that facility up to x (a leave beats a join at one instant, then the larger
  event_id). Every instant whose events change the state is a move: not active → P is
  ``enrolled`` (caused by an enrolment) or ``transferred_in``; P → not active is
  ``transferred_out`` or ``discharged`` under the discharge's outcome; P → Q is ``enrolled``
  in Q and ``discharged`` from P under ``programme_changed``.
* Rows: each (facility, programme) of a pair known at the period's start (programme then),
  of every pair at the cut-off (programme then), and of every move since the year's start.
* Roll-up: a facility's figures count at the facility and at every unit above it, up to the
  report's unit; ``patients_dosed`` counts distinct patients over the whole unit.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from ostwatch.timeutil import LOCAL_TZ
from schemas.reference import RegistrySnapshot
from tests.support.oracle import first_accepted, moment

__all__ = ["monthly"]

STOCK_TYPES = frozenset(
    {"stock.received", "stock.adjusted", "stock.counted", "dose.dispensed", "test.performed"}
)
JOIN, LEAVE = 0, 1


def _at(doc: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(doc["occurred_at"])


def _id(doc: dict[str, Any]) -> str:
    return str(doc["event_id"]).lower()


def _round(value: float) -> float:
    rounded = round(value, 6)
    return 0.0 if rounded == 0 else rounded


def _local_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=LOCAL_TZ)


def _text(instant: datetime) -> str:
    text = instant.astimezone(LOCAL_TZ).isoformat(timespec="milliseconds")
    return text.replace(".000+", "+")


@dataclass
class _Units:
    """Which units a facility's figures count in: itself and its ancestors, within scope."""

    registry: RegistrySnapshot
    unit: str | None

    def __post_init__(self) -> None:
        tops = (
            [self.unit]
            if self.unit is not None
            else [f.facility_id for f in self.registry.facilities.values() if not f.parent_id]
        )
        self.order: dict[str, int] = {}
        for top in tops:
            self._visit(top)

    def _visit(self, facility_id: str) -> None:
        if facility_id in self.order:
            return
        self.order[facility_id] = len(self.order)
        for child in self.registry.children_of(facility_id):
            self._visit(child)

    def of(self, facility_id: str) -> list[str]:
        found = []
        current: str | None = facility_id
        while current is not None and current in self.order:
            found.append(current)
            current = self.registry.facilities[current].parent_id
        return found


# -- patients ---------------------------------------------------------------------------


@dataclass
class _Change:
    at: datetime
    kind: int  # JOIN or LEAVE
    event_id: str
    event_type: str
    outcome: str


@dataclass
class _Patients:
    enrolments: dict[str, list[tuple[datetime, str, str]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    changes: dict[tuple[str, str], list[_Change]] = field(default_factory=lambda: defaultdict(list))
    approvals: dict[str, list[tuple[datetime, int, str, int]]] = field(
        default_factory=lambda: defaultdict(list)
    )

    @classmethod
    def of(cls, events: Iterable[dict[str, Any]]) -> _Patients:
        found = cls()
        for doc in events:
            kind = doc["event_type"]
            if not kind.startswith("patient."):
                continue
            patient, facility, at, eid = doc["patient_ref"], doc["facility_id"], _at(doc), _id(doc)
            if kind == "patient.enrolled":
                found.changes[(patient, facility)].append(_Change(at, JOIN, eid, kind, ""))
                found.enrolments[patient].append((at, eid, doc["programme"]))
            elif kind == "patient.transferred":
                found.changes[(patient, facility)].append(_Change(at, LEAVE, eid, kind, ""))
                found.changes[(patient, doc["to_facility_id"])].append(
                    _Change(at, JOIN, eid, kind, "")
                )
            elif kind == "patient.discharged":
                found.changes[(patient, facility)].append(
                    _Change(at, LEAVE, eid, kind, doc["outcome"])
                )
                found.approvals[patient].append((at, 1, eid, -1))
            elif kind == "patient.take_home_approved":
                found.approvals[patient].append((at, -1, eid, 1))
            elif kind == "patient.take_home_revoked":
                found.approvals[patient].append((at, 1, eid, -1))
        return found

    def programme(self, patient: str, upto: datetime, strict: bool = False) -> str:
        seen = [e for e in self.enrolments[patient] if (e[0] < upto if strict else e[0] <= upto)]
        return max(seen)[2] if seen else "unknown"

    def winner(self, pair: tuple[str, str], upto: datetime, strict: bool = False) -> _Change | None:
        seen = [c for c in self.changes[pair] if (c.at < upto if strict else c.at <= upto)]
        return max(seen, key=lambda c: (c.at, c.kind, c.event_id)) if seen else None

    def state(self, pair: tuple[str, str], upto: datetime, strict: bool = False) -> str:
        """'' when not active, else the programme the patient is active in."""
        last = self.winner(pair, upto, strict)
        if last is None or last.kind == LEAVE:
            return ""
        return self.programme(pair[0], upto, strict)

    def on_take_home(self, patient: str, upto: datetime) -> bool:
        seen = [a for a in self.approvals[patient] if a[0] <= upto]
        return bool(seen) and max(seen)[3] == 1


def _patient_rows(
    patients: _Patients, start: datetime, year_start: datetime, cut: datetime, units: _Units
) -> list[dict[str, Any]]:
    rows: dict[tuple[str, str], dict[str, Any]] = {}

    def row(facility: str, programme: str) -> dict[str, Any]:
        key = (facility, programme)
        if key not in rows:
            rows[key] = {
                "facility_id": facility,
                "programme": programme,
                "active_start": 0,
                "enrolled": 0,
                "transferred_in": 0,
                "transferred_out": 0,
                "discharged": Counter(),
                "active_end": 0,
                "take_home_end": 0,
                "enrolled_year": 0,
                "completed_year": 0,
            }
        return rows[key]

    def count(facility: str, programme: str, figure: str, at: datetime, outcome: str = "") -> None:
        for unit in units.of(facility):
            target = row(unit, programme)
            in_month = at >= start
            if figure == "discharged":
                if in_month:
                    target["discharged"][outcome] += 1
                if outcome == "completed":
                    target["completed_year"] += 1
            else:
                if in_month:
                    target[figure] += 1
                if figure == "enrolled":
                    target["enrolled_year"] += 1

    for pair, changes in patients.changes.items():
        patient, facility = pair
        if not units.of(facility):
            continue
        if any(c.at < start for c in changes):
            programme = patients.programme(patient, start, strict=True)
            active = patients.state(pair, start, strict=True) != ""
            for unit in units.of(facility):
                row(unit, programme)["active_start"] += int(active)
        end_state = patients.state(pair, cut)
        for unit in units.of(facility):
            target = row(unit, patients.programme(patient, cut))
            target["active_end"] += int(end_state != "")
            target["take_home_end"] += int(end_state != "" and patients.on_take_home(patient, cut))
        instants = {c.at for c in changes} | {e[0] for e in patients.enrolments[patient]}
        for at in sorted(i for i in instants if year_start <= i <= cut):
            before = patients.state(pair, at, strict=True)
            after = patients.state(pair, at)
            if before == after:
                continue
            cause = patients.winner(pair, at)
            caused_here = cause is not None and cause.at == at
            if before == "":
                assert caused_here and cause is not None
                how = "enrolled" if cause.event_type == "patient.enrolled" else "transferred_in"
                count(facility, after, how, at)
            elif after == "":
                assert caused_here and cause is not None
                if cause.event_type == "patient.transferred":
                    count(facility, before, "transferred_out", at)
                else:
                    count(facility, before, "discharged", at, cause.outcome)
            else:
                count(facility, after, "enrolled", at)
                count(facility, before, "discharged", at, "programme_changed")
    return [
        {**r, "discharged": {k: v for k, v in sorted(r["discharged"].items()) if v}}
        for r in rows.values()
    ]


# -- stock, dispensing, tests -------------------------------------------------------------


def _units_used(doc: dict[str, Any], registry: RegistrySnapshot) -> float:
    if doc["event_type"] == "test.performed":
        return 1.0
    item = registry.items.get(doc["item"])
    if item is None or not item.mg_per_unit:
        return 0.0
    days = doc["take_home_days"] if doc["mode"] == "take_home" else 1
    return float(doc["dose_mg"]) * days / float(item.mg_per_unit)


def _stock_rows(
    events: Sequence[dict[str, Any]],
    registry: RegistrySnapshot,
    start: datetime,
    units: _Units,
) -> list[dict[str, Any]]:
    """Each (facility, item)'s events folded in on-hand order: by occurred_at, movements
    before counts at one instant, counts by event_id; a count's difference is counted minus
    the balance just before it."""
    by_key: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for doc in events:
        if doc["event_type"] in STOCK_TYPES:
            by_key[(doc["facility_id"], doc["item"])].append(doc)
    totals: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for (facility, item), docs in by_key.items():
        docs.sort(key=lambda d: (_at(d), d["event_type"] == "stock.counted", _id(d)))
        balance, opening = 0.0, None
        figures: Counter[str] = Counter()
        for doc in docs:
            if opening is None and _at(doc) >= start:
                opening = balance
            kind = doc["event_type"]
            in_period = _at(doc) >= start
            if kind == "stock.counted":
                counted = float(doc["quantity_on_hand"])
                if in_period:
                    figures["count_difference"] += counted - balance
                balance = counted
                continue
            if kind == "stock.received":
                change, figure = float(doc["quantity"]), "received"
            elif kind == "stock.adjusted":
                change, figure = float(doc["quantity_delta"]), "adjusted"
            else:
                change, figure = -_units_used(doc, registry), "used"
            balance += change
            if in_period:
                figures[figure] += abs(change) if figure == "used" else change
        figures["opening"] += balance if opening is None else opening
        figures["closing"] += balance
        for unit in units.of(facility):
            totals[(unit, item)].update(figures)
            totals[(unit, item)]["rows"] += 1  # keeps all-zero rows
    rows = []
    for (unit, item), figures in totals.items():
        known = registry.items.get(item)
        rows.append(
            {
                "facility_id": unit,
                "item": item,
                "unit": known.unit if known else None,
                **{
                    name: _round(figures[name])
                    for name in (
                        "opening",
                        "received",
                        "adjusted",
                        "used",
                        "count_difference",
                        "closing",
                    )
                },
            }
        )
    return rows


def _dispensing_rows(events: Iterable[dict[str, Any]], units: _Units) -> list[dict[str, Any]]:
    sums: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    dosed: dict[tuple[str, str], set[str]] = defaultdict(set)
    for doc in events:
        if doc["event_type"] != "dose.dispensed":
            continue
        for unit in units.of(doc["facility_id"]):
            key = (unit, doc["item"])
            dosed[key].add(doc["patient_ref"])
            if doc["mode"] == "observed":
                sums[key]["observed_doses"] += 1
                sums[key]["mg_observed"] += float(doc["dose_mg"])
            else:
                sums[key]["take_home_handouts"] += 1
                sums[key]["mg_take_home"] += float(doc["dose_mg"]) * doc["take_home_days"]
    return [
        {
            "facility_id": unit,
            "item": item,
            "patients_dosed": len(patients),
            "observed_doses": sums[(unit, item)]["observed_doses"],
            "take_home_handouts": sums[(unit, item)]["take_home_handouts"],
            "mg_observed": _round(sums[(unit, item)]["mg_observed"]),
            "mg_take_home": _round(sums[(unit, item)]["mg_take_home"]),
        }
        for (unit, item), patients in dosed.items()
    ]


def _test_rows(events: Iterable[dict[str, Any]], units: _Units) -> list[dict[str, Any]]:
    tests: Counter[tuple[str, str]] = Counter()
    positive: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for doc in events:
        if doc["event_type"] != "test.performed":
            continue
        for unit in units.of(doc["facility_id"]):
            key = (unit, doc["purpose"])
            tests[key] += 1
            positive[key].update(s for s, r in doc["results"].items() if r == "positive")
    return [
        {
            "facility_id": unit,
            "purpose": purpose,
            "tests": n,
            "positive": dict(sorted(positive[(unit, purpose)].items())),
        }
        for (unit, purpose), n in tests.items()
    ]


# -- timeliness ---------------------------------------------------------------------------


def _due_periods(frequency: str, year: int, month: int) -> list[str]:
    """The period that ended with the month before, if this frequency has one ending there."""
    last_year, last_month = (year - 1, 12) if month == 1 else (year, month - 1)
    if frequency == "monthly":
        return [f"{last_year}-{last_month:02d}"]
    if frequency == "quarterly" and last_month in (3, 6, 9, 12):
        return [f"{last_year}-Q{last_month // 3}"]
    if frequency == "half_yearly" and last_month in (6, 12):
        return [f"{last_year}-H{last_month // 6}"]
    if frequency == "yearly" and last_month == 12:
        return [str(last_year)]
    return []


def _timeliness_rows(
    events: Iterable[dict[str, Any]],
    registry: RegistrySnapshot,
    first_day: date,
    t: datetime,
    units: _Units,
) -> list[dict[str, Any]]:
    first: dict[tuple[str, str, str], datetime] = {}
    for doc in events:
        if doc["event_type"] == "report.submitted" and _at(doc) <= t:
            key = (doc["facility_id"], doc["report_type"], doc["period"])
            first[key] = min(first.get(key, _at(doc)), _at(doc))
    next_month = (first_day + timedelta(days=32)).replace(day=1)
    last_of_month = (next_month - timedelta(days=1)).day
    rows = []
    for deadline in registry.deadlines.values():
        for period in _due_periods(deadline.frequency, first_day.year, first_day.month):
            due = _local_midnight(first_day.replace(day=min(deadline.due_day, last_of_month)))
            for facility in registry.facilities.values():
                if (
                    facility.type != deadline.reporter_type
                    or facility.facility_id not in units.order
                ):
                    continue
                at = first.get((facility.facility_id, deadline.report_type, period))
                rows.append(
                    {
                        "facility_id": facility.facility_id,
                        "report_type": deadline.report_type,
                        "period": period,
                        "due": _text(due),
                        "submitted_at": _text(at) if at is not None else None,
                        "on_time": (at < due) if at is not None else None,
                        "recipient_id": deadline.recipient_id,
                    }
                )
    return rows


# -- the document -------------------------------------------------------------------------


def monthly(
    docs: Iterable[dict[str, Any]],
    registry: RegistrySnapshot,
    period: str,
    unit: str | None = None,
    as_of: datetime | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """The five lists of the monthly report for ``period`` (YYYY-MM), as of ``as_of``."""
    events = first_accepted(docs)
    t = moment(events, as_of)
    units = _Units(registry, unit)
    names = ("patients", "dispensing", "stock", "tests", "timeliness")
    if t is None:
        return {name: [] for name in names}
    year, month = (int(part) for part in period.split("-"))
    first_day = date(year, month, 1)
    start = _local_midnight(first_day)
    following = _local_midnight((first_day + timedelta(days=32)).replace(day=1))
    cut = min(t, following - timedelta(milliseconds=1))
    upto = [doc for doc in events if _at(doc) <= cut]
    in_period = [doc for doc in upto if _at(doc) >= start]
    year_start = _local_midnight(date(year, 1, 1))
    lists = {
        "patients": _patient_rows(_Patients.of(upto), start, year_start, cut, units),
        "dispensing": _dispensing_rows(in_period, units),
        "stock": _stock_rows(upto, registry, start, units),
        "tests": _test_rows(in_period, units),
        "timeliness": _timeliness_rows(events, registry, first_day, t, units),
    }
    keys = {
        "patients": "programme",
        "dispensing": "item",
        "stock": "item",
        "tests": "purpose",
        "timeliness": "report_type",
    }
    return {
        name: sorted(rows, key=lambda r, k=keys[name]: (units.order[r["facility_id"]], str(r[k])))
        for name, rows in lists.items()
    }
