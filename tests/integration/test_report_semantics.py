"""One rule of CONTRACT §3 per test, with a few events and the answer worked out by hand.

Events go through the real intake (classification, archive, aggregate refresh) on the real
engine; each test also checks that the archive-only recomputation agrees.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support.events import contract_event
from tests.support.intake import IntakeHarness

pytestmark = pytest.mark.integration


def ev(event_type: str, at: str, facility_id: str = "TF-01", **fields: Any) -> dict[str, Any]:
    """An event; ``at`` without an offset is local time on 1 March 2024 (HH:MM) or a date."""
    if len(at) == 5:
        at = f"2024-03-01T{at}:00+07:00"
    return contract_event(event_type, at, facility_id, **fields)


def dose(
    at: str,
    mg: float,
    *,
    facility_id: str = "TF-01",
    patient: str = "pat-sem-0001",
    item: str = "MET10",
    days: int = 0,
) -> dict[str, Any]:
    mode: dict[str, Any] = (
        {"mode": "take_home", "take_home_days": days} if days else {"mode": "observed"}
    )
    return ev("dose.dispensed", at, facility_id, patient_ref=patient, item=item, dose_mg=mg, **mode)


def count(
    at: str, quantity: float, item: str = "MET10", facility_id: str = "TF-01"
) -> dict[str, Any]:
    return ev("stock.counted", at, facility_id, item=item, quantity_on_hand=quantity)


def received(at: str, quantity: float, item: str = "MET10") -> dict[str, Any]:
    return ev("stock.received", at, item=item, quantity=quantity)


def enrol(
    at: str, patient: str, facility_id: str = "TF-01", programme: str = "methadone"
) -> dict[str, Any]:
    return ev("patient.enrolled", at, facility_id, patient_ref=patient, programme=programme,
              residence_commune="C-01")  # fmt: skip


@pytest.fixture
def intake(chdb_dir: Path) -> Iterator[IntakeHarness]:
    harness = IntakeHarness(chdb_dir)
    yield harness
    harness.drop()


def report(intake: IntakeHarness, name: str, as_of: str | None = None) -> list[dict[str, Any]]:
    """The report from the live aggregates, checked against the archive recomputation."""
    moment = datetime.fromisoformat(as_of) if as_of else None
    live = intake.reports("aggregates", moment)[name]
    assert live == intake.reports("archive", moment)[name]
    return live


def stock_of(
    intake: IntakeHarness, facility_id: str, item: str, as_of: str | None = None
) -> dict[str, Any]:
    rows = [
        r for r in report(intake, "stock", as_of)
        if r["facility_id"] == facility_id and r["item"] == item
    ]  # fmt: skip
    assert len(rows) == 1, rows
    return rows[0]


def test_on_hand_is_the_last_count_plus_movements_after_it(intake: IntakeHarness) -> None:
    intake.feed([count("07:00", 1000), dose("08:00", 80), received("09:00", 500)])
    assert stock_of(intake, "TF-01", "MET10")["on_hand"] == 1000 - 8 + 500


def test_a_late_event_lands_where_it_happened(intake: IntakeHarness) -> None:
    intake.feed([count("07:00", 1000), dose("08:00", 80)])
    # Sent afterwards: a receipt before the count (already counted), a dose after it.
    intake.feed([received("06:00", 300), dose("07:30", 50)])
    assert stock_of(intake, "TF-01", "MET10")["on_hand"] == 1000 - 8 - 5


def test_a_movement_at_the_counts_instant_is_already_counted(intake: IntakeHarness) -> None:
    intake.feed([dose("07:00", 80), count("07:00", 1000), dose("07:01", 20)])
    assert stock_of(intake, "TF-01", "MET10")["on_hand"] == 998


def test_as_of_keeps_milliseconds(intake: IntakeHarness) -> None:
    # A count 0.5 s after a dose, in the same second: as of the count it is the count.
    intake.feed([dose("2024-03-01T07:00:00.200+07:00", 80),
                 count("2024-03-01T07:00:00.700+07:00", 500)])  # fmt: skip
    assert stock_of(intake, "TF-01", "MET10")["on_hand"] == 500
    as_of_dose = stock_of(intake, "TF-01", "MET10", "2024-03-01T07:00:00.500+07:00")
    assert as_of_dose["on_hand"] == -8


def test_any_event_moves_t_even_one_no_report_counts(intake: IntakeHarness) -> None:
    # 3.2 ml on 1 March; then, alone in its batch, a report submitted at 00:00 on 2 March:
    # T is that midnight, so the average spreads over two days.
    intake.feed([dose("23:00", 32)])
    intake.feed([ev("report.submitted", "2024-03-02T00:00:00+07:00", "DHC-01",
                    report_type="methadone_monthly", period="2024-02")])  # fmt: skip
    assert stock_of(intake, "TF-01", "MET10")["avg_daily_use"] == 1.6


def test_without_a_count_on_hand_is_the_sum_of_movements(intake: IntakeHarness) -> None:
    intake.feed([received("06:00", 100), ev("stock.adjusted", "06:30", item="MET10",
                 quantity_delta=-2.5, reason="spillage"), dose("07:00", 100)])  # fmt: skip
    assert stock_of(intake, "TF-01", "MET10")["on_hand"] == 100 - 2.5 - 10


def test_a_take_home_handout_uses_every_days_units(intake: IntakeHarness) -> None:
    intake.feed([count("06:00", 100), dose("07:00", 60, days=3)])
    assert stock_of(intake, "TF-01", "MET10")["on_hand"] == 100 - 18  # 60 mg × 3 / 10 mg/ml


def test_buprenorphine_in_tablets_and_kits_in_kits(intake: IntakeHarness) -> None:
    intake.feed([
        count("06:00", 50, item="BUP2"), dose("07:00", 8, item="BUP2"),
        count("06:00", 20, item="KIT-MOR", facility_id="CHS-01"),
        ev("test.performed", "08:00", "CHS-01", item="KIT-MOR", purpose="screening",
           results={"opiates": "negative"}),
    ])  # fmt: skip
    bup = stock_of(intake, "TF-01", "BUP2")
    assert (bup["on_hand"], bup["unit"]) == (46, "tablet")  # 8 mg / 2 mg per tablet
    kits = stock_of(intake, "CHS-01", "KIT-MOR")
    assert (kits["on_hand"], kits["unit"]) == (19, "kit")


def test_average_daily_use_counts_days_since_first_use(intake: IntakeHarness) -> None:
    # First use two days before the last day: 3 days of use; 30 + 30 + 30 ml.
    intake.feed([
        count("2024-02-28T06:00:00+07:00", 1000),
        dose("2024-02-28T07:00:00+07:00", 300), dose("2024-02-29T07:00:00+07:00", 300),
        dose("2024-03-01T07:00:00+07:00", 300),
    ])  # fmt: skip
    row = stock_of(intake, "TF-01", "MET10")
    assert (row["on_hand"], row["avg_daily_use"]) == (910, 30)
    assert row["days_of_supply"] == round(910 / 30, 6)


def test_average_daily_use_over_fourteen_days_for_an_old_user(intake: IntakeHarness) -> None:
    # Used long ago, then 140 ml in the last 14 days (one dose of 1,400 mg on 20 Feb).
    intake.feed([
        received("2024-01-01T06:00:00+07:00", 2000), dose("2024-01-02T07:00:00+07:00", 100),
        dose("2024-02-20T07:00:00+07:00", 1000), dose("2024-02-20T08:00:00+07:00", 400),
        count("2024-03-01T06:00:00+07:00", 280),
    ])  # fmt: skip
    row = stock_of(intake, "TF-01", "MET10")
    assert (row["avg_daily_use"], row["days_of_supply"]) == (10, 28)


def test_no_use_means_no_days_of_supply(intake: IntakeHarness) -> None:
    intake.feed([received("06:00", 100)])
    row = stock_of(intake, "TF-01", "MET10")
    assert (row["avg_daily_use"], row["days_of_supply"]) == (0, None)


def test_as_of_answers_with_only_the_events_by_then(intake: IntakeHarness) -> None:
    intake.feed([count("06:00", 100), dose("07:00", 100), dose("09:00", 100)])
    assert stock_of(intake, "TF-01", "MET10", "2024-03-01T08:00:00+07:00")["on_hand"] == 90
    assert stock_of(intake, "TF-01", "MET10", "2024-03-01T09:00:00+07:00")["on_hand"] == 80
    assert report(intake, "stock", "2024-03-01T05:59:59+07:00") == []


def test_local_days_are_vietnamese_days(intake: IntakeHarness) -> None:
    intake.feed([
        dose("2024-03-01T23:30:00+07:00", 50, patient="pat-sem-0001"),
        dose("2024-03-01T16:45:00Z", 50, patient="pat-sem-0002"),  # 23:45 local, 1 March
        dose("2024-03-01T17:30:00Z", 50, patient="pat-sem-0003"),  # 00:30 local, 2 March
    ])  # fmt: skip
    days = [(r["date"], r["patients_dosed"]) for r in report(intake, "dispensing")]
    assert days == [("2024-03-01", 2), ("2024-03-02", 1)]


def test_dispensing_counts_by_mode_and_take_home_on_its_day(intake: IntakeHarness) -> None:
    intake.feed([
        dose("07:00", 80, patient="pat-sem-0001"), dose("07:05", 60, patient="pat-sem-0002",
        days=4), dose("07:10", 20, patient="pat-sem-0001"),
    ])  # fmt: skip
    assert report(intake, "dispensing") == [
        {"facility_id": "TF-01", "date": "2024-03-01", "patients_dosed": 2,
         "observed_doses": 2, "take_home_handouts": 1, "mg_observed": 100.0,
         "mg_take_home": 240.0},
    ]  # fmt: skip


def test_duplicates_count_once_whatever_they_carry(intake: IntakeHarness) -> None:
    first = dose("07:00", 80)
    intake.feed([first, dict(first, dose_mg=500)])
    intake.feed([first])
    assert report(intake, "dispensing")[0]["mg_observed"] == 80


def test_active_patients_follow_enrolment_transfer_and_discharge(intake: IntakeHarness) -> None:
    a, b, c = "pat-sem-000a", "pat-sem-000b", "pat-sem-000c"
    intake.feed([
        enrol("07:00", a), enrol("07:00", b), enrol("07:00", c, "CHS-01", "community_detox"),
        ev("patient.transferred", "08:00", patient_ref=b, to_facility_id="TF-02"),
        ev("patient.discharged", "09:00", "CHS-01", patient_ref=c, outcome="completed"),
    ])  # fmt: skip
    active = {(r["facility_id"], r["programme"]): r["active"] for r in report(intake, "patients")}
    assert active == {("TF-01", "methadone"): 1, ("TF-02", "methadone"): 1,
                      ("CHS-01", "community_detox"): 0}  # fmt: skip
    before = report(intake, "patients", "2024-03-01T07:59:00+07:00")
    assert [(r["facility_id"], r["active"]) for r in before] == [("CHS-01", 1), ("TF-01", 2)]


def test_a_leave_at_the_same_instant_as_a_join_wins(intake: IntakeHarness) -> None:
    patient = "pat-sem-000d"
    intake.feed([
        enrol("07:00", patient),
        ev("patient.discharged", "07:00", patient_ref=patient, outcome="self_terminated"),
    ])  # fmt: skip
    assert report(intake, "patients")[0]["active"] == 0


def test_re_enrolment_after_discharge_is_active_again(intake: IntakeHarness) -> None:
    patient = "pat-sem-000e"
    intake.feed([
        enrol("07:00", patient),
        ev("patient.discharged", "08:00", patient_ref=patient, outcome="other"),
        enrol("09:00", patient, programme="buprenorphine"),
    ])  # fmt: skip
    rows = report(intake, "patients")
    assert [(r["programme"], r["active"]) for r in rows] == [("buprenorphine", 1)]


def test_targets_roll_up_and_take_home_moves_patients(intake: IntakeHarness) -> None:
    # DHC-01's target covers TF-01, its dispensing point DP-01 and CHS-01.
    p1, p2, p3 = "pat-sem-0101", "pat-sem-0102", "pat-sem-0103"
    intake.feed([
        enrol("2024-02-01T07:00:00+07:00", p1), enrol("2024-02-01T07:00:00+07:00", p2),
        enrol("2024-02-01T07:00:00+07:00", p3, "CHS-01", "community_detox"),
        ev("patient.transferred", "2024-02-02T07:00:00+07:00", patient_ref=p2,
           to_facility_id="DP-01"),
        ev("patient.take_home_approved", "2024-02-10T07:00:00+07:00", patient_ref=p1,
           max_days=7),
        ev("patient.take_home_revoked", "2024-03-01T07:00:00+07:00", patient_ref=p1),
        dose("2024-03-02T07:00:00+07:00", 80, patient=p2, facility_id="DP-01"),
    ])  # fmt: skip

    def dhc(as_of: str | None) -> tuple[int, int, int]:
        row = next(r for r in report(intake, "targets", as_of) if r["facility_id"] == "DHC-01")
        return row["routine_actual"], row["take_home_actual"], row["community_detox_actual"]

    assert dhc("2024-02-20T00:00:00+07:00") == (1, 1, 1)  # p1 on take-home
    assert dhc(None) == (2, 0, 1)  # revoked: back to routine


def test_a_years_actuals_are_taken_at_its_end(intake: IntakeHarness) -> None:
    patient = "pat-sem-0201"
    intake.feed([
        enrol("2024-06-01T07:00:00+07:00", patient, "TF-02"),
        ev("patient.discharged", "2025-01-10T07:00:00+07:00", "TF-02", patient_ref=patient,
           outcome="completed"),
    ])  # fmt: skip
    tf02 = next(r for r in report(intake, "targets") if r["facility_id"] == "TF-02")
    assert (tf02["year"], tf02["routine_target"], tf02["routine_actual"]) == (2024, 80, 1)


def test_tests_per_month_with_positives_per_substance(intake: IntakeHarness) -> None:
    def test(at: str, **results: str) -> dict[str, Any]:
        return ev("test.performed", at, "CHS-01", item="KIT-MOR",
                  purpose="addiction_determination", results=results)  # fmt: skip

    intake.feed([
        test("2024-02-29T10:00:00+07:00", opiates="positive", methamphetamine="positive"),
        test("2024-03-01T10:00:00+07:00", opiates="positive"),
        test("2024-03-01T11:00:00+07:00", opiates="negative", cannabis="invalid"),
    ])  # fmt: skip
    assert report(intake, "tests") == [
        {"facility_id": "CHS-01", "month": "2024-02", "tests": 1,
         "positive": {"methamphetamine": 1, "opiates": 1}},
        {"facility_id": "CHS-01", "month": "2024-03", "tests": 2, "positive": {"opiates": 1}},
    ]  # fmt: skip
