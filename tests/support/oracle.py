"""The five reports recomputed the plain way, for checking the real ones against.

Written from CONTRACT §3 and the choices the README documents where the contract is silent,
never from the SQL: every rule is a few lines of ordinary Python over the list of events, in
the order the rules are stated. Slow (every report walks every event) and obviously right.

Input: the events that passed validation, as contract JSON objects, in the order they
arrived (duplicates included: the oracle applies the duplicate rule itself). Output: the
same JSON shapes, keys and row order as ``sinks.reports.Reports``.

The choices, in one place:

* T is ``as_of``, or the latest ``occurred_at`` of all accepted events. Only events with
  ``occurred_at <= T`` count. Local days and months are Asia/Ho_Chi_Minh.
* Duplicates: an ``event_id`` (compared as the lower-case UUID) seen before is ignored;
  the first one accepted wins, whatever the later ones carry.
* Stock on hand: the last count at or before T (latest ``occurred_at``; on a tie the larger
  ``event_id`` text) plus every movement strictly after the count's instant, up to T; a
  movement at the count's exact instant is already in the count. Without a count: the sum
  of every movement up to T.
* Average daily use at D = T's local day: units used on D-13 … D, divided by how many of
  those 14 days are on or after the local day of the first use of that item at that
  facility (at least 1); 0 if it was never used.
* Patients: for each (patient, facility) the last membership change wins, ordered by
  ``occurred_at``, then a leave after a join at the same instant, then ``event_id`` text.
  The programme is the one of the latest enrolment anywhere (``unknown`` without one).
  A take-home approval is current when the last of approval (+1), revocation (-1) and
  discharge (-1) of that patient anywhere — ordered by ``occurred_at``, then revocations
  after approvals at the same instant, then ``event_id`` text — is an approval.
* Targets: a year's actuals are taken at min(T, the year's last local millisecond), summed
  over the unit and every facility below it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from ostwatch.timeutil import LOCAL_TZ
from schemas.reference import RegistrySnapshot

__all__ = [
    "REPORT_NAMES",
    "Standing",
    "dispensing",
    "first_accepted",
    "moment",
    "patients",
    "recompute",
    "standing",
    "stock",
    "targets",
    "tests",
    "year_end",
]

REPORT_NAMES = ("stock", "dispensing", "patients", "tests", "targets")
USE_WINDOW_DAYS = 14
STOCK_TYPES = frozenset(
    {"stock.received", "stock.adjusted", "stock.counted", "dose.dispensed", "test.performed"}
)
ROUTINE_PROGRAMMES = frozenset({"methadone", "buprenorphine"})


# -- small helpers ------------------------------------------------------------------------


def _at(doc: dict[str, Any]) -> datetime:
    """``occurred_at`` as an aware datetime (RFC 3339 text with ``Z`` or an offset)."""
    return datetime.fromisoformat(doc["occurred_at"])


def _local_day(instant: datetime) -> date:
    return instant.astimezone(LOCAL_TZ).date()


def _id(doc: dict[str, Any]) -> str:
    """The idempotency key as the platform compares it: the lower-case UUID text."""
    return str(doc["event_id"]).lower()


def _number(value: float) -> float:
    """Numbers as reports print them: six decimals, and never -0.0."""
    rounded = round(value, 6)
    return 0.0 if rounded == 0 else rounded


def first_accepted(docs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events that count: each event_id the first time it was accepted, in that order."""
    seen: set[str] = set()
    kept: list[dict[str, Any]] = []
    for doc in docs:
        key = _id(doc)
        if key in seen:
            continue
        seen.add(key)
        kept.append(doc)
    return kept


def moment(events: Sequence[dict[str, Any]], as_of: datetime | None) -> datetime | None:
    """T: ``as_of``, else the latest occurred_at of the (de-duplicated) events; None if none."""
    if as_of is not None:
        return as_of
    if not events:
        return None
    return max(_at(doc) for doc in events)


def _upto(events: Iterable[dict[str, Any]], t: datetime) -> list[dict[str, Any]]:
    return [doc for doc in events if _at(doc) <= t]


# -- the whole set ------------------------------------------------------------------------


