"""The monthly report (CONTRACT §6) on a small hand-made month whose figures are worked out
by hand below: patient flows and their roll-up, dispensing with a patient dosed at two
facilities of one unit, the stock ledger around a physical count and a late receipt, tests
per purpose, timeliness with recipients and a quarterly report, --unit and --as-of.
"""

from __future__ import annotations

import re
import shutil
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from infra.monthly_doc import monthly_html
from sinks.monthly import LISTS, MonthlyError, MonthlyReport
from tests.support.events import contract_event
from tests.support.intake import REGISTRY_DIR, IntakeHarness

pytestmark = pytest.mark.integration

DEADLINES = """report_type,frequency,due_day,reporter_type,recipient_id
methadone_monthly,monthly,25,district_health_centre,CDC-01
detox_quarterly,quarterly,15,district_health_centre,CDC-01
cdc_methadone_monthly,monthly,27,provincial_cdc,
"""
# A top unit with nothing below it (the recipient of the CDC's reports).
DOH = "DOH-01"
P1, P2, P3, P4, P5, P6, P7 = (f"pat-month-{n:04d}" for n in range(1, 8))


def event(at: str, kind: str, facility: str, **fields: Any) -> dict[str, Any]:
    return contract_event(kind, at, facility, **fields)


def enrol(at: str, facility: str, patient: str, programme: str) -> dict[str, Any]:
    return event(
        at, "patient.enrolled", facility, patient_ref=patient, programme=programme,
        residence_commune="C-01",
    )  # fmt: skip


def dose(at: str, facility: str, patient: str, item: str, mg: float, days: int = 0) -> dict:
    mode = {"mode": "take_home", "take_home_days": days} if days else {"mode": "observed"}
    return event(at, "dose.dispensed", facility, patient_ref=patient, item=item, dose_mg=mg, **mode)


P2_ENROLMENT = enrol("2024-03-05T08:00:00+07:00", "TF-01", P2, "methadone")
LATE_RECEIPT = event(
    "2024-03-12T08:00:00+07:00", "stock.received", "TF-02", item="MET10", quantity=100
)
MONTH = [
    enrol("2024-02-10T08:00:00+07:00", "TF-01", P1, "methadone"),
    dose("2024-02-28T08:00:00+07:00", "TF-01", P1, "MET10", 60),
    P2_ENROLMENT,
    event(
        "2024-03-06T08:00:00+07:00", "patient.transferred", "TF-01", patient_ref=P1,
        to_facility_id="TF-02",
    ),
    event("2024-03-06T09:00:00+07:00", "patient.take_home_approved", "TF-01", patient_ref=P2,
          max_days=7),
    dose("2024-03-06T10:00:00+07:00", "TF-01", P2, "MET10", 60),
    dose("2024-03-07T10:00:00+07:00", "DP-01", P2, "MET10", 60, days=3),
    enrol("2024-01-15T08:00:00+07:00", "TF-02", P3, "buprenorphine"),
    dose("2024-03-07T08:00:00+07:00", "TF-02", P1, "MET10", 80),
    dose("2024-03-07T08:30:00+07:00", "TF-02", P3, "BUP2", 8),
    event("2024-03-20T08:00:00+07:00", "patient.discharged", "TF-02", patient_ref=P3,
          outcome="self_terminated"),
    enrol("2024-01-20T08:00:00+07:00", "CHS-01", P4, "community_detox"),
    event("2024-02-25T08:00:00+07:00", "patient.discharged", "CHS-01", patient_ref=P4,
          outcome="completed"),
    enrol("2024-03-10T08:00:00+07:00", "CHS-01", P5, "community_detox"),
    event("2024-02-20T08:00:00+07:00", "stock.received", "TF-02", item="MET10", quantity=1000),
    event("2024-03-10T08:00:00+07:00", "stock.counted", "TF-02", item="MET10",
          quantity_on_hand=950),
    event("2024-03-15T08:00:00+07:00", "stock.adjusted", "TF-02", item="MET10",
          quantity_delta=-5, reason="spillage"),
    event("2024-03-12T08:00:00+07:00", "test.performed", "CHS-01", item="KIT-MOR",
          purpose="screening", results={"opiates": "positive"}),
    event("2024-03-13T08:00:00+07:00", "test.performed", "TF-01", item="KIT-MOR",
          purpose="treatment_monitoring", results={"opiates": "negative"}),
    event("2024-03-14T08:00:00+07:00", "test.performed", "CHS-01", item="KIT-MOR",
          purpose="addiction_determination",
          results={"opiates": "positive", "methamphetamine": "positive"}),
    event("2024-03-20T08:00:00+07:00", "report.submitted", "DHC-01",
          report_type="methadone_monthly", period="2024-02"),
    event("2024-03-26T08:00:00+07:00", "report.submitted", "DHC-02",
          report_type="methadone_monthly", period="2024-02"),
    event("2024-03-27T08:00:00+07:00", "report.submitted", "DHC-02",
          report_type="methadone_monthly", period="2024-02"),
    enrol("2024-03-31T23:30:00+07:00", "TF-02", P6, "methadone"),
    # The next month's first instant: not March's.
    enrol("2024-04-01T00:00:00+07:00", "TF-02", P7, "methadone"),
    event("2024-04-01T00:00:00+07:00", "report.submitted", "DHC-01",
          report_type="detox_quarterly", period="2024-Q1"),
]  # fmt: skip


