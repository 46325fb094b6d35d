"""The alert rules of CONTRACT §4, one case that must fire and one that must not per kind,
worked out by hand on a few facts (no database: the rules are pure functions)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from ostwatch.settings import AlertSettings
from ostwatch.timeutil import LOCAL_TZ
from schemas.calendar import due_instant
from schemas.reference import DeadlineRow, FacilityRow, ItemRow, RegistrySnapshot
from sinks.alert_store import Movement, PatientFact
from streams.alerts.calendar_rules import deadline_conditions, supervision_conditions
from streams.alerts.rules import anonymous_test_conditions, patient_conditions
from streams.alerts.stock_rules import count_conditions, stock_conditions

SETTINGS = AlertSettings()
PARENTS = {"DP-01": "TF-01"}
PATIENT = "pat-rule-0001"


def at(text: str) -> datetime:
    """Local time in March 2024: 'DD HH:MM'."""
    day, clock = text.split()
    return datetime.fromisoformat(f"2024-03-{day}T{clock}:00+07:00").astimezone(UTC)


def fact(event_type: str, when: str, facility: str = "TF-01", **fields: Any) -> PatientFact:
    instant = at(when)
    return PatientFact(
        patient_ref=PATIENT,
        occurred_at=instant,
        event_id=str(uuid.uuid4()),
        event_type=event_type,
        facility_id=facility,
        local_date=instant.astimezone(LOCAL_TZ).date(),
        **fields,
    )


def enrolled(when: str, facility: str = "TF-01") -> PatientFact:
    return fact("patient.enrolled", when, facility, programme="methadone", residence_commune="C-9")


def dose(when: str, facility: str = "TF-01", days: int = 0) -> PatientFact:
    mode = {"mode": "take_home", "take_home_days": days} if days else {"mode": "observed"}
    return fact("dose.dispensed", when, facility, item="MET10", dose_mg=80.0, **mode)


def kinds(facts: list[PatientFact], clock: str = "31 23:00") -> list[str]:
    found = patient_conditions(facts, PARENTS, SETTINGS, at(clock))
    return sorted(c.kind for c in found if c.kind != "commune_notification")


def test_double_dosing_across_facilities_fires() -> None:
    found = kinds([enrolled("01 07:00"), dose("02 08:00"), dose("02 11:00", "DP-01")])
    assert found == ["double_dosing"]


def test_one_dose_a_day_does_not_fire() -> None:
    assert kinds([enrolled("01 07:00"), dose("02 08:00"), dose("03 08:00", "DP-01")]) == []


def test_a_dose_inside_a_take_home_handout_is_double_dosing() -> None:
    approved = fact("patient.take_home_approved", "01 07:30", max_days=7)
    facts = [enrolled("01 07:00"), approved, dose("02 08:00", days=3), dose("04 08:00")]
    assert kinds(facts) == ["double_dosing"]
    # The day after the handout's last day is fine.
    assert kinds([enrolled("01 07:00"), approved, dose("02 08:00", days=3), dose("05 08:00")]) == []


def test_take_home_without_approval_beyond_it_or_beyond_policy() -> None:
    assert kinds([enrolled("01 07:00"), dose("02 08:00", days=3)]) == ["take_home_violation"]
    approved = fact("patient.take_home_approved", "01 07:30", max_days=3)
    assert kinds([enrolled("01 07:00"), approved, dose("02 08:00", days=3)]) == []
    assert kinds([enrolled("01 07:00"), approved, dose("02 08:00", days=4)]) == [
        "take_home_violation"
    ]
    generous = fact("patient.take_home_approved", "01 07:30", max_days=14)
    found = patient_conditions(
        [enrolled("01 07:00"), generous, dose("02 08:00", days=10)],
        PARENTS,
        SETTINGS,
        at("31 23:00"),
    )
    violation = next(c for c in found if c.kind == "take_home_violation")
    assert violation.details["problems"] == ["beyond_policy"]


def test_a_revoked_approval_is_not_current() -> None:
    facts = [
        enrolled("01 07:00"),
        fact("patient.take_home_approved", "01 07:30", max_days=7),
        fact("patient.take_home_revoked", "02 07:00"),
        dose("02 08:00", days=2),
    ]
    assert kinds(facts) == ["take_home_violation"]


def test_dose_to_a_patient_not_active_fires_once_per_run() -> None:
    facts = [dose("02 08:00"), dose("03 08:00"), dose("04 08:00")]
    found = patient_conditions(facts, PARENTS, SETTINGS, at("31 23:00"))
    inactive = [c for c in found if c.kind == "inactive_patient_dosed"]
    assert len(inactive) == 1 and inactive[0].details["doses"] == 3


def test_dispensing_point_doses_patients_of_its_treatment_facility() -> None:
    assert kinds([enrolled("01 07:00"), dose("02 08:00", "DP-01")]) == []
    # …but not those of another treatment facility.
    assert kinds([enrolled("01 07:00", "TF-02"), dose("02 08:00", "DP-01")]) == [
        "inactive_patient_dosed"
    ]


def test_discharged_or_transferred_patient_is_not_active() -> None:
    discharged = fact("patient.discharged", "02 07:00", outcome="other")
    assert kinds([enrolled("01 07:00"), discharged, dose("02 08:00")]) == ["inactive_patient_dosed"]
    moved = fact("patient.transferred", "02 07:00", to_facility_id="TF-02")
    assert kinds([enrolled("01 07:00"), moved, dose("02 08:00", "TF-02")]) == []
    assert kinds([enrolled("01 07:00"), moved, dose("02 09:00")]) == ["inactive_patient_dosed"]


def test_a_late_enrolment_clears_the_inactive_dose() -> None:
    # The enrolment happened before the dose (it only arrived later): judged in event time.
    assert kinds([dose("02 08:00"), enrolled("01 07:00")]) == []


def test_commune_notifications_for_the_legal_triggers_only() -> None:
    facts = [
        enrolled("01 07:00"),
        fact("patient.violation", "05 07:00", reason="diversion"),
        fact("patient.take_home_approved", "06 07:00", max_days=3),
        fact("patient.discharged", "09 07:00", outcome="self_terminated"),
    ]
    found = [
        c for c in patient_conditions(facts, PARENTS, SETTINGS, at("10 07:00"))
        if c.kind == "commune_notification"
    ]  # fmt: skip
    assert [c.details["trigger"] for c in found] == [
        "patient.enrolled",
        "patient.violation",
        "patient.discharged",
    ]
    assert {c.details["commune"] for c in found} == {"C-9"}
    outcome = fact("patient.discharged", "09 07:00", outcome="deceased")
    assert [c.kind for c in patient_conditions([outcome], PARENTS, SETTINGS, at("10 07:00"))] == []


def test_an_unacknowledged_notification_escalates_after_n_days() -> None:
    facts = [enrolled("01 07:00")]
    (early,) = patient_conditions(facts, PARENTS, SETTINGS, at("08 06:00"))
    (late,) = patient_conditions(facts, PARENTS, SETTINGS, at("08 08:00"))
    assert (early.escalated, late.escalated) == (False, True)
    assert (early.alert_id, late.severity) == (late.alert_id, "warning")
    (acked,) = patient_conditions(
        facts, PARENTS, SETTINGS, at("09 08:00"), {late.alert_id: at("05 08:00")}
    )
    assert not acked.escalated


def positive_test(
    when: str, purpose: str, results: dict[str, str], facility: str = "CHS-01", **fields: Any
) -> PatientFact:
    return fact("test.performed", when, facility, item="KIT-MULTI", purpose=purpose,
                results=results, **fields)  # fmt: skip


def notices(facts: list[PatientFact], **options: Any) -> list[tuple[str, str, str]]:
    """(kind, commune or '', trigger) of every commune notice or unknown-commune warning."""
    found = patient_conditions(facts, PARENTS, SETTINGS, at("10 07:00"), **options)
    return [
        (c.kind, c.details.get("commune", ""), c.details["trigger"])
        for c in found
        if c.kind in ("commune_notification", "commune_unknown")
    ]


def test_a_positive_determination_or_screening_notifies_the_tests_commune() -> None:
    positive = {"opiates": "positive", "methamphetamine": "negative"}
    facts = [
        positive_test("02 09:00", "addiction_determination", positive, residence_commune="C-4")
    ]
    (notice,) = patient_conditions(facts, PARENTS, SETTINGS, at("03 07:00"))
    assert (notice.kind, notice.subject, notice.severity) == (
        "commune_notification",
        PATIENT,
        "info",
    )
    assert (notice.details["commune"], notice.details["positive"]) == ("C-4", ["opiates"])
    assert "dương tính với opiates" in notice.message_vi
    # Screening too; a test's own commune wins over the enrolment's.
    screening = positive_test("05 09:00", "screening", positive, residence_commune="C-4")
    assert notices([enrolled("01 07:00"), screening]) == [
        ("commune_notification", "C-9", "patient.enrolled"),
        ("commune_notification", "C-4", "test.performed"),
    ]


def test_a_positive_test_without_a_commune_takes_the_enrolments() -> None:
    facts = [enrolled("01 07:00"), positive_test("05 09:00", "screening", {"opiates": "positive"})]
    assert notices(facts)[-1] == ("commune_notification", "C-9", "test.performed")


def test_a_positive_test_with_no_commune_known_raises_a_warning() -> None:
    facts = [positive_test("05 09:00", "addiction_determination", {"ketamine": "positive"})]
    (warning,) = patient_conditions(facts, PARENTS, SETTINGS, at("10 07:00"))
    assert (warning.kind, warning.severity, warning.facility_id) == (
        "commune_unknown",
        "warning",
        "CHS-01",
    )
    assert warning.details["positive"] == ["ketamine"]
    assert "không rõ xã cư trú" in warning.message_vi


def test_negative_invalid_and_monitoring_tests_notify_nobody() -> None:
    facts = [
        enrolled("01 07:00"),
        positive_test("02 09:00", "screening", {"opiates": "negative", "mdma": "invalid"}),
        positive_test(
            "03 09:00", "treatment_monitoring", {"opiates": "positive"}, facility="TF-01"
        ),
    ]
    assert notices(facts) == [("commune_notification", "C-9", "patient.enrolled")]


def test_a_test_of_nobody_known_stands_alone() -> None:
    test = replace(
        positive_test("02 09:00", "screening", {"opiates": "positive"}, residence_commune="C-5"),
        patient_ref="",
    )
    (notice,) = anonymous_test_conditions([test], SETTINGS, at("03 07:00"))
    assert (notice.kind, notice.subject, notice.details["commune"]) == (
        "commune_notification",
        f"test/{test.event_id}",
        "C-5",
    )
    (unknown,) = anonymous_test_conditions(
        [replace(test, residence_commune="")], SETTINGS, at("03 07:00")
    )
    assert unknown.kind == "commune_unknown"


def test_events_before_the_facilitys_live_from_are_history() -> None:
    """A facility joining brings its cohort: enrolments (and violations, discharges, positive
    tests) before its live_from count in reports but notify nobody (CONTRACT §2, §4)."""
    facts = [
        enrolled("01 07:00"),
        fact("patient.violation", "04 07:00", reason="diversion"),
        positive_test("04 09:00", "screening", {"opiates": "positive"}, facility="TF-01"),
        fact("patient.discharged", "05 07:00", outcome="completed"),
    ]
    live = {"TF-01": date(2024, 3, 5)}
    assert notices(facts, live_from=live) == [
        ("commune_notification", "C-9", "patient.discharged")  # on the live_from day: notified
    ]
    assert len(notices(facts)) == 4
    # Another facility's live_from does not make this one's events history.
    assert len(notices(facts, live_from={"TF-02": date(2024, 3, 20)})) == 4
    orphan = [positive_test("04 09:00", "screening", {"opiates": "positive"}, facility="TF-01")]
    assert notices(orphan, live_from=live) == []  # history: not even a missing commune


def stock_row(on_hand: float, days: float | None) -> dict[str, Any]:
    return {"facility_id": "TF-01", "item": "MET10", "unit": "ml", "on_hand": on_hand,
            "avg_daily_use": 10.0, "days_of_supply": days}  # fmt: skip


@pytest.mark.parametrize(
    ("on_hand", "days", "expected"),
    [
        (200, 20.0, []),
        (140, 14.0, []),
        (139, 13.9, [("stock_low", "warning")]),
        (69, 6.9, [("stock_low", "critical")]),
        (0, 0.0, [("stock_out", "critical")]),
        (-3, -0.3, [("stock_out", "critical")]),
        (50, None, []),
    ],
)
def test_stock_thresholds(on_hand: float, days: float | None, expected: list[Any]) -> None:
    found = stock_conditions([stock_row(on_hand, days)], SETTINGS, at("01 08:00"))
    assert [(c.kind, c.severity) for c in found] == expected


def movement(when: str, units: float, count: bool = False) -> Movement:
    return Movement(at(when), str(uuid.uuid4()), count, units)


def test_count_discrepancy_beyond_tolerance_and_its_resolution() -> None:
    movements = [
        movement("01 06:00", 1000, count=True),
        movement("01 08:00", -8),
        movement("01 18:00", 980, count=True),  # 992 expected: 12 off, within 2 %
        movement("02 18:00", 900, count=True),  # 980 expected: 80 off, beyond 2 %: fires
        movement("03 18:00", 900, count=True),  # agrees: the previous one resolves
    ]
    found = count_conditions("TF-01", "MET10", movements, SETTINGS)
    assert len(found) == 1
    assert found[0].details["expected"] == 980 and found[0].details["counted"] == 900
    assert found[0].resolved_at == at("03 18:00")


def test_small_stocks_use_the_one_unit_tolerance() -> None:
    movements = [movement("01 06:00", 10, count=True), movement("02 06:00", 11.5, count=True)]
    assert len(count_conditions("TF-01", "KIT", movements, SETTINGS)) == 1
    movements = [movement("01 06:00", 10, count=True), movement("02 06:00", 11, count=True)]
    assert count_conditions("TF-01", "KIT", movements, SETTINGS) == []


def test_a_first_count_after_receipts_and_doses_is_compared() -> None:
    """Three weeks of receipts and doses, then the item's first count 150 ml short: that is
    the diversion a count exists to catch, not a ledger being opened (CONTRACT §4)."""
    movements = [movement("01 07:00", 3000)]  # the opening delivery, never counted
    movements += [movement(f"{day:02d} 08:00", -100) for day in range(1, 22)]  # 2,100 ml dosed
    movements.append(movement("21 17:00", 750, count=True))  # 900 expected
    (found,) = count_conditions("TF-01", "MET10", movements, SETTINGS, unit="ml")
    assert (found.kind, found.details["expected"], found.details["difference"]) == (
        "count_discrepancy",
        900,
        -150,
    )
    # The same count with nothing before it opens the ledger, unchecked.
    assert count_conditions("TF-01", "MET10", movements[-1:], SETTINGS) == []


def test_a_movement_at_the_counts_instant_is_already_counted() -> None:
    movements = [
        movement("01 06:00", 100, count=True),
        movement("01 08:00", 90, count=True),
        movement("01 08:00", -10),
    ]
    assert count_conditions("TF-01", "MET10", movements, SETTINGS) == []


REGISTRY = RegistrySnapshot(
    facilities={
        "DHC-01": FacilityRow("DHC-01", "TTYT", "district_health_centre", None, "D", "P"),
        "TF-01": FacilityRow("TF-01", "CSĐT", "treatment_facility", "DHC-01", "D", "P"),
    },
    items={"MET10": ItemRow("MET10", "Methadone", "medication", "ml", 10.0)},
    deadlines={
        "methadone_monthly": DeadlineRow(
            "methadone_monthly", "monthly", 25, "district_health_centre"
        )
    },
)


def test_deadline_is_local_midnight_starting_the_due_day() -> None:
    assert due_instant("2024-03", 25) == datetime(2024, 4, 24, 17, 0, tzinfo=UTC)
    assert due_instant("2024-H2", 31) == datetime(2025, 1, 30, 17, 0, tzinfo=UTC)
    assert due_instant("2024-01", 31) == datetime(2024, 2, 28, 17, 0, tzinfo=UTC)  # 29 Feb


@pytest.mark.parametrize(
    ("clock", "submitted", "expected"),
    [
        ("2024-04-21T12:00:00+07:00", None, []),
        ("2024-04-22T00:00:00+07:00", None, ["report_due_soon"]),
        ("2024-04-24T23:59:00+07:00", None, ["report_due_soon"]),
        ("2024-04-25T00:00:00+07:00", None, ["report_overdue"]),
        ("2024-04-26T00:00:00+07:00", "2024-04-20T10:00:00+07:00", []),
        ("2024-04-26T00:00:00+07:00", "2024-04-25T10:00:00+07:00", []),
        ("2024-04-25T09:00:00+07:00", "2024-04-25T10:00:00+07:00", ["report_overdue"]),
    ],
)
def test_report_deadlines(clock: str, submitted: str | None, expected: list[str]) -> None:
    done = (
        {("DHC-01", "methadone_monthly", "2024-03"): datetime.fromisoformat(submitted)}
        if submitted
        else {}
    )
    found = deadline_conditions(
        REGISTRY, done, datetime.fromisoformat(clock), date(2024, 3, 5), SETTINGS
    )
    march = [c for c in found if c.subject == "methadone_monthly/2024-03"]
    assert [c.kind for c in march] == expected
    assert all(c.facility_id == "DHC-01" for c in found)


def test_no_report_is_due_for_a_period_before_the_reporter_went_live() -> None:
    """A unit that joins in April brings events dated years back (its register): the months
    before its live_from are history, not a year of overdue reports."""
    clock = datetime.fromisoformat("2024-06-26T00:00:00+07:00")
    found = deadline_conditions(REGISTRY, {}, clock, date(2021, 1, 1), SETTINGS)
    assert len([c for c in found if c.kind == "report_overdue"]) == 41  # Jan 2021 – May 2024
    live = replace(REGISTRY.facilities["DHC-01"], live_from=date(2024, 4, 10))
    joined = replace(REGISTRY, facilities={**REGISTRY.facilities, "DHC-01": live})
    found = deadline_conditions(joined, {}, clock, date(2021, 1, 1), SETTINGS)
    assert sorted(c.subject for c in found if c.kind == "report_overdue") == [
        "methadone_monthly/2024-04",  # the month it went live in is due
        "methadone_monthly/2024-05",
    ]


def test_supervision_behind_the_years_pace() -> None:
    july = datetime(2024, 7, 3, tzinfo=UTC)
    found = supervision_conditions(REGISTRY, {}, july, SETTINGS)
    assert [(c.kind, c.facility_id, c.details["expected"]) for c in found] == [
        ("supervision_behind", "TF-01", 1)
    ]
    visited = {"TF-01": [datetime(2024, 5, 2, tzinfo=UTC)]}
    assert supervision_conditions(REGISTRY, visited, july, SETTINGS) == []
    assert supervision_conditions(REGISTRY, {}, july - timedelta(days=10), SETTINGS) == []


QUARTERLY = RegistrySnapshot(
    facilities={
        **REGISTRY.facilities,
        "CDC-01": FacilityRow("CDC-01", "CDC", "provincial_cdc", None, "", "P"),
    },
    items=REGISTRY.items,
    deadlines={
        "detox_quarterly": DeadlineRow(
            "detox_quarterly", "quarterly", 15, "district_health_centre", "CDC-01"
        )
    },
)


@pytest.mark.parametrize(
    ("clock", "expected"),
    [
        ("2024-04-11T12:00:00+07:00", []),
        ("2024-04-12T00:00:00+07:00", [("report_due_soon", "detox_quarterly/2024-Q1")]),
        ("2024-04-15T00:00:00+07:00", [("report_overdue", "detox_quarterly/2024-Q1")]),
        ("2024-06-30T00:00:00+07:00", [("report_overdue", "detox_quarterly/2024-Q1")]),
    ],
)
def test_quarterly_deadlines_fall_due_after_the_quarter(
    clock: str, expected: list[tuple[str, str]]
) -> None:
    found = deadline_conditions(
        QUARTERLY, {}, datetime.fromisoformat(clock), date(2024, 1, 5), SETTINGS
    )
    assert [(c.kind, c.subject) for c in found] == expected


def test_deadline_alerts_name_the_recipient() -> None:
    clock = datetime.fromisoformat("2024-04-16T00:00:00+07:00")
    (alert,) = deadline_conditions(QUARTERLY, {}, clock, date(2024, 1, 5), SETTINGS)
    assert alert.details["recipient_id"] == "CDC-01"
    assert "to CDC-01" in alert.message
    assert "gửi CDC-01" in alert.message_vi
    # The recipient is not part of the alert's identity (an upgrade raises nothing twice).
    assert alert.subject == "detox_quarterly/2024-Q1"
