"""The province simulator: realistic, contract-exact, deterministic, with its planted problems."""

from __future__ import annotations

import csv
import re
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from producers.simulator import (
    PlantConfig,
    Province,
    SimulatedEvent,
    build_province,
    generate,
    write_registry,
)
from schemas.reference import parse_registry_dir

LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
START = date(2024, 3, 1)
DAYS = 14
SHARED_CSV = (
    Path(__file__).resolve().parents[2] / "producers/simulator/data/bac_giang_targets_2024.csv"
)

ENVELOPE = {"event_id", "event_type", "schema_version", "occurred_at", "facility_id"}
FIELDS: dict[str, tuple[set[str], set[str]]] = {  # event_type -> (required, optional)
    "dose.dispensed": ({"patient_ref", "item", "dose_mg", "mode"}, {"take_home_days"}),
    "stock.received": ({"item", "quantity"}, {"lot", "expiry_date"}),
    "stock.adjusted": ({"item", "quantity_delta", "reason"}, {"lot"}),
    "stock.counted": ({"item", "quantity_on_hand"}, set()),
    "patient.enrolled": ({"patient_ref", "programme", "residence_commune"}, set()),
    "patient.transferred": ({"patient_ref", "to_facility_id"}, set()),
    "patient.take_home_approved": ({"patient_ref", "max_days"}, set()),
    "patient.take_home_revoked": ({"patient_ref"}, set()),
    "patient.violation": ({"patient_ref", "reason"}, set()),
    "patient.discharged": ({"patient_ref", "outcome"}, set()),
    "test.performed": ({"item", "purpose", "results"}, {"patient_ref", "residence_commune"}),
    "report.submitted": ({"report_type", "period"}, set()),
    "supervision.visited": ({"supervisor_id"}, set()),
}
ENUMS = {
    "mode": {"observed", "take_home"},
    "reason": {
        "spillage",
        "breakage",
        "expired",
        "count_correction",
        "transfer_in",
        "transfer_out",
        "other",
        "missed_doses",
        "positive_test",
        "diversion",
        "behaviour",
    },
    "programme": {"methadone", "buprenorphine", "community_detox", "centre_detox"},
    "outcome": {
        "completed",
        "self_terminated",
        "deceased",
        "incarcerated",
        "compulsory_rehab",
        "other",
    },
    "purpose": {"addiction_determination", "treatment_monitoring", "screening"},
}
RFC3339_LOCAL = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+07:00$")
PATIENT_REF = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
PERIOD = re.compile(r"^\d{4}(-\d{2}|-H[12])?$")


@pytest.fixture(scope="module")
def province() -> Province:
    return build_province(scale=1.0, seed=0)


@pytest.fixture(scope="module")
def sent(province: Province) -> list[SimulatedEvent]:
    return list(generate(province, start=START, days=DAYS, seed=0))


@pytest.fixture(scope="module")
def events(sent: list[SimulatedEvent]) -> list[dict[str, Any]]:
    return [s.event for s in sent]


@pytest.fixture(scope="module")
def small() -> Province:
    return build_province(scale=0.3, seed=3)


@pytest.fixture(scope="module")
def summer(small: Province) -> list[dict[str, Any]]:
    """A smaller province over month ends, report days and the half-yearly report month."""
    return [s.event for s in generate(small, start=date(2024, 6, 25), days=40, seed=3)]


def occurred(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["occurred_at"])


def local_day(event: dict[str, Any]) -> date:
    return occurred(event).astimezone(LOCAL_TZ).date()


