"""The reports recomputed the plain way: every rule of CONTRACT §3 (and the README's choices
where it is silent) applied to a list of events in Python, with no aggregates and no SQL.

Slow and obviously right, so the live aggregates can be checked against it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any

from ostwatch.timeutil import LOCAL_TZ
from schemas.reference import RegistrySnapshot

MEDICATION_PROGRAMMES = ("methadone", "buprenorphine")


def _at(doc: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(doc["occurred_at"])


def _day(instant: datetime) -> date:
    return instant.astimezone(LOCAL_TZ).date()


def _round(value: float) -> float:
    rounded = round(value, 6)
    return 0.0 if rounded == 0 else rounded


def accepted_once(docs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Events in arrival order, each event_id kept the first time only."""
    seen: set[str] = set()
    kept = []
    for doc in docs:
        if doc["event_id"] not in seen:
            seen.add(doc["event_id"])
            kept.append(doc)
    return kept


def recompute(
    docs: Iterable[dict[str, Any]], registry: RegistrySnapshot, as_of: datetime | None
) -> dict[str, list[dict[str, Any]]]:
    """All five reports as of ``as_of`` (default: the latest occurred_at) from raw events."""
    events = accepted_once(docs)
    if not events:
        return {
            "stock": [],
            "dispensing": [],
            "patients": [],
            "tests": [],
            "targets": _targets(events, registry, None),
        }
    t = as_of or max(_at(doc) for doc in events)
    upto = [doc for doc in events if _at(doc) <= t]
    return {
        "stock": _stock(upto, registry, t),
        "dispensing": _dispensing(upto),
        "patients": _patients(upto, t),
        "tests": _tests(upto),
        "targets": _targets(events, registry, t),
    }


def _units_used(doc: dict[str, Any], registry: RegistrySnapshot) -> float:
    if doc["event_type"] == "test.performed":
        return 1.0
    days = doc.get("take_home_days", 1) if doc["mode"] == "take_home" else 1
    mg_per_unit = registry.items[doc["item"]].mg_per_unit or 1.0
    return float(doc["dose_mg"]) * days / float(mg_per_unit)


def _stock(
    events: list[dict[str, Any]], registry: RegistrySnapshot, t: datetime
) -> list[dict[str, Any]]:
    kinds = {
        "stock.received",
        "stock.adjusted",
        "stock.counted",
        "dose.dispensed",
        "test.performed",
    }
    by_key: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for doc in events:
        if doc["event_type"] in kinds:
            by_key[(doc["facility_id"], doc["item"])].append(doc)
    today = _day(t)
    window_start = today - timedelta(days=13)
    rows = []
    for (facility_id, item), docs in sorted(by_key.items()):
        counts = [d for d in docs if d["event_type"] == "stock.counted"]
        last = max(counts, key=lambda d: (_at(d), d["event_id"])) if counts else None
        on_hand = float(last["quantity_on_hand"]) if last else 0.0
        uses: list[tuple[date, float]] = []
        for doc in docs:
            kind = doc["event_type"]
            change = 0.0
            if kind == "stock.received":
                change = float(doc["quantity"])
            elif kind == "stock.adjusted":
                change = float(doc["quantity_delta"])
            elif kind in ("dose.dispensed", "test.performed"):
                used = _units_used(doc, registry)
                uses.append((_day(_at(doc)), used))
                change = -used
            if last is None or _at(doc) > _at(last):
                on_hand += change
        average = 0.0
        if uses:
            first_use = min(day for day, _ in uses)
            in_window = sum(used for day, used in uses if window_start <= day <= today)
            average = in_window / max(1, (today - max(first_use, window_start)).days + 1)
        rows.append(
            {
                "facility_id": facility_id,
                "item": item,
                "unit": registry.items[item].unit,
                "on_hand": _round(on_hand),
                "avg_daily_use": _round(average),
                "days_of_supply": _round(on_hand / average) if average > 0 else None,
            }
        )
    return rows


