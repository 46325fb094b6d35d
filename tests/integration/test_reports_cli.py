"""Every `ostwatch report …` through the real stack, with hand-computed answers.

A small day of a treatment facility (TF-01), its dispensing point (DP-01) and a commune
health station (CHS-01), with a late receipt and a duplicate, is ingested from a file; the
reports must match what a person computes from CONTRACT §3, the same after a restart and
with no stack running (the CLI then opens the store itself).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.integration.conftest import FIXTURES, RunningStack
from tests.support.events import contract_event

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

P1, P2, P3 = "pat-cli-0001", "pat-cli-0002", "pat-cli-0003"


event = contract_event


def dose(at: str, facility_id: str, patient: str, mg: float, days: int = 0) -> dict[str, Any]:
    if days:
        return event(
            "dose.dispensed", at, facility_id, patient_ref=patient, item="MET10",
            dose_mg=mg, mode="take_home", take_home_days=days,
        )  # fmt: skip
    return event(
        "dose.dispensed", at, facility_id, patient_ref=patient, item="MET10",
        dose_mg=mg, mode="observed",
    )  # fmt: skip


def scenario() -> list[dict[str, Any]]:
    enrol = "patient.enrolled"
    observed_p1 = dose("2024-03-01T08:00:00+07:00", "TF-01", P1, 80)
    return [
        event(enrol, "2024-02-01T08:00:00+07:00", "TF-01", patient_ref=P1,
              programme="methadone", residence_commune="C-01"),
        event(enrol, "2024-02-01T08:05:00+07:00", "TF-01", patient_ref=P2,
              programme="methadone", residence_commune="C-01"),
        event("patient.take_home_approved", "2024-02-15T08:00:00+07:00", "TF-01",
              patient_ref=P2, max_days=7),
        event(enrol, "2024-02-20T09:00:00+07:00", "CHS-01", patient_ref=P3,
              programme="community_detox", residence_commune="C-02"),
        event("stock.counted", "2024-03-01T07:00:00+07:00", "TF-01", item="MET10",
              quantity_on_hand=1000),
        observed_p1,
        dose("2024-03-01T08:10:00+07:00", "TF-01", P2, 60, days=3),
        event("stock.received", "2024-03-01T09:00:00+07:00", "CHS-01", item="KIT-MOR",
              quantity=50),
        event("stock.counted", "2024-03-02T06:00:00+07:00", "DP-01", item="MET10",
              quantity_on_hand=200),
        dose("2024-03-02T07:30:00+07:00", "DP-01", P1, 80),
        event("stock.received", "2024-03-02T09:00:00+07:00", "TF-01", item="MET10",
              quantity=500),
        event("test.performed", "2024-03-02T10:00:00+07:00", "CHS-01", item="KIT-MOR",
              purpose="screening", results={"opiates": "positive", "cannabis": "negative"}),
        # Sent late: a receipt before the count, which the count already includes.
        event("stock.received", "2024-03-01T06:00:00+07:00", "TF-01", item="MET10",
              quantity=500),
        observed_p1,  # the same event again
    ]  # fmt: skip


EXPECTED_STOCK = [
    # DP-01: count 200, then one 80 mg dose (8 ml); first use that day → average over 1 day.
    {"facility_id": "CHS-01", "item": "KIT-MOR", "unit": "kit", "on_hand": 49.0,
     "avg_daily_use": 1.0, "days_of_supply": 49.0},
    {"facility_id": "DP-01", "item": "MET10", "unit": "ml", "on_hand": 192.0,
     "avg_daily_use": 8.0, "days_of_supply": 24.0},
    # TF-01: count 1000 − 8 ml − 18 ml (60 mg × 3 days) + 500 received; the late receipt
    # before the count is not added. 26 ml used over 2 days since the first use.
    {"facility_id": "TF-01", "item": "MET10", "unit": "ml", "on_hand": 1474.0,
     "avg_daily_use": 13.0, "days_of_supply": round(1474 / 13, 6)},
]  # fmt: skip

EXPECTED_DISPENSING = [
    {"facility_id": "DP-01", "date": "2024-03-02", "patients_dosed": 1, "observed_doses": 1,
     "take_home_handouts": 0, "mg_observed": 80.0, "mg_take_home": 0.0},
    {"facility_id": "TF-01", "date": "2024-03-01", "patients_dosed": 2, "observed_doses": 1,
     "take_home_handouts": 1, "mg_observed": 80.0, "mg_take_home": 180.0},
]  # fmt: skip

EXPECTED_PATIENTS = [
    {"facility_id": "CHS-01", "programme": "community_detox", "active": 1,
     "take_home_approved": 0},
    {"facility_id": "TF-01", "programme": "methadone", "active": 2, "take_home_approved": 1},
]  # fmt: skip

EXPECTED_TARGETS = [
    # DHC-01 rolls up TF-01, its dispensing point DP-01 and CHS-01.
    {"facility_id": "DHC-01", "year": 2024, "routine_target": 120, "routine_actual": 1,
     "take_home_target": 40, "take_home_actual": 1, "community_detox_target": 15,
     "community_detox_actual": 1},
    {"facility_id": "TF-02", "year": 2024, "routine_target": 80, "routine_actual": 0,
     "take_home_target": None, "take_home_actual": 0, "community_detox_target": None,
     "community_detox_actual": 0},
]  # fmt: skip

EXPECTED_TESTS = [{"facility_id": "CHS-01", "month": "2024-03", "tests": 1,
                   "positive": {"opiates": 1}}]  # fmt: skip


def all_reports(stack: RunningStack) -> dict[str, Any]:
    return {
        name: stack.json("report", name)
        for name in ("stock", "dispensing", "patients", "targets", "tests")
    }


def test_reports_answer_as_computed_by_hand(tmp_path: Path) -> None:
    stack = RunningStack(tmp_path / "data")
    stack.start()
    try:
        stack.cli("registry", "load", str(FIXTURES / "registry"))
        path = tmp_path / "day.jsonl"
        path.write_bytes(b"\n".join(orjson.dumps(e) for e in scenario()) + b"\n")
        assert stack.ingest(path) == {"accepted": 13, "rejected": 0, "duplicates": 1}

        reports = all_reports(stack)
        assert reports == {
            "stock": EXPECTED_STOCK,
            "dispensing": EXPECTED_DISPENSING,
            "patients": EXPECTED_PATIENTS,
            "targets": EXPECTED_TARGETS,
            "tests": EXPECTED_TESTS,
        }

        # As of 08:05 on 1 March: only the count and P1's observed dose had happened.
        early = "2024-03-01T08:05:00+07:00"
        assert stack.json("report", "stock", "--as-of", early) == [
            {"facility_id": "TF-01", "item": "MET10", "unit": "ml", "on_hand": 992.0,
             "avg_daily_use": 8.0, "days_of_supply": 124.0},
        ]  # fmt: skip
        assert stack.json("report", "dispensing", "--as-of", early) == [
            {"facility_id": "TF-01", "date": "2024-03-01", "patients_dosed": 1,
             "observed_doses": 1, "take_home_handouts": 0, "mg_observed": 80.0,
             "mg_take_home": 0.0},
        ]  # fmt: skip
        # The same instant written in UTC is the same T.
        assert stack.json("report", "stock", "--as-of", "2024-03-01T01:05:00Z") == stack.json(
            "report", "stock", "--as-of", early
        )

        # Filters: a unit and everything below it; one facility and one day.
        under = stack.json("report", "dispensing", "--under", "TF-01")
        assert under == EXPECTED_DISPENSING
        one_day = stack.json("report", "dispensing", "--facility", "TF-01", "--from", "2024-03-02")
        assert one_day == []
        assert stack.json("report", "stock", "--district", "Lục Ngạn", "--item", "KIT-MOR") == [
            EXPECTED_STOCK[0]
        ]

        table = stack.cli("report", "stock")
        assert "Tồn kho / Stock on hand" in table.stdout and "TF-01" in table.stdout
        wrong = stack.cli("report", "stock", "--facility", "NOPE", check=False)
        assert wrong.returncode != 0
        assert "unknown facility 'NOPE'" in wrong.stderr and len(wrong.stderr.splitlines()) == 1

        # The aggregates are durable: a restarted stack, then no stack at all, agree.
        stack.stop()
        stack.start()
        assert all_reports(stack) == reports
    finally:
        stack.stop()
    assert all_reports(stack) == reports
