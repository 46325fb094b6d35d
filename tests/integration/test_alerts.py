"""Alerts through the real intake on the real engine: raised once, stable under redelivery,
resolved when late events or new stock clear them, acknowledged by people, and a storm of
hundreds of facilities handled in one pass without loss or repeats."""

from __future__ import annotations

import asyncio
import csv
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from infra.application.alerts import AckRequest
from infra.application.common import OperationError, build
from ostwatch.settings import AlertSettings
from schemas.alerts import Alert, AlertChange
from streams.alerts.engine import AlertEngine
from streams.intake.service import IntakeService
from tests.support.alert_events import PATIENT, dose, enrol, ev
from tests.support.events import contract_event
from tests.support.intake import REGISTRY_DIR, IntakeHarness, registry_live_from

pytestmark = pytest.mark.integration

SETTINGS = AlertSettings()


@pytest.fixture
def intake(chdb_dir: Path) -> Iterator[IntakeHarness]:
    harness = IntakeHarness(chdb_dir, alert_settings=SETTINGS)
    yield harness
    harness.drop()


def stored(intake: IntakeHarness, kind: str | None = None) -> list[Alert]:
    assert intake.service.alerts is not None
    rows = intake.service.alerts.table.stored()
    return [alert for _, alert in rows.values() if kind is None or alert.kind == kind]


def test_a_late_enrolment_resolves_the_inactive_alert_it_raised(intake: IntakeHarness) -> None:
    intake.feed([dose("02 08:00")])
    (raised,) = stored(intake, "inactive_patient_dosed")
    assert raised.status == "open"
    intake.feed([enrol("01 07:00")])  # happened before the dose, arrived after it
    (after,) = stored(intake, "inactive_patient_dosed")
    assert (after.alert_id, after.status) == (raised.alert_id, "resolved")
    # Judged afresh as of any T, the false alert never existed.
    engine = intake.service.alerts
    assert engine is not None
    as_of = engine.as_of(datetime.fromisoformat("2024-03-03T00:00:00+07:00"))
    assert [a.kind for a in as_of if a.kind == "inactive_patient_dosed"] == []


def test_redelivery_and_replay_raise_nothing_twice(intake: IntakeHarness) -> None:
    intake.feed([enrol("01 07:00"), dose("02 08:00"), dose("02 09:00", facility_id="DP-01")])
    first = {a.alert_id: a for a in stored(intake)}
    assert {a.kind for a in first.values()} == {
        "double_dosing",
        "commune_notification",
        "stock_out",
    }
    before = intake.service.stats.alert_changes
    intake.redeliver(0)
    intake.feed([dose("02 10:00", patient="pat-alert-0001")])  # same patient, other event id
    after = {a.alert_id: a for a in stored(intake)}
    assert after.keys() == first.keys()
    assert len([a for a in after.values() if a.kind == "double_dosing"]) == 1  # not a second
    assert intake.service.stats.alert_changes == before  # nothing a person acts on changed


def test_stock_low_opens_escalates_and_resolves_on_receipt(intake: IntakeHarness) -> None:
    # 100 ml, 10 ml a day: 10 days of supply (warning), then 5 (critical), then a receipt.
    intake.feed([ev("stock.counted", "01 06:00", item="MET10", quantity_on_hand=110),
                 enrol("01 06:30"), dose("01 08:00", mg=100)])  # fmt: skip
    (low,) = stored(intake, "stock_low")
    assert (low.severity, low.status, low.subject) == ("warning", "open", "MET10")
    intake.feed([ev("stock.adjusted", "01 09:00", item="MET10", quantity_delta=-50,
                    reason="spillage")])  # fmt: skip
    (critical,) = stored(intake, "stock_low")
    assert (critical.alert_id, critical.severity) == (low.alert_id, "critical")
    intake.feed([ev("stock.received", "01 10:00", item="MET10", quantity=1000)])
    (done,) = stored(intake, "stock_low")
    assert (done.alert_id, done.status) == (low.alert_id, "resolved")


def test_stock_out_when_a_dose_finds_no_stock(intake: IntakeHarness) -> None:
    intake.feed([enrol("01 06:30"), dose("01 08:00", facility_id="DP-01")])
    (out,) = stored(intake, "stock_out")
    assert (out.facility_id, out.details["on_hand"]) == ("DP-01", -8.0)