def recompute(
    docs: Iterable[dict[str, Any]], registry: RegistrySnapshot, as_of: datetime | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Every report, by name, as of ``as_of`` (default: the latest occurred_at)."""
    events = first_accepted(docs)
    return {
        "stock": stock(events, registry, as_of),
        "dispensing": dispensing(events, as_of),
        "patients": patients(events, as_of),
        "tests": tests(events, as_of),
        "targets": targets(events, registry, as_of),
    }


# -- stock --------------------------------------------------------------------------------


def _units_used(doc: dict[str, Any], registry: RegistrySnapshot) -> float:
    """What a dose or a test takes from stock, in the item's unit."""
    if doc["event_type"] == "test.performed":
        return 1.0
    days = doc["take_home_days"] if doc["mode"] == "take_home" else 1
    mg_per_unit = registry.items[doc["item"]].mg_per_unit
    assert mg_per_unit, f"{doc['item']} is not a medication"
    return float(doc["dose_mg"]) * days / float(mg_per_unit)


def _movement(doc: dict[str, Any], registry: RegistrySnapshot) -> float:
    """The signed change to on hand of a receipt, adjustment, dose or test."""
    kind = doc["event_type"]
    if kind == "stock.received":
        return float(doc["quantity"])
    if kind == "stock.adjusted":
        return float(doc["quantity_delta"])
    return -_units_used(doc, registry)


def stock(
    docs: Iterable[dict[str, Any]], registry: RegistrySnapshot, as_of: datetime | None = None
) -> list[dict[str, Any]]:
    """Per facility and item: on hand at T, average daily use, days of supply."""
    events = first_accepted(docs)
    t = moment(events, as_of)
    if t is None:
        return []
    today = _local_day(t)
    window = {today - timedelta(days=back) for back in range(USE_WINDOW_DAYS)}
    by_key: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for doc in _upto(events, t):
        if doc["event_type"] in STOCK_TYPES:
            by_key.setdefault((doc["facility_id"], doc["item"]), []).append(doc)
    rows = []
    for (facility_id, item), key_events in sorted(by_key.items()):
        counts = [doc for doc in key_events if doc["event_type"] == "stock.counted"]
        movements = [doc for doc in key_events if doc["event_type"] != "stock.counted"]
        if counts:
            last = max(counts, key=lambda doc: (_at(doc), _id(doc)))
            counted_at = _at(last)
            on_hand = float(last["quantity_on_hand"]) + sum(
                _movement(doc, registry) for doc in movements if _at(doc) > counted_at
            )
        else:
            on_hand = sum(_movement(doc, registry) for doc in movements)

        uses = [
            (_local_day(_at(doc)), _units_used(doc, registry))
            for doc in movements
            if doc["event_type"] in ("dose.dispensed", "test.performed")
        ]
        average = 0.0
        if uses:
            first_use = min(day for day, _ in uses)
            used = sum(units for day, units in uses if day in window)
            days_counted = max(1, sum(1 for day in window if day >= first_use))
            average = used / days_counted
        rows.append(
            {
                "facility_id": facility_id,
                "item": item,
                "unit": registry.items[item].unit,
                "on_hand": _number(on_hand),
                "avg_daily_use": _number(average),
                "days_of_supply": _number(on_hand / average) if average > 0 else None,
            }
        )
    return rows


# -- dispensing and tests -----------------------------------------------------------------


def dispensing(
    docs: Iterable[dict[str, Any]], as_of: datetime | None = None
) -> list[dict[str, Any]]:
    """Per facility and local day with a dose: patients dosed, doses by mode, milligrams."""
    events = first_accepted(docs)
    t = moment(events, as_of)
    if t is None:
        return []
    by_day: dict[tuple[str, date], list[dict[str, Any]]] = {}
    for doc in _upto(events, t):
        if doc["event_type"] == "dose.dispensed":
            by_day.setdefault((doc["facility_id"], _local_day(_at(doc))), []).append(doc)
    rows = []
    for (facility_id, day), doses in sorted(by_day.items()):
        observed = [doc for doc in doses if doc["mode"] == "observed"]
        take_home = [doc for doc in doses if doc["mode"] == "take_home"]
        rows.append(
            {
                "facility_id": facility_id,
                "date": day.isoformat(),
                "patients_dosed": len({doc["patient_ref"] for doc in doses}),
                "observed_doses": len(observed),
                "take_home_handouts": len(take_home),
                "mg_observed": _number(sum(float(doc["dose_mg"]) for doc in observed)),
                "mg_take_home": _number(
                    sum(float(doc["dose_mg"]) * doc["take_home_days"] for doc in take_home)
                ),
            }
        )
    return rows


def tests(
    docs: Iterable[dict[str, Any]], as_of: datetime | None = None, by: str = "month"
) -> list[dict[str, Any]]:
    """Per facility and local month with a test (and purpose, ``by="purpose"``): tests,
    positive results per substance."""
    events = first_accepted(docs)
    t = moment(events, as_of)
    if t is None:
        return []
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for doc in _upto(events, t):
        if doc["event_type"] == "test.performed":
            month = _local_day(_at(doc)).strftime("%Y-%m")
            purpose = (doc["purpose"],) if by == "purpose" else ()
            groups.setdefault((doc["facility_id"], month, *purpose), []).append(doc)
    rows = []
    for (facility_id, month, *purpose), performed in sorted(groups.items()):
        positive: Counter[str] = Counter()
        for doc in performed:
            positive.update(s for s, result in doc["results"].items() if result == "positive")
        rows.append(
            {
                "facility_id": facility_id,
                "month": month,
                **({"purpose": purpose[0]} if purpose else {}),
                "tests": len(performed),
                "positive": {substance: positive[substance] for substance in sorted(positive)},
            }
        )
    return rows


# -- patients -----------------------------------------------------------------------------

JOIN, LEAVE = 0, 1  # at the same instant a leave sorts after (so beats) a join


@dataclass(frozen=True)
class Standing:
    """Active patients of one (facility, programme), and how many of them are on take-home."""

    active: int = 0
    take_home_approved: int = 0


def standing(docs: Iterable[dict[str, Any]], at: datetime) -> dict[tuple[str, str], Standing]:
    """(facility, programme) → Standing at the instant ``at``, from events up to ``at``."""
    events = _upto(first_accepted(docs), at)
    # (patient, facility) → [(occurred_at, JOIN/LEAVE, event_id)]
    changes: dict[tuple[str, str], list[tuple[datetime, int, str]]] = {}
    # patient → [(occurred_at, event_id, programme)]
    enrolments: dict[str, list[tuple[datetime, str, str]]] = {}
    # patient → [(occurred_at, -value, event_id, value)]
    approvals: dict[str, list[tuple[datetime, int, str, int]]] = {}
    for doc in events:
        kind = doc["event_type"]
        if not kind.startswith("patient."):
            continue
        patient, facility, when, eid = doc["patient_ref"], doc["facility_id"], _at(doc), _id(doc)
        if kind == "patient.enrolled":
            changes.setdefault((patient, facility), []).append((when, JOIN, eid))
            enrolments.setdefault(patient, []).append((when, eid, doc["programme"]))
        elif kind == "patient.transferred":
            changes.setdefault((patient, facility), []).append((when, LEAVE, eid))
            changes.setdefault((patient, doc["to_facility_id"]), []).append((when, JOIN, eid))
        elif kind == "patient.discharged":
            changes.setdefault((patient, facility), []).append((when, LEAVE, eid))
            approvals.setdefault(patient, []).append((when, 1, eid, -1))
        elif kind == "patient.take_home_approved":
            approvals.setdefault(patient, []).append((when, -1, eid, +1))
        elif kind == "patient.take_home_revoked":
            approvals.setdefault(patient, []).append((when, 1, eid, -1))

    def programme_of(patient: str) -> str:
        enrolled = enrolments.get(patient)
        return max(enrolled)[2] if enrolled else "unknown"

    def approved(patient: str) -> bool:
        history = approvals.get(patient)
        return history is not None and max(history)[3] == +1

    active: Counter[tuple[str, str]] = Counter()
    on_take_home: Counter[tuple[str, str]] = Counter()
    keys: set[tuple[str, str]] = set()
    for (patient, facility), history in changes.items():
        key = (facility, programme_of(patient))
        keys.add(key)
        if max(history)[1] == JOIN:
            active[key] += 1
            if approved(patient):
                on_take_home[key] += 1
    return {key: Standing(active[key], on_take_home[key]) for key in keys}


def patients(docs: Iterable[dict[str, Any]], as_of: datetime | None = None) -> list[dict[str, Any]]:
    """Per facility and programme: active patients, and those with a take-home approval."""
    events = first_accepted(docs)
    t = moment(events, as_of)
    if t is None:
        return []
    return [
        {
            "facility_id": facility_id,
            "programme": programme,
            "active": counts.active,
            "take_home_approved": counts.take_home_approved,
        }
        for (facility_id, programme), counts in sorted(standing(events, t).items())
    ]


# -- targets ------------------------------------------------------------------------------


def year_end(year: int) -> datetime:
    """The last millisecond of a local (Asia/Ho_Chi_Minh) year."""
    return datetime(year + 1, 1, 1, tzinfo=LOCAL_TZ) - timedelta(milliseconds=1)


def targets(
    docs: Iterable[dict[str, Any]], registry: RegistrySnapshot, as_of: datetime | None = None
) -> list[dict[str, Any]]:
    """Per registry target row: each target beside its actual, rolled up over the unit."""
    events = first_accepted(docs)
    t = moment(events, as_of)
    rows = []
    for target in registry.targets:
        routine = take_home = detox = 0
        if t is not None:
            unit = {target.facility_id} | registry.descendants_of(target.facility_id)
            at_year_end = standing(events, min(t, year_end(target.year)))
            for (facility_id, programme), counts in at_year_end.items():
                if facility_id not in unit:
                    continue
                if programme in ROUTINE_PROGRAMMES:
                    routine += counts.active - counts.take_home_approved
                    take_home += counts.take_home_approved
                elif programme == "community_detox":
                    detox += counts.active
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
