"""Reports as files (infra/exports.py, infra/monthly_doc.py): CSV and xlsx lay the JSON rows
out without changing a figure; the printable monthly report carries the unit, the period,
both languages and the signature lines, with every value escaped."""

from __future__ import annotations

import csv
import io
from typing import Any

import openpyxl

from infra.exports import (
    csv_text,
    monthly_csv_files,
    monthly_workbook,
    report_sheet,
    workbook_bytes,
)
from infra.monthly_doc import monthly_html
from tests.unit.test_dhis2 import document


def read_book(data: bytes) -> dict[str, list[tuple[Any, ...]]]:
    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
    return {sheet.title: list(sheet.iter_rows(values_only=True)) for sheet in book.worksheets}


TESTS_ROWS = [
    {"facility_id": "CHS-01", "month": "2024-03", "tests": 3, "positive": {"opiates": 2}},
    {"facility_id": "TF-01", "month": "2024-03", "tests": 1, "positive": {}},
]


def test_nested_counts_become_columns_and_absent_counts_zero() -> None:
    sheet = report_sheet("tests", TESTS_ROWS)
    assert sheet.columns == ("facility_id", "month", "tests", "positive.opiates")
    assert [row["positive.opiates"] for row in sheet.rows] == [2, 0]
    lines = list(csv.reader(io.StringIO(csv_text(sheet))))
    assert lines == [
        ["facility_id", "month", "tests", "positive.opiates"],
        ["CHS-01", "2024-03", "3", "2"],
        ["TF-01", "2024-03", "1", "0"],
    ]


def test_a_workbook_has_vietnamese_labels_field_names_and_numbers() -> None:
    rows = [
        {"facility_id": "TF-01", "item": "MET10", "on_hand": 12.5, "days_of_supply": None},
        {"facility_id": "TF-02", "item": "MET10", "on_hand": 3.0, "days_of_supply": 2.5},
    ]
    sheets = read_book(workbook_bytes([report_sheet("stock", rows)]))
    table = sheets["stock"]
    assert table[0] == ("Mã cơ sở", "Mặt hàng", "Tồn kho", "Đủ dùng (ngày)")
    assert table[1] == ("facility_id", "item", "on_hand", "days_of_supply")
    assert table[2] == ("TF-01", "MET10", 12.5, None)
    assert table[3][2] == 3 and not isinstance(table[3][2], str)  # a number, not text
    assert table[3][3] == 2.5


def test_the_monthly_report_as_csv_files_and_a_workbook() -> None:
    doc = document()
    files = monthly_csv_files(doc)
    assert sorted(files) == [f"{n}.csv" for n in sorted(
        ("patients", "dispensing", "stock", "tests", "timeliness"))]  # fmt: skip
    patients = list(csv.DictReader(io.StringIO(files["patients.csv"])))
    assert patients[0]["discharged.self_terminated"] == "1"
    assert patients[0]["discharged.completed"] == "0"  # every outcome has its column
    assert list(patients[0])[:3] == ["facility_id", "programme", "active_start"]
    sheets = read_book(monthly_workbook(doc))
    assert list(sheets) == ["patients", "dispensing", "stock", "tests", "timeliness"]
    stock = sheets["stock"]
    assert stock[0][:3] == ("Mã cơ sở", "Tên cơ sở", "Mặt hàng")
    header = stock[1]
    row = dict(zip(header, stock[2], strict=True))
    assert row["facility_name"] == "CSĐT"
    assert row["closing"] == 991.749999 and row["count_difference"] == -1e-6
    assert sheets["timeliness"][2][header.index("facility_id")] == "DHC-01"
    assert sheets["patients"][1][:2] == ("facility_id", "facility_name")


def test_the_printable_report_names_the_unit_period_and_signatures() -> None:
    doc = document()
    doc["units"][0]["name"] = "TTYT <script>alert(1)</script>"
    page = monthly_html(doc)
    assert "size: A4" in page
    assert "BÁO CÁO KẾT QUẢ THÁNG 03/2024" in page and "Monthly report, March 2024" in page
    assert "TTYT &lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>" not in page
    for heading in ("Người bệnh theo chương trình", "Patients by programme", "Stock ledger"):
        assert heading in page
    assert page.count("Thủ trưởng đơn vị") == 1  # one top unit, one signature block
    assert "991,749999" in page  # Vietnamese decimals, the exact figure
    assert "Tự ý chấm dứt 1" in page