def test_count_discrepancy_fires_beyond_tolerance_only(intake: IntakeHarness) -> None:
    intake.feed([ev("stock.counted", "01 06:00", item="MET10", quantity_on_hand=1000),
                 enrol("01 06:30"), dose("01 08:00"),
                 ev("stock.counted", "01 18:00", item="MET10", quantity_on_hand=985)])  # fmt: skip
    assert stored(intake, "count_discrepancy") == []  # 992 expected, 7 ml off: within 2 %
    intake.feed([ev("stock.counted", "02 18:00", item="MET10", quantity_on_hand=900)])
    (found,) = stored(intake, "count_discrepancy")
    assert (found.details["expected"], found.details["difference"]) == (985, -85)
    # A late dose before that count explains it (900 counted, 905 expected): it resolves.
    intake.feed([dose("02 08:00", patient="pat-alert-0002", mg=800)])
    (explained,) = stored(intake, "count_discrepancy")
    assert (explained.alert_id, explained.status) == (found.alert_id, "resolved")


def test_a_first_count_after_three_weeks_of_receipts_and_doses_is_checked(
    intake: IntakeHarness,
) -> None:
    """The item's first count, 150 ml below what was received and dosed, raises a
    discrepancy; on hand is still the count (CONTRACT §3 unchanged)."""
    feed = [ev("stock.received", "01 06:00", item="MET10", quantity=3000), enrol("01 06:30")]
    feed += [dose(f"{day:02d} 08:00", mg=1000) for day in range(1, 22)]  # 100 ml a day
    intake.feed(feed)
    intake.feed([ev("stock.counted", "21 17:00", item="MET10", quantity_on_hand=750)])
    (found,) = stored(intake, "count_discrepancy")
    assert (found.details["expected"], found.details["difference"]) == (900, -150)
    (row,) = [
        r for r in intake.report("stock") if (r["facility_id"], r["item"]) == ("TF-01", "MET10")
    ]
    assert row["on_hand"] == 750
    engine = intake.service.alerts
    assert engine is not None
    fresh = [a for a in engine.as_of(found.raised_at) if a.kind == "count_discrepancy"]
    assert [a.alert_id for a in fresh] == [found.alert_id]


def test_a_late_receipt_before_a_first_count_gets_it_checked(intake: IntakeHarness) -> None:
    intake.feed([ev("stock.counted", "03 17:00", item="MET10", quantity_on_hand=500)])
    assert stored(intake, "count_discrepancy") == []  # nothing known before it: opens the ledger
    intake.feed([ev("stock.received", "02 09:00", item="MET10", quantity=800)])  # sent late
    (found,) = stored(intake, "count_discrepancy")
    assert (found.details["expected"], found.details["counted"]) == (800, 500)


def test_positive_tests_notify_their_commune_live_and_as_of(intake: IntakeHarness) -> None:
    """CONTRACT §4: a positive determination or screening notifies the test's commune, else
    the patient's enrolment commune; with neither known, a warning says so."""
    positive = {"opiates": "positive"}
    tests = [
        ev("test.performed", "02 09:00", "CHS-01", item="KIT-MOR", purpose="screening",
           results=positive, patient_ref="pat-alert-0009", residence_commune="C-07"),
        ev("test.performed", "02 10:00", "TF-01", item="KIT-MOR", purpose="screening",
           results=positive, patient_ref=PATIENT),  # enrolled in C-01
        ev("test.performed", "02 11:00", "CHS-01", item="KIT-MOR",
           purpose="addiction_determination", results=positive, residence_commune="C-08"),
        ev("test.performed", "02 12:00", "CHS-01", item="KIT-MOR", purpose="screening",
           results=positive),  # nobody known, no commune
        ev("test.performed", "02 13:00", "TF-01", item="KIT-MOR",
           purpose="treatment_monitoring", results=positive, patient_ref=PATIENT),
    ]  # fmt: skip
    intake.feed([enrol("01 07:00"), *tests])
    live = {
        (a.kind, a.subject, a.details.get("commune", ""))
        for a in stored(intake)
        if a.kind in ("commune_notification", "commune_unknown")
    }
    anonymous = {f"test/{tests[2]['event_id']}", f"test/{tests[3]['event_id']}"}
    assert live == {
        ("commune_notification", PATIENT, "C-01"),  # the enrolment
        ("commune_notification", "pat-alert-0009", "C-07"),
        ("commune_notification", PATIENT, "C-01"),
        ("commune_notification", f"test/{tests[2]['event_id']}", "C-08"),
        ("commune_unknown", f"test/{tests[3]['event_id']}", ""),
    }
    assert len([a for a in stored(intake) if a.subject in anonymous]) == 2
    engine = intake.service.alerts
    assert engine is not None
    fresh = engine.as_of(datetime.fromisoformat("2024-03-03T00:00:00+07:00"))
    kinds = ("commune_notification", "commune_unknown")
    assert {a.alert_id for a in fresh if a.kind in kinds} == {
        a.alert_id for a in stored(intake) if a.kind in kinds
    }
    assert len([a for a in stored(intake) if a.kind in kinds]) == 5
    intake.redeliver(0)  # judged again: nothing new
    assert len([a for a in stored(intake) if a.kind in kinds]) == 5


