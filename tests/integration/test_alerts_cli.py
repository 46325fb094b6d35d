"""Alerts through the real stack: `ostwatch ingest` returns with its alerts already judged,
`report alerts` gives the contract's fields, `--as-of` judges afresh, `alerts ack` resolves
an incident, the changes are on the alerts topic, and all of it survives a restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka import KafkaConsumer

from infra.stack import StackInfo
from schemas.alerts import AlertChange
from tests.integration.conftest import FIXTURES, RunningStack
from tests.support.events import contract_event

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

CONTRACT_FIELDS = {"alert_id", "kind", "severity", "facility_id", "subject", "raised_at",
                   "status", "message"}  # fmt: skip
PATIENT = "pat-cli-alert-01"


def dose(at: str, facility_id: str, **mode: Any) -> dict[str, Any]:
    return contract_event("dose.dispensed", at, facility_id, patient_ref=PATIENT, item="MET10",
                          dose_mg=80, **(mode or {"mode": "observed"}))  # fmt: skip


def events() -> list[dict[str, Any]]:
    return [
        contract_event("stock.counted", "2024-03-01T06:00:00+07:00", "TF-01", item="MET10",
                       quantity_on_hand=2000),
        contract_event("patient.enrolled", "2024-03-01T07:00:00+07:00", "TF-01",
                       patient_ref=PATIENT, programme="methadone", residence_commune="C-07"),
        dose("2024-03-01T08:00:00+07:00", "TF-01"),
        dose("2024-03-01T11:00:00+07:00", "DP-01"),  # twice on one day, at its dispensing point
        dose("2024-03-02T08:00:00+07:00", "TF-01", mode="take_home", take_home_days=3),
    ]  # fmt: skip


def by_kind(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        found.setdefault(row["kind"], []).append(row)
    return found


def test_alerts_end_to_end(tmp_path: Path) -> None:
    stack = RunningStack(tmp_path / "data")
    stack.start()
    try:
        stack.cli("registry", "load", str(FIXTURES / "registry"))
        path = tmp_path / "alerts.jsonl"
        path.write_bytes(b"\n".join(orjson.dumps(e) for e in events()) + b"\n")
        assert stack.ingest(path)["accepted"] == 5

        rows = stack.json("report", "alerts")
        assert all(row.keys() >= CONTRACT_FIELDS for row in rows)
        kinds = by_kind(rows)
        (double,) = kinds["double_dosing"]
        assert (double["subject"], double["facility_id"], double["status"]) == (
            PATIENT, "DP-01", "open"
        )  # fmt: skip
        (take_home,) = kinds["take_home_violation"]  # no approval for the 3-day handout
        assert take_home["severity"] == "critical"
        (notice,) = kinds["commune_notification"]
        assert notice["details"]["commune"] == "C-07"
        assert "inactive_patient_dosed" not in kinds and "stock_low" not in kinds
        # Deadlines are judged against the wall clock: March 2024's reports are long overdue.
        overdue = {r["facility_id"] for r in kinds["report_overdue"]
                   if r["subject"] == "methadone_monthly/2024-03"}  # fmt: skip
        assert overdue == {"DHC-01", "DHC-02"}

        # As of the morning of 1 March only the enrolment's notification existed.
        early = stack.json("report", "alerts", "--as-of", "2024-03-01T09:00:00+07:00")
        assert [r["kind"] for r in early] == ["commune_notification"]

        acked = stack.json("alerts", "ack", double["alert_id"], "--note", "kiểm tra sổ")
        assert acked["acknowledged"] == 1
        (change,) = acked["changes"]
        assert (change["change"], change["alert"]["status"]) == ("resolved", "resolved")
        # Bulk: every open notice of commune C-07 raised before April, with one note.
        bulk = ["alerts", "ack", "--kind", "commune_notification", "--commune", "C-07"]
        told = stack.json(*bulk, "--before", "2024-04-01", "--note", "đã gửi công văn")
        assert (told["acknowledged"], told["changes"][0]["alert"]["alert_id"]) == (
            1,
            notice["alert_id"],
        )
        assert stack.json(*bulk)["acknowledged"] == 0
        assert "0 alert(s) acknowledged" in stack.cli(*bulk).stdout
        nothing = stack.cli("alerts", "ack", "--note", "all?", check=False)
        assert nothing.returncode != 0 and "name the alerts" in nothing.stderr
        open_now = stack.json("alerts")
        assert double["alert_id"] not in {r["alert_id"] for r in open_now}
        assert all(r["status"] == "open" for r in open_now)
        missing = stack.cli("alerts", "ack", "no-such-alert", check=False)
        assert missing.returncode != 0 and len(missing.stderr.splitlines()) == 1

        info = StackInfo.read(stack.data_dir)
        assert info is not None
        consumer = KafkaConsumer(
            "ostwatch.alerts",
            bootstrap_servers=info.bootstrap,
            auto_offset_reset="earliest",
            consumer_timeout_ms=5000,
        )
        changes = [AlertChange.from_bytes(message.value) for message in consumer]
        consumer.close()
        published = {(c.alert.alert_id, c.sequence) for c in changes}
        assert (double["alert_id"], 1) in published and (double["alert_id"], 2) in published
        assert (notice["alert_id"], 2) in published  # the bulk acknowledgement, published
        assert (take_home["alert_id"], 1) in published

        stack.stop()
        stack.start()
        after = {r["alert_id"]: r["status"] for r in stack.json("report", "alerts")}
        assert after[double["alert_id"]] == "resolved"
        assert after[take_home["alert_id"]] == "open"
        table = stack.cli("alerts")
        assert "Cảnh báo / Alerts" in table.stdout
    finally:
        stack.stop()