def by_occurrence(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(events, key=occurred)


def of_type(events: Iterable[dict[str, Any]], event_type: str) -> list[dict[str, Any]]:
    return [e for e in events if e["event_type"] == event_type]


def facility_types(province: Province) -> dict[str, str]:
    return {f.facility_id: f.type for f in province.facilities}


# ---- the province -------------------------------------------------------------------------------


def test_province_has_the_seed_units_and_caseload(province: Province) -> None:
    assert len(province.units) == 11
    assert [u.unit_id for u in province.units] == ["BG-CDC"] + [
        f"BG-DHC-{i:02d}" for i in range(1, 11)
    ]
    programmes = Counter(
        ("take_home" if p.take_home_max_days else "routine")
        if p.programme != "community_detox"
        else "detox"
        for p in province.patients
    )
    assert programmes == {"routine": 1351, "take_home": 273, "detox": 53}
    districts = {u.district for u in province.units}
    assert {"huyện Sơn Động", "huyện Hiệp Hòa", "thị xã Việt Yên"} <= districts
    assert all(f.province == "Bắc Giang" for f in province.facilities)
    assert {i.item for i in province.items} == {"MET10", "BUP2", "KIT-MOR", "KIT-MULTI4"}
    assert len(province.planted) == 4


def test_patients_are_pseudonymous_and_plausible(province: Province) -> None:
    refs = [p.patient_ref for p in province.patients]
    assert len(set(refs)) == len(refs)
    assert all(re.fullmatch(r"[0-9a-f]{24}", ref) for ref in refs)
    types = facility_types(province)
    for p in province.patients:
        if p.programme == "methadone":
            assert p.dose_mg is not None and 40 <= p.dose_mg <= 160
        elif p.programme == "buprenorphine":
            assert p.dose_mg is not None and 4 <= p.dose_mg <= 16
        else:
            assert types[p.enrolled_facility_id] == "commune_health_station"
        if p.take_home_max_days is not None:
            assert 2 <= p.take_home_max_days <= 7
        assert re.fullmatch(r"BG-C-\d{4}", p.residence_commune)
    share = sum(p.programme == "methadone" for p in province.patients) / len(province.patients)
    assert 0.8 < share < 0.95


def test_targets_are_the_csv_rows(province: Province) -> None:
    with SHARED_CSV.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    got = [
        (t.routine_target, t.take_home_target, t.community_detox_target) for t in province.targets
    ]
    want = [
        tuple(
            int(r[c]) if r[c] else None
            for c in ("routine_target_2024", "take_home_target_2024", "community_detox_target_2024")
        )
        for r in rows
    ]
    assert got == want
    assert province.targets[0].facility_id == "BG-CDC"
    assert province.targets[0].community_detox_target is None
    assert {t.year for t in province.targets} == {2024}


def test_scale_multiplies_patients() -> None:
    big = build_province(scale=3.0, seed=0)
    assert sum(p.programme != "community_detox" for p in big.patients) == 3 * (1351 + 273)


# ---- determinism --------------------------------------------------------------------------------


def test_same_seed_same_events_and_a_longer_run_extends_a_shorter_one(
    province: Province, events: list[dict[str, Any]]
) -> None:
    short = [s.event for s in generate(province, start=START, days=3, seed=0)]
    again = [s.event for s in generate(province, start=START, days=3, seed=0)]
    assert short == again
    first_three = [e for e in events if local_day(e) < START + timedelta(days=3)]
    assert sorted(short, key=str) == sorted(first_three, key=str)


def test_different_seed_different_events(province: Province) -> None:
    a = [s.event for s in generate(province, start=START, days=1, seed=0)]
    b = [s.event for s in generate(province, start=START, days=1, seed=1)]
    assert {e["event_id"] for e in a}.isdisjoint(e["event_id"] for e in b)
    assert [e["occurred_at"] for e in a] != [e["occurred_at"] for e in b]


# ---- contract shape -----------------------------------------------------------------------------


def check_contract(event: dict[str, Any], province: Province) -> None:
    required, optional = FIELDS[event["event_type"]]
    keys = set(event) - ENVELOPE
    assert set(event) >= ENVELOPE
    assert required <= keys <= required | optional, event
    assert event["schema_version"] == 1
    assert uuid.UUID(event["event_id"]).version == 4
    assert RFC3339_LOCAL.match(event["occurred_at"]), event
    assert all(value is not None for value in event.values())
    for name, allowed in ENUMS.items():
        if name in event:
            assert event[name] in allowed, event
    items = {i.item: i for i in province.items}
    if "item" in event:
        kind = "test_kit" if event["event_type"] == "test.performed" else None
        assert kind is None or items[event["item"]].kind == kind
    if "patient_ref" in event:
        assert PATIENT_REF.match(event["patient_ref"])
    match event["event_type"]:
        case "dose.dispensed":
            assert items[event["item"]].kind == "medication"
            assert 0 < event["dose_mg"] <= 1000
            if event["mode"] == "take_home":
                assert 1 <= event["take_home_days"] <= 30
            else:
                assert event.get("take_home_days", 1) == 1
        case "stock.received":
            assert event["quantity"] > 0
            date.fromisoformat(event["expiry_date"])
        case "stock.adjusted":
            assert event["quantity_delta"] != 0
        case "stock.counted":
            assert event["quantity_on_hand"] >= 0
        case "patient.take_home_approved":
            assert 1 <= event["max_days"] <= 30
        case "test.performed":
            assert event["results"]
            assert set(event["results"].values()) <= {"positive", "negative", "invalid"}
        case "report.submitted":
            assert PERIOD.match(event["period"])


def test_every_event_is_exactly_in_contract_format(
    province: Province,
    events: list[dict[str, Any]],
    small: Province,
    summer: list[dict[str, Any]],
) -> None:
    for event in events:
        check_contract(event, province)
    for event in summer:
        check_contract(event, small)
    seen = {e["event_type"] for e in events} | {e["event_type"] for e in summer}
    assert seen == set(FIELDS)
    ids = [e["event_id"] for e in events]
    assert len(set(ids)) == len(ids)


def test_sent_in_emit_order_with_aware_times(sent: list[SimulatedEvent]) -> None:
    emits = [s.emit_at for s in sent]
    assert all(t.tzinfo is not None for t in emits)
    assert emits == sorted(emits)
    assert all(s.emit_at >= occurred(s.event) for s in sent)
    occurred_order = [occurred(s.event) for s in sent]
    assert occurred_order != sorted(occurred_order)  # the late facility breaks occurred order


# ---- realism ------------------------------------------------------------------------------------


def test_about_fifteen_hundred_doses_a_day_with_a_morning_burst(
    events: list[dict[str, Any]],
) -> None:
    doses = of_type(events, "dose.dispensed")
    per_day = Counter(local_day(e) for e in doses)
    assert all(1200 <= n <= 1800 for n in per_day.values()), per_day
    observed = [occurred(e) for e in doses if e["mode"] == "observed"]
    morning = sum(6 <= t.hour < 10 for t in observed)
    peak = sum(7 <= t.hour < 8 for t in observed)
    assert morning / len(observed) > 0.8
    assert peak > sum(9 <= t.hour < 10 for t in observed)
    assert all(6 <= t.hour < 16 for t in observed)


def test_take_home_handouts_cover_several_days_within_the_approval(
    events: list[dict[str, Any]],
) -> None:
    approved: dict[str, int] = {}
    handouts = 0
    for e in by_occurrence(events):
        if e["event_type"] == "patient.take_home_approved":
            approved[e["patient_ref"]] = e["max_days"]
        elif e["event_type"] == "patient.take_home_revoked":
            approved.pop(e["patient_ref"], None)
        elif e["event_type"] == "dose.dispensed" and e["mode"] == "take_home":
            handouts += 1
            assert 1 < e["take_home_days"] <= approved[e["patient_ref"]]
    assert handouts > 300


def test_medication_matches_programme(events: list[dict[str, Any]]) -> None:
    programme = {e["patient_ref"]: e["programme"] for e in of_type(events, "patient.enrolled")}
    item = {"methadone": "MET10", "buprenorphine": "BUP2"}
    for dose in of_type(events, "dose.dispensed"):
        assert dose["item"] == item[programme[dose["patient_ref"]]]


def test_doses_only_to_active_patients_except_the_planted_double_dose(
    province: Province, events: list[dict[str, Any]]
) -> None:
    parent = {f.facility_id: f.parent_id for f in province.facilities}
    at: dict[str, str] = {}  # patient_ref -> treatment facility where active
    strays = []
    for e in by_occurrence(events):
        ref = str(e.get("patient_ref"))
        match e["event_type"]:
            case "patient.enrolled":
                at[ref] = e["facility_id"]
            case "patient.transferred":
                assert at[ref] == e["facility_id"]
                at[ref] = e["to_facility_id"]
            case "patient.discharged":
                assert at.pop(ref) == e["facility_id"]
            case "dose.dispensed":
                fid = e["facility_id"]
                if at.get(ref) not in (fid, parent[fid]):
                    strays.append(e)
    assert [(e["patient_ref"], e["facility_id"]) for e in strays] == [
        (province.double_dose_patient, province.plants.double_dose_second_facility)
    ]


def test_no_double_dosing_except_the_planted_one(
    province: Province, events: list[dict[str, Any]]
) -> None:
    per_day: Counter[tuple[str, date]] = Counter()
    covered: dict[str, date] = {}
    for e in by_occurrence(of_type(events, "dose.dispensed")):
        day = local_day(e)
        ref = e["patient_ref"]
        per_day[ref, day] += 1
        if ref in covered and day <= covered[ref]:
            per_day[ref, day] += 1
        covered[ref] = day + timedelta(days=e.get("take_home_days", 1) - 1)
    doubled = [key for key, n in per_day.items() if n > 1]
    plant_day = START + timedelta(days=province.plants.double_dose_day)
    assert doubled == [(province.double_dose_patient, plant_day)]
    pair = [
        e
        for e in of_type(events, "dose.dispensed")
        if e["patient_ref"] == province.double_dose_patient and local_day(e) == plant_day
    ]
    assert len({e["facility_id"] for e in pair}) == 2


def stock_timeline(
    events: Iterable[dict[str, Any]], province: Province
) -> dict[tuple[str, str], list[tuple[datetime, float, float]]]:
    """Contract §3 on hand after every movement: (time, on hand, units used)."""
    mg = {i.item: i.mg_per_unit for i in province.items}
    on_hand: dict[tuple[str, str], float] = defaultdict(float)
    timeline: dict[tuple[str, str], list[tuple[datetime, float, float]]] = defaultdict(list)
    for e in by_occurrence(events):
        key = (e["facility_id"], e.get("item", ""))
        used = 0.0
        match e["event_type"]:
            case "stock.counted":
                on_hand[key] = e["quantity_on_hand"]
            case "stock.received":
                on_hand[key] += e["quantity"]
            case "stock.adjusted":
                on_hand[key] += e["quantity_delta"]
            case "dose.dispensed":
                used = e["dose_mg"] * e.get("take_home_days", 1) / (mg[e["item"]] or 1)
            case "test.performed":
                used = 1.0
            case _:
                continue
        on_hand[key] -= used
        timeline[key].append((occurred(e), on_hand[key], used))
    return timeline


def test_stock_never_runs_negative_and_deliveries_keep_weeks_of_supply(
    province: Province, events: list[dict[str, Any]]
) -> None:
    timeline = stock_timeline(events, province)
    for key, points in timeline.items():
        assert min(level for _, level, _ in points) >= -1e-6, key
    received = of_type(events, "stock.received")
    assert {e["item"] for e in received} >= {"MET10", "BUP2"}
    assert all(e["lot"] and e["expiry_date"] > e["occurred_at"][:10] for e in received)
    deliveries = Counter(e["facility_id"] for e in received if e["item"] == "MET10")
    assert sum(n >= 1 for n in deliveries.values()) > 15
    spills = [e for e in of_type(events, "stock.adjusted") if e["reason"] == "spillage"]
    assert spills and all(-50 <= e["quantity_delta"] <= -5 for e in spills)


def test_tests_by_purpose_and_place(province: Province, events: list[dict[str, Any]]) -> None:
    types = facility_types(province)
    tests = of_type(events, "test.performed")
    places = {(e["purpose"], types[e["facility_id"]]) for e in tests}
    assert places == {
        ("treatment_monitoring", "treatment_facility"),
        ("addiction_determination", "commune_health_station"),
        ("screening", "commune_health_station"),
    }
    monitoring = [e for e in tests if e["purpose"] == "treatment_monitoring"]
    positive = [e for e in monitoring if "positive" in e["results"].values()]
    assert 0 < len(positive) < len(monitoring) / 2


def test_lifecycle_events_happen(events: list[dict[str, Any]]) -> None:
    counts = Counter(e["event_type"] for e in events if local_day(e) > START)
    for event_type in (
        "patient.enrolled",
        "patient.discharged",
        "patient.violation",
        "patient.take_home_approved",
    ):
        assert counts[event_type] > 0, event_type


def test_reports_and_supervision_follow_the_calendar(
    small: Province, summer: list[dict[str, Any]]
) -> None:
    types = facility_types(small)
    reports = of_type(summer, "report.submitted")
    monthly = [e for e in reports if e["report_type"] != "ward_half_yearly"]
    days = {e["facility_id"]: local_day(e).day for e in monthly if e["period"] == "2024-06"}
    late = small.plants.late_report_unit
    assert days[late] > 25
    on_time = [d for f, d in days.items() if f != late and types[f] != "provincial_cdc"]
    assert all(18 <= d <= 24 for d in on_time)
    assert days["BG-CDC"] < 27
    halves = [e for e in reports if e["report_type"] == "ward_half_yearly"]
    assert {e["period"] for e in halves} == {"2024-H1"}
    assert {e["facility_id"] for e in halves} == {
        f for f, t in types.items() if t == "commune_health_station"
    }
    counts = {local_day(e) for e in of_type(summer, "stock.counted")}
    assert {date(2024, 6, 25), date(2024, 6, 30), date(2024, 7, 31)} == counts
    visits = of_type(summer, "supervision.visited")
    assert visits
    assert all(
        types[e["supervisor_id"]] in {"district_health_centre", "provincial_cdc"} for e in visits
    )


# ---- planted problems ---------------------------------------------------------------------------


def test_planted_late_sync_facility(province: Province, sent: list[SimulatedEvent]) -> None:
    late = province.plants.late_sync_facility
    assert late is not None
    lags: dict[str, list[timedelta]] = defaultdict(list)
    for s in sent:
        if local_day(s.event) >= START:  # the opening register is dated in the past
            lags[s.event["facility_id"]].append(s.emit_at - occurred(s.event))
    assert lags[late] and min(lags[late]) >= timedelta(hours=12)
    assert max(lags[late]) >= timedelta(hours=20)
    assert all(lag == timedelta(0) for f, ls in lags.items() if f != late for lag in ls)


def test_planted_starved_dispensing_point(province: Province, events: list[dict[str, Any]]) -> None:
    dp = province.plants.starved_dispensing_point
    assert dp is not None
    plant_day = START + timedelta(days=province.plants.starve_from_day)
    assert not [
        e
        for e in of_type(events, "stock.received")
        if e["facility_id"] == dp and local_day(e) >= plant_day
    ]
    points = stock_timeline(events, province)[dp, "MET10"]
    first_use = min(t for t, _, used in points if used)
    day = START + timedelta(days=9)
    end = datetime(day.year, day.month, day.day, tzinfo=LOCAL_TZ) + timedelta(days=1)
    on_hand = [level for t, level, _ in points if t < end][-1]
    window = max(1, min(14, (end - first_use).days + 1))
    avg = sum(used for t, _, used in points if t < end) / window
    assert on_hand / avg < 7


def test_plants_can_be_switched_off() -> None:
    quiet = build_province(
        scale=0.2,
        seed=0,
        plants=PlantConfig(
            starved_dispensing_point=None,
            double_dose_facility=None,
            late_sync_facility=None,
            late_report_unit=None,
        ),
    )
    assert quiet.planted == ()
    assert quiet.double_dose_patient is None
    sent = list(generate(quiet, start=START, days=2))
    assert all(s.emit_at == occurred(s.event) for s in sent if local_day(s.event) >= START)


def test_the_opening_register_is_history_before_live_from(
    province: Province, sent: list[SimulatedEvent], tmp_path: Path
) -> None:
    """Patients already in treatment are sent on the first morning, each enrolment dated on
    its own past day; with the registry's live_from at START they notify nobody, while the
    run's own enrolments are new."""
    enrolments = [s for s in sent if s.event["event_type"] == "patient.enrolled"]
    register = {p.patient_ref for p in province.patients}
    opening = [s for s in enrolments if s.event["patient_ref"] in register]
    assert len(opening) == len(register)
    assert all(local_day(s.event) < START for s in opening)
    assert all(s.emit_at.astimezone(LOCAL_TZ).date() == START for s in opening)
    assert len({local_day(s.event) for s in opening}) > 300  # spread over the years before
    fresh = [s for s in enrolments if s.event["patient_ref"] not in register]
    assert fresh and all(local_day(s.event) >= START for s in fresh)
    write_registry(province, tmp_path, live_from=START)
    registry = parse_registry_dir(tmp_path)
    assert {f.live_from for f in registry.facilities.values()} == {START}


def test_commune_stations_say_where_the_tested_live(
    province: Province, events: list[dict[str, Any]]
) -> None:
    """Determination and screening at a station carry the station's commune, so a positive
    one notifies that commune (CONTRACT §4)."""
    communes = {c for unit in province.units for c in unit.communes}
    at_stations = [
        e for e in of_type(events, "test.performed")
        if e["purpose"] in ("addiction_determination", "screening")
    ]  # fmt: skip
    assert at_stations and all(e["residence_commune"] in communes for e in at_stations)
    monitoring = [e for e in of_type(events, "test.performed") if e not in at_stations]
    assert monitoring and all("residence_commune" not in e for e in monitoring)


# ---- registry files -----------------------------------------------------------------------------


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def test_registry_files_have_contract_headers_and_cover_every_event(
    province: Province,
    events: list[dict[str, Any]],
    tmp_path: Path,
) -> None:
    write_registry(province, tmp_path)
    headers = {
        "facilities.csv": ["facility_id", "name", "type", "parent_id", "district", "province"],
        "items.csv": ["item", "name", "kind", "unit", "mg_per_unit"],
        "targets.csv": [
            "facility_id",
            "year",
            "routine_target",
            "take_home_target",
            "community_detox_target",
        ],
        "deadlines.csv": ["report_type", "frequency", "due_day", "reporter_type", "recipient_id"],
    }
    tables = {}
    for name, header in headers.items():
        got, rows = read_csv(tmp_path / name)
        assert got == header
        tables[name] = rows
    facilities = {r["facility_id"]: r for r in tables["facilities.csv"]}
    assert len(facilities) == len(tables["facilities.csv"])
    assert all(r["parent_id"] in facilities or r["parent_id"] == "" for r in facilities.values())
    assert facilities["BG-PSY"]["parent_id"] == "BG-CDC"
    items = {r["item"]: r for r in tables["items.csv"]}
    assert items["MET10"]["mg_per_unit"] == "10" and items["KIT-MOR"]["mg_per_unit"] == ""
    report_types = {r["report_type"] for r in tables["deadlines.csv"]}
    recipients = {r["recipient_id"] for r in tables["deadlines.csv"]} - {""}
    assert recipients == {"BG-CDC", "BG-SYT"}
    assert facilities["BG-SYT"]["type"] == "department_of_health"
    # Every target row names a facility; the one TOTAL row is the seed's printed totals.
    assert {r["facility_id"] for r in tables["targets.csv"]} <= set(facilities) | {"TOTAL"}
    for e in events:
        assert e["facility_id"] in facilities
        for ref in ("to_facility_id", "supervisor_id"):
            if ref in e:
                assert e[ref] in facilities
        if "item" in e:
            assert e["item"] in items
        if "report_type" in e:
            assert e["report_type"] in report_types