def test_a_facility_s_cohort_before_live_from_is_history(chdb_dir: Path, tmp_path: Path) -> None:
    """Onboarding: TF-01 starts sending on 5 March with its patients already in treatment.
    Their enrolments count in the patients report but raise no commune notification; a
    patient enrolled from 5 March on does."""
    registry = registry_live_from(tmp_path, {"TF-01": "2024-03-05"})
    intake = IntakeHarness(chdb_dir, registry_dir=registry, alert_settings=SETTINGS)
    try:
        cohort = [enrol(f"0{day} 07:00", patient=f"pat-cohort-{day:04d}") for day in (1, 2, 3)]
        late = ev("patient.violation", "04 07:00", patient_ref="pat-cohort-0001", reason="other")
        intake.feed([*cohort, late, enrol("05 07:00", patient="pat-new-0001")])
        notices = stored(intake, "commune_notification")
        assert [a.subject for a in notices] == ["pat-new-0001"]
        (active,) = [r["active"] for r in intake.report("patients") if r["facility_id"] == "TF-01"]
        assert active == 4
        engine = intake.service.alerts
        assert engine is not None
        fresh = engine.as_of(datetime.fromisoformat("2024-03-06T00:00:00+07:00"))
        assert [a.subject for a in fresh if a.kind == "commune_notification"] == ["pat-new-0001"]
        # Kept in the registry tables too, for dashboards and Grafana's deadline rules.
        rows = intake.db.query_rows(
            "SELECT facility_id, live_from FROM registry_facilities WHERE live_from IS NOT NULL"
        )
        assert rows == [("TF-01", date(2024, 3, 5))]
    finally:
        intake.drop()


def test_acknowledging_resolves_an_incident(intake: IntakeHarness) -> None:
    intake.feed([enrol("01 07:00")])
    (notice,) = stored(intake, "commune_notification")
    assert notice.details["commune"] == "C-01"
    engine = intake.service.alerts
    assert engine is not None
    change = engine.acknowledge(notice.alert_id, "sent by post")
    assert change is not None
    assert (change.change, change.sequence, change.alert.status) == ("resolved", 2, "resolved")
    intake.redeliver(0)
    (after,) = stored(intake, "commune_notification")
    assert after.status == "resolved"  # judging again does not reopen it