@pytest.fixture(scope="module")
def harness(chdb_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[IntakeHarness]:
    registry = tmp_path_factory.mktemp("registry")
    for name in ("facilities.csv", "items.csv", "targets.csv"):
        shutil.copy(REGISTRY_DIR / name, registry / name)
    (registry / "deadlines.csv").write_text(DEADLINES, encoding="utf-8")
    with (registry / "facilities.csv").open("a", encoding="utf-8") as facilities:
        facilities.write(f"{DOH},Sở Y tế tỉnh Bắc Giang,department_of_health,,,Bắc Giang\n")
    intake = IntakeHarness(chdb_dir, registry)
    intake.feed([*MONTH, P2_ENROLMENT, LATE_RECEIPT], batch_sizes=(10, 10))
    yield intake
    intake.drop()


def report(
    harness: IntakeHarness,
    period: str = "2024-03",
    unit: str | None = None,
    as_of: str | None = None,
) -> dict[str, Any]:
    at = datetime.fromisoformat(as_of) if as_of else None
    live = MonthlyReport(harness.db, harness.store.registry, "aggregates").answer(period, unit, at)
    replayed = MonthlyReport(harness.db, harness.store.registry, "archive").answer(period, unit, at)
    assert live == replayed
    return live


def by_key(rows: list[dict[str, Any]], key: str) -> dict[tuple[str, str], dict[str, Any]]:
    return {(row["facility_id"], row[key]): row for row in rows}


def flows(row: dict[str, Any]) -> tuple[int, ...]:
    return tuple(
        row[k]
        for k in (
            "active_start", "enrolled", "transferred_in", "transferred_out", "active_end",
            "take_home_end", "enrolled_year", "completed_year",
        )
    )  # fmt: skip


def test_patient_flows_per_facility_and_rolled_up(harness: IntakeHarness) -> None:
    rows = by_key(report(harness)["patients"], "programme")
    #                              start enr in out end take-home year-starts year-completions
    assert flows(rows[("TF-01", "methadone")]) == (1, 1, 0, 1, 1, 1, 2, 0)
    assert flows(rows[("TF-02", "methadone")]) == (0, 1, 1, 0, 2, 0, 1, 0)
    assert flows(rows[("TF-02", "buprenorphine")]) == (1, 0, 0, 0, 0, 0, 1, 0)
    assert rows[("TF-02", "buprenorphine")]["discharged"] == {"self_terminated": 1}
    assert flows(rows[("CHS-01", "community_detox")]) == (0, 1, 0, 0, 1, 0, 2, 1)
    assert rows[("CHS-01", "community_detox")]["discharged"] == {}
    # Roll-up: each unit adds up the facilities below it; the transfer counts out at TF-01
    # and in at TF-02, so at the CDC it is both.
    assert flows(rows[("DHC-01", "methadone")]) == (1, 1, 0, 1, 1, 1, 2, 0)
    assert flows(rows[("DHC-01", "community_detox")]) == (0, 1, 0, 0, 1, 0, 2, 1)
    assert flows(rows[("DHC-02", "methadone")]) == (0, 1, 1, 0, 2, 0, 1, 0)
    assert flows(rows[("CDC-01", "methadone")]) == (1, 2, 1, 1, 3, 1, 3, 0)
    assert flows(rows[("CDC-01", "buprenorphine")]) == (1, 0, 0, 0, 0, 0, 1, 0)
    assert rows[("CDC-01", "buprenorphine")]["discharged"] == {"self_terminated": 1}
    assert {facility for facility, _ in rows} == {"CDC-01", "DHC-01", "DHC-02", "TF-01", "TF-02",
                                                 "CHS-01"}  # fmt: skip


def test_dispensing_counts_a_patient_once_per_unit(harness: IntakeHarness) -> None:
    rows = by_key(report(harness)["dispensing"], "item")
    figures = ("patients_dosed", "observed_doses", "take_home_handouts", "mg_observed",
               "mg_take_home")  # fmt: skip
    expected = {
        ("DP-01", "MET10"): (1, 0, 1, 0.0, 180.0),
        ("TF-01", "MET10"): (1, 1, 1, 60.0, 180.0),  # DP-01 is below TF-01
        ("DHC-01", "MET10"): (1, 1, 1, 60.0, 180.0),  # P2 at TF-01 and DP-01: one patient
        ("TF-02", "MET10"): (1, 1, 0, 80.0, 0.0),
        ("TF-02", "BUP2"): (1, 1, 0, 8.0, 0.0),
        ("CDC-01", "MET10"): (2, 2, 1, 140.0, 180.0),
        ("CDC-01", "BUP2"): (1, 1, 0, 8.0, 0.0),
    }
    for key, want in expected.items():
        assert tuple(rows[key][f] for f in figures) == want, key
    assert ("TF-01", "BUP2") not in rows  # February's dose is not March's


def test_stock_ledger_around_a_count_and_a_late_receipt(harness: IntakeHarness) -> None:
    rows = by_key(report(harness)["stock"], "item")
    ledger = ("opening", "received", "adjusted", "used", "count_difference", "closing")
    # 1000 received in February; 8 ml dosed, counted 950 (computed 992: −42), the late
    # 100 ml receipt on the 12th lands after the count, 5 ml spilt: closing 1045.
    assert tuple(rows[("TF-02", "MET10")][f] for f in ledger) == (
        1000.0, 100.0, -5.0, 8.0, -42.0, 1045.0,
    )  # fmt: skip
    assert tuple(rows[("TF-02", "BUP2")][f] for f in ledger) == (0.0, 0.0, 0.0, 4.0, 0.0, -4.0)
    assert rows[("TF-02", "BUP2")]["unit"] == "tablet"
    # TF-01: February's 6 ml, then March's 6 ml and a test kit; DP-01: 60 mg × 3 days.
    assert tuple(rows[("DHC-01", "MET10")][f] for f in ledger) == (
        -6.0, 0.0, 0.0, 24.0, 0.0, -30.0,
    )  # fmt: skip
    assert rows[("DHC-01", "KIT-MOR")]["used"] == 3.0
    assert rows[("CDC-01", "MET10")]["closing"] == pytest.approx(1045.0 - 30.0)


def test_tests_per_purpose_with_positives(harness: IntakeHarness) -> None:
    rows = by_key(report(harness)["tests"], "purpose")
    assert rows[("CHS-01", "screening")] == {
        "facility_id": "CHS-01", "purpose": "screening", "tests": 1, "positive": {"opiates": 1},
    }  # fmt: skip
    assert rows[("CHS-01", "addiction_determination")]["positive"] == {
        "methamphetamine": 1, "opiates": 1,
    }  # fmt: skip
    assert rows[("TF-01", "treatment_monitoring")]["positive"] == {}
    assert rows[("DHC-01", "screening")]["tests"] == 1
    assert sum(r["tests"] for (f, _), r in rows.items() if f == "CDC-01") == 3


def test_timeliness_of_the_reports_due_in_the_month(harness: IntakeHarness) -> None:
    march = {(r["facility_id"], r["report_type"]): r for r in report(harness)["timeliness"]}
    assert march[("DHC-01", "methadone_monthly")] == {
        "facility_id": "DHC-01",
        "report_type": "methadone_monthly",
        "period": "2024-02",
        "due": "2024-03-25T00:00:00+07:00",
        "submitted_at": "2024-03-20T08:00:00+07:00",
        "on_time": True,
        "recipient_id": "CDC-01",
    }
    late = march[("DHC-02", "methadone_monthly")]
    assert (late["submitted_at"], late["on_time"]) == ("2024-03-26T08:00:00+07:00", False)
    missing = march[("CDC-01", "cdc_methadone_monthly")]
    assert (missing["submitted_at"], missing["on_time"], missing["recipient_id"]) == (
        None, None, None,
    )  # fmt: skip
    assert len(march) == 3  # no quarter ended in February
    april = {(r["facility_id"], r["report_type"]): r for r in report(harness, "2024-04")[
        "timeliness"]}  # fmt: skip
    quarterly = april[("DHC-01", "detox_quarterly")]
    assert (quarterly["period"], quarterly["due"], quarterly["on_time"]) == (
        "2024-Q1", "2024-04-15T00:00:00+07:00", True,
    )  # fmt: skip
    assert april[("DHC-02", "detox_quarterly")]["submitted_at"] is None


def test_a_unit_and_the_facilities_below_it(harness: IntakeHarness) -> None:
    document = report(harness, unit="DHC-01")
    assert [u["facility_id"] for u in document["units"]] == ["DHC-01", "TF-01", "DP-01", "CHS-01"]
    assert [u["depth"] for u in document["units"]] == [0, 1, 2, 1]
    for name in ("patients", "dispensing", "stock", "tests", "timeliness"):
        assert {r["facility_id"] for r in document[name]} <= {"DHC-01", "TF-01", "DP-01",
                                                               "CHS-01"}, name  # fmt: skip
    whole = by_key(report(harness)["patients"], "programme")
    part = by_key(document["patients"], "programme")
    assert part[("DHC-01", "methadone")] == whole[("DHC-01", "methadone")]


def test_units_with_no_rows_get_no_page(harness: IntakeHarness) -> None:
    """The Department of Health (no facility below it) and a hospital with no event in the
    month are left out of the document, so the printed report has no empty page; a unit asked
    for by name is kept even with nothing to show."""
    document = report(harness)
    listed = [u["facility_id"] for u in document["units"]]
    assert DOH not in listed and "PSY-01" not in listed and listed[0] == "CDC-01"
    assert "Sở Y tế" not in monthly_html(document)
    assert [u["facility_id"] for u in report(harness, unit=DOH)["units"]] == [DOH]


def test_reconcile_refills_the_monthly_aggregates(harness: IntakeHarness) -> None:
    """Emptied (as on the first start after migration 0010), the monthly report's aggregates
    are recomputed from the archive by the start-up reconcile, to the very same report."""
    before = report(harness)
    for table in ("patient_states", "dispensing_items_daily"):
        harness.db.command(f"TRUNCATE TABLE {table}")
    assert harness.store.aggregates.reconcile() > 0
    assert report(harness) == before


def test_as_of_cuts_the_month_at_t(harness: IntakeHarness) -> None:
    document = report(harness, as_of="2024-03-06T12:00:00+07:00")
    assert document["as_of"] == "2024-03-06T12:00:00+07:00"
    rows = by_key(document["patients"], "programme")
    assert flows(rows[("TF-01", "methadone")]) == (1, 1, 0, 1, 1, 1, 2, 0)
    assert flows(rows[("TF-02", "methadone")]) == (0, 0, 1, 0, 1, 0, 0, 0)
    assert ("TF-02", "MET10") not in by_key(document["dispensing"], "item")
    stock = by_key(document["stock"], "item")[("TF-02", "MET10")]
    assert (stock["opening"], stock["closing"]) == (1000.0, 1000.0)


def test_rows_are_in_reading_order_and_the_period_is_local(harness: IntakeHarness) -> None:
    document = report(harness)
    assert (document["from"], document["to"]) == (
        "2024-03-01T00:00:00+07:00", "2024-04-01T00:00:00+07:00",
    )  # fmt: skip
    order = [u["facility_id"] for u in document["units"]]
    positions = [order.index(r["facility_id"]) for r in document["patients"]]
    assert positions == sorted(positions)


@pytest.mark.parametrize(
    ("period", "unit", "message"),
    [
        ("2024-3", None, "--period: expected YYYY-MM"),
        ("2024-13", None, "--period: expected YYYY-MM"),
        ("2024-03", "XX-99", "--unit: unknown facility 'XX-99'"),
    ],
)
def test_bad_requests_are_named(
    harness: IntakeHarness, period: str, unit: str | None, message: str
) -> None:
    with pytest.raises(MonthlyError, match=message):
        MonthlyReport(harness.db, harness.store.registry, "aggregates").answer(period, unit, None)


def test_a_units_live_report_runs_one_query_per_list_computing_each_part_once(
    harness: IntakeHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One province of the national year must answer in 300 ms (issue 17), and a query's
    fixed cost and a re-read table are most of that: a unit's report asks the registry's
    version and T, then one query per list (its patients found inside the patients' query),
    and no query names a CTE more often than it defines it (ClickHouse computes a CTE anew
    each time it is named)."""
    live = MonthlyReport(harness.db, harness.store.registry, "aggregates")
    expected = live.answer("2024-03", "DHC-01", None)
    sent: list[str] = []
    for method in ("query_rows", "query_dicts"):
        run = getattr(harness.db, method)

        def recording(sql: str, parameters: Any = None, _run: Any = run) -> Any:
            sent.append(sql)
            return _run(sql, parameters)

        monkeypatch.setattr(harness.db, method, recording)
    assert live.answer("2024-03", "DHC-01", None) == expected
    assert len(sent) == 2 + len(LISTS), "\n\n".join(sent)
    for text in sent:
        defined = Counter(re.findall(r"(?:WITH|,)\s+(\w+) AS (?:MATERIALIZED )?\(", text))
        named = Counter(re.findall(r"\b(?:FROM|(?<!ARRAY )JOIN)\s+(\w+)\b", text))
        assert {cte: named[cte] for cte in defined if named[cte] > defined[cte]} == {}, text
