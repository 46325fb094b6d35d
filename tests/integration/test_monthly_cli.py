"""`ostwatch report monthly`, the csv/xlsx exports of every report and `export dhis2`, through
the real stack (the commands reach the worker over its API), on a small November 2022 of the
fixture registry — a month no other test uses, so the shared stack's other data cannot reach
its figures.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from tests.integration.conftest import RunningStack
from tests.support.events import contract_event as event

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

UID = re.compile(r"^[A-Za-z][A-Za-z0-9]{10}$")
P1, P2 = "pat-mcli-0001", "pat-mcli-0002"
MAPPING = """kind,code,uid,category_option_combo
org_unit,TF-01,OuTf01xxxxx,
org_unit,DP-01,OuDp01xxxxx,
data_element,patients.methadone.active_end,DePatEnd000,CoMethadone
data_element,patients.methadone.enrolled,DePatEnr000,CoMethadone
data_element,dispensing.MET10.mg_observed,DeMgObs0000,CoMet100000
"""


def november() -> list[dict[str, Any]]:
    return [
        event("patient.enrolled", "2022-10-20T08:00:00+07:00", "TF-01", patient_ref=P1,
              programme="methadone", residence_commune="C-01"),
        event("patient.enrolled", "2022-11-03T08:00:00+07:00", "TF-01", patient_ref=P2,
              programme="methadone", residence_commune="C-01"),
        event("stock.received", "2022-10-25T08:00:00+07:00", "TF-01", item="MET10",
              quantity=500),
        event("dose.dispensed", "2022-11-04T08:00:00+07:00", "TF-01", patient_ref=P1,
              item="MET10", dose_mg=70, mode="observed"),
        event("dose.dispensed", "2022-11-04T09:00:00+07:00", "DP-01", patient_ref=P2,
              item="MET10", dose_mg=50, mode="observed"),
        event("stock.counted", "2022-11-30T17:00:00+07:00", "TF-01", item="MET10",
              quantity_on_hand=490),
        event("test.performed", "2022-11-10T08:00:00+07:00", "CHS-01", item="KIT-MOR",
              purpose="screening", results={"opiates": "positive"}),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def loaded(stack: RunningStack, tmp_path_factory: pytest.TempPathFactory) -> RunningStack:
    path = tmp_path_factory.mktemp("monthly") / "november.jsonl"
    path.write_text("\n".join(json.dumps(doc) for doc in november()) + "\n", encoding="utf-8")
    assert stack.ingest(path)["accepted"] == len(november())
    return stack


def monthly(stack: RunningStack, *args: str) -> Any:
    return stack.json("report", "monthly", "--period", "2022-11", *args)


def test_json_document_with_names_and_identities(loaded: RunningStack) -> None:
    document = monthly(loaded, "--unit", "DHC-01")
    assert document["period"] == "2022-11" and document["unit"] == "DHC-01"
    assert document["units"][0]["name"] == "Trung tâm Y tế huyện Lục Ngạn"
    patients = {(r["facility_id"], r["programme"]): r for r in document["patients"]}
    tf = patients[("TF-01", "methadone")]
    assert (tf["active_start"], tf["enrolled"], tf["active_end"]) == (1, 1, 2)
    stock = {(r["facility_id"], r["item"]): r for r in document["stock"]}
    ledger = stock[("TF-01", "MET10")]
    # 500 received; 7 ml (TF-01) + 5 ml (DP-01, below TF-01) used; counted 490 at TF-01,
    # where 493 was computed: −3. DP-01 ends at −5, so TF-01's roll-up closes at 485.
    assert (ledger["opening"], ledger["used"], ledger["count_difference"], ledger["closing"]) == (
        500.0, 12.0, -3.0, 485.0,
    )  # fmt: skip


def test_csv_writes_one_file_per_list(loaded: RunningStack, tmp_path: Path) -> None:
    loaded.cli("report", "monthly", "--period", "2022-11", "--format", "csv", "--out",
               str(tmp_path / "csv"))  # fmt: skip
    files = sorted(p.name for p in (tmp_path / "csv").iterdir())
    assert files == ["dispensing.csv", "patients.csv", "stock.csv", "tests.csv", "timeliness.csv"]
    rows = list(csv.DictReader((tmp_path / "csv" / "dispensing.csv").open(encoding="utf-8")))
    tf = next(r for r in rows if r["facility_id"] == "TF-01")
    assert (tf["patients_dosed"], tf["mg_observed"]) == ("2", "120.0")
    refused = loaded.cli("report", "monthly", "--period", "2022-11", "--format", "csv",
                         check=False)  # fmt: skip
    assert refused.returncode != 0
    assert refused.stderr.strip().count("\n") == 0 and "--out" in refused.stderr


def test_xlsx_and_html_files(loaded: RunningStack, tmp_path: Path) -> None:
    book_path, page_path = tmp_path / "m.xlsx", tmp_path / "m.html"
    loaded.cli("report", "monthly", "--period", "2022-11", "--format", "xlsx", "--out",
               str(book_path))  # fmt: skip
    book = openpyxl.load_workbook(book_path, read_only=True)
    assert book.sheetnames == ["patients", "dispensing", "stock", "tests", "timeliness"]
    tests = list(book["tests"].iter_rows(values_only=True))
    assert tests[0][0] == "Mã cơ sở" and tests[1][0] == "facility_id"
    assert any(row[0] == "CHS-01" and 1 in row for row in tests[2:])
    loaded.cli("report", "monthly", "--period", "2022-11", "--unit", "DHC-01", "--format",
               "html", "--out", str(page_path))  # fmt: skip
    page = page_path.read_text(encoding="utf-8")
    assert "Trung tâm Y tế huyện Lục Ngạn" in page and "THÁNG 11/2022" in page
    assert "Người lập biểu" in page and "Thủ trưởng đơn vị" in page


def test_every_report_exports_csv_and_xlsx(loaded: RunningStack, tmp_path: Path) -> None:
    text = loaded.cli("report", "stock", "--facility", "TF-01", "--format", "csv").stdout
    header = next(csv.reader(io.StringIO(text)))
    assert header[:3] == ["facility_id", "item", "unit"]
    for name in ("stock", "dispensing", "patients", "tests", "targets", "alerts", "rejected"):
        out = tmp_path / f"{name}.xlsx"
        loaded.cli("report", name, "--format", "xlsx", "--out", str(out))
        sheet = openpyxl.load_workbook(out, read_only=True).worksheets[0]
        assert sheet.title == name
    by_purpose = loaded.cli(
        "report", "tests", "--by", "purpose", "--facility", "CHS-01", "--from", "2022-11-01",
        "--to", "2022-11-30", "--format", "csv",
    ).stdout  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(by_purpose)))
    assert [(r["purpose"], r["tests"], r["positive.opiates"]) for r in rows] == [
        ("screening", "1", "1")
    ]


def test_dhis2_data_value_set(loaded: RunningStack, tmp_path: Path) -> None:
    mapping = tmp_path / "mapping.csv"
    mapping.write_text(MAPPING, encoding="utf-8")
    unmapped = tmp_path / "unmapped.json"
    result = loaded.cli(
        "export", "dhis2", "--period", "2022-11", "--mapping", str(mapping), "--unit", "DHC-01",
        "--unmapped", str(unmapped),
    )  # fmt: skip
    values = json.loads(result.stdout)["dataValues"]
    assert {
        (v["orgUnit"], v["dataElement"], v.get("categoryOptionCombo"), v["value"]) for v in values
    } == {
        ("OuTf01xxxxx", "DePatEnd000", "CoMethadone", "2"),
        ("OuTf01xxxxx", "DePatEnr000", "CoMethadone", "1"),
        ("OuTf01xxxxx", "DeMgObs0000", "CoMet100000", "120"),
        ("OuDp01xxxxx", "DeMgObs0000", "CoMet100000", "50"),
    }
    for value in values:
        assert UID.match(value["dataElement"]) and UID.match(value["orgUnit"])
        assert value["period"] == "202211"
    left_out = json.loads(unmapped.read_text(encoding="utf-8"))
    assert {"facility_id": "DHC-01", "mapped_above": None, "mapped_below": ["DP-01", "TF-01"]} in (
        left_out["facilities"]
    )
    assert "not exported (no org unit): CHS-01" in result.stderr
    assert "not exported (no data element): stock.MET10.closing" in result.stderr