def test_bulk_acknowledgement_goes_through_the_live_engine(intake: IntakeHarness) -> None:
    """`alerts ack --kind --commune --before` on the judging worker: one note, the count, the
    changes published before they are stored, and the live cache in step with the table."""

    def enrolment(day: int, patient: str, commune: str) -> dict[str, object]:
        return ev("patient.enrolled", f"0{day} 07:00", patient_ref=patient,
                  programme="methadone", residence_commune=commune)  # fmt: skip

    patients = [(1, "C-01"), (2, "C-01"), (3, "C-01"), (1, "C-02")]
    intake.feed([enrolment(day, f"pat-bulk-000{n}", c) for n, (day, c) in enumerate(patients, 1)])
    published: list[AlertChange] = []

    async def publish(changes: Sequence[AlertChange]) -> None:
        published.extend(changes)

    intake.service = IntakeService(replace(intake.service.context, publish_alerts=publish))
    intake.service.warm_up()

    def acknowledge(**fields: Any) -> dict[str, Any]:
        asked = build(AckRequest, **fields)  # as the CLI and the worker's API build it
        done = asyncio.run(intake.service.acknowledge_alerts(asked.selection(), asked.note))
        return done.as_json()

    request = {"kinds": ["commune_notification"], "communes": ["C-01"], "before": "2024-03-03",
               "note": "đã gửi công văn tháng 3"}  # fmt: skip
    outcome = acknowledge(**request)
    assert (outcome["acknowledged"], outcome["already_acknowledged"]) == (2, 0)
    assert [c.idempotency_key for c in published] == [
        f"{c['alert']['alert_id']}/{c['sequence']}" for c in outcome["changes"]
    ]
    resolved = {a.subject for a in stored(intake, "commune_notification") if a.status == "resolved"}
    assert resolved == {"pat-bulk-0001", "pat-bulk-0002"}
    engine = intake.service.alerts
    assert engine is not None
    table = AlertEngine(intake.store, SETTINGS).table.stored(kinds=["commune_notification"])
    assert {a.subject for _, a in table.values() if a.acknowledged_at} == resolved
    # Nothing left to acknowledge under the same filters; by id, it says it was done before.
    assert acknowledge(**request)["acknowledged"] == 0
    again = {"alert_ids": [outcome["changes"][0]["alert"]["alert_id"]]}
    assert acknowledge(**again)["already_acknowledged"] == 1
    intake.redeliver(0)  # judged again: the acknowledged notices stay resolved
    assert {a.subject for a in stored(intake) if a.status == "resolved"} == resolved
    with pytest.raises(OperationError, match="name the alerts"):
        build(AckRequest, note="everything?")


def test_deadlines_follow_submissions(intake: IntakeHarness) -> None:
    intake.feed([enrol("01 07:00")])
    engine = intake.service.alerts
    assert engine is not None
    now = datetime.fromisoformat("2024-04-26T09:00:00+07:00")
    overdue = [a for a in engine.current(now) if a.subject == "methadone_monthly/2024-03"]
    assert sorted((a.kind, a.facility_id) for a in overdue) == [
        ("report_overdue", "DHC-01"),
        ("report_overdue", "DHC-02"),
    ]
    intake.send([contract_event("report.submitted", "2024-04-26T08:00:00+07:00", "DHC-01",
                                report_type="methadone_monthly", period="2024-03")])  # fmt: skip
    left = [
        (a.facility_id, a.status) for a in engine.current(now)
        if a.subject == "methadone_monthly/2024-03" and a.status == "open"
    ]  # fmt: skip
    assert left == [("DHC-02", "open")]


def test_an_alert_storm_is_judged_in_one_pass(chdb_dir: Path, tmp_path: Path) -> None:
    """300 facilities fall below their stock in one batch: 300 alerts, once each."""
    registry = tmp_path / "registry"
    registry.mkdir()
    for name in ("items.csv", "deadlines.csv"):
        (registry / name).write_text((REGISTRY_DIR / name).read_text(encoding="utf-8"))
    with (registry / "facilities.csv").open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["facility_id", "name", "type", "parent_id", "district", "province"])
        for n in range(300):
            writer.writerow([f"TF-{n:03d}", f"Cơ sở {n}", "treatment_facility", "", "D", "P"])
    harness = IntakeHarness(chdb_dir, registry, alert_settings=SETTINGS)
    try:
        events = []
        for n in range(300):
            facility = f"TF-{n:03d}"
            patient = f"pat-storm-{n:04d}"
            events += [
                ev("stock.counted", "01 06:00", facility, item="MET10", quantity_on_hand=60),
                enrol("01 06:30", patient, facility),
                dose("01 08:00", patient, facility, mg=100),
            ]
        harness.feed(events)
        lows = stored(harness, "stock_low")
        assert len(lows) == 300 and len({a.alert_id for a in lows}) == 300
        assert {a.severity for a in lows} == {"critical"}  # 50 ml left, 10 ml a day
        changes = harness.service.stats.alert_changes
        harness.redeliver(0)
        assert harness.service.stats.alert_changes == changes
    finally:
        harness.drop()


def test_alert_changes_round_trip_as_json(intake: IntakeHarness) -> None:
    intake.feed([dose("02 08:00")])
    (alert,) = stored(intake, "inactive_patient_dosed")
    change = AlertChange(change="opened", sequence=1, alert=alert)
    assert AlertChange.from_bytes(change.to_bytes()) == change
    assert change.idempotency_key == f"{alert.alert_id}/1"