def _dispensing(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    days: dict[tuple[str, date], list[dict[str, Any]]] = defaultdict(list)
    for doc in events:
        if doc["event_type"] == "dose.dispensed":
            days[(doc["facility_id"], _day(_at(doc)))].append(doc)
    rows = []
    for (facility_id, day), docs in sorted(days.items()):
        observed = [d for d in docs if d["mode"] == "observed"]
        take_home = [d for d in docs if d["mode"] == "take_home"]
        rows.append(
            {
                "facility_id": facility_id,
                "date": day.isoformat(),
                "patients_dosed": len({d["patient_ref"] for d in docs}),
                "observed_doses": len(observed),
                "take_home_handouts": len(take_home),
                "mg_observed": _round(sum(float(d["dose_mg"]) for d in observed)),
                "mg_take_home": _round(
                    sum(float(d["dose_mg"]) * d["take_home_days"] for d in take_home)
                ),
            }
        )
    return rows


def _tests(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    months: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for doc in events:
        if doc["event_type"] == "test.performed":
            months[(doc["facility_id"], _day(_at(doc)).strftime("%Y-%m"))].append(doc)
    rows = []
    for (facility_id, month), docs in sorted(months.items()):
        positive: dict[str, int] = defaultdict(int)
        for doc in docs:
            for substance, result in doc["results"].items():
                if result == "positive":
                    positive[substance] += 1
        rows.append(
            {
                "facility_id": facility_id,
                "month": month,
                "tests": len(docs),
                "positive": dict(sorted(positive.items())),
            }
        )
    return rows


def _standing(events: list[dict[str, Any]], t: datetime) -> dict[tuple[str, str], list[int]]:
    """(facility, programme) → [active, active with take-home approval] at ``t``."""
    changes: dict[tuple[str, str], list[tuple[datetime, int, str, int]]] = defaultdict(list)
    approvals: dict[str, list[tuple[datetime, int, str, int]]] = defaultdict(list)
    enrolments: dict[str, list[tuple[datetime, str, str]]] = defaultdict(list)
    for doc in events:
        at, kind, eid = _at(doc), doc["event_type"], doc["event_id"]
        if at > t or not kind.startswith("patient."):
            continue
        patient, facility = doc["patient_ref"], doc["facility_id"]
        # Sort keys: time, then a leave (or a revocation) after a join, then event_id.
        if kind == "patient.enrolled":
            changes[(patient, facility)].append((at, 0, eid, +1))
            enrolments[patient].append((at, eid, doc["programme"]))
        elif kind == "patient.transferred":
            changes[(patient, facility)].append((at, 1, eid, -1))
            changes[(patient, doc["to_facility_id"])].append((at, 0, eid, +1))
        elif kind == "patient.discharged":
            changes[(patient, facility)].append((at, 1, eid, -1))
            approvals[patient].append((at, 1, eid, -1))
        elif kind == "patient.take_home_approved":
            approvals[patient].append((at, 0, eid, +1))
        elif kind == "patient.take_home_revoked":
            approvals[patient].append((at, 1, eid, -1))
    standing: dict[tuple[str, str], list[int]] = {}
    for (patient, facility), history in changes.items():
        programme = max(enrolments[patient])[2] if enrolments[patient] else "unknown"
        counts = standing.setdefault((facility, programme), [0, 0])
        if max(history)[3] == +1:
            counts[0] += 1
            if approvals[patient] and max(approvals[patient])[3] == +1:
                counts[1] += 1
    return standing


def _patients(events: list[dict[str, Any]], t: datetime) -> list[dict[str, Any]]:
    return [
        {
            "facility_id": facility,
            "programme": programme,
            "active": active,
            "take_home_approved": approved,
        }
        for (facility, programme), (active, approved) in sorted(_standing(events, t).items())
    ]


def _targets(
    events: list[dict[str, Any]], registry: RegistrySnapshot, t: datetime | None
) -> list[dict[str, Any]]:
    rows = []
    for target in registry.targets:
        routine = take_home = detox = 0
        if t is not None:
            year_end = datetime(target.year + 1, 1, 1, tzinfo=LOCAL_TZ) - timedelta(milliseconds=1)
            standing = _standing(events, min(t, year_end))
            unit = registry.descendants_of(target.facility_id) | {target.facility_id}
            for (facility, programme), (active, approved) in standing.items():
                if facility not in unit:
                    continue
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
