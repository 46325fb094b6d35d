"""The audit's pure parts: the ledger's month and fold, the printed documents, the chain's
link rule and how a compared event becomes findings."""

from __future__ import annotations

import csv
import hashlib
import io
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from click.testing import CliRunner

from infra.cli import main
from infra.ledger_doc import ledger_csv, ledger_html
from sinks.archive_columns import ARCHIVE_COLUMNS, CHAINED_COLUMNS
from sinks.chain import ZERO_HASH, compare_findings, link
from sinks.ledger import ItemCard, LedgerError, Month


def test_month_bounds_are_local_and_to_the_millisecond() -> None:
    february = Month.parse("2024-02")
    assert (february.first_day, february.last_day) == (date(2024, 2, 1), date(2024, 2, 29))
    assert february.starts.isoformat() == "2024-02-01T00:00:00+07:00"
    assert february.ends.isoformat(timespec="milliseconds") == "2024-02-29T23:59:59.999+07:00"
    assert Month.parse("2024-12").last_day == date(2024, 12, 31)
    for bad in ("2024-13", "2024-3", "March", ""):
        with pytest.raises(LedgerError):
            Month.parse(bad)


def row(event_type: str, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "event_type": event_type,
        "reason": "",
        "occurred_at": datetime(2024, 3, 5, 1, tzinfo=UTC),
        "event_key": "e",
        "quantity": 0.0,
        "quantity_delta": 0.0,
        "quantity_on_hand": 0.0,
        "dose_mg": 0.0,
        "take_home_days": 1,
    }
    return base | fields


def test_the_fold_keeps_decimal_figures_exact() -> None:
    card = ItemCard("MET10", Decimal(10), Decimal("0.3"))
    for _ in range(3):
        card.apply(row("stock.received", quantity=0.1))
    card.apply(row("dose.dispensed", dose_mg=1, take_home_days=3))  # 0.3 ml
    card.apply(row("stock.adjusted", quantity_delta=-0.2, reason="spillage"))
    card.apply(row("stock.adjusted", quantity_delta=0.7, reason="count_correction"))
    card.apply(row("stock.counted", quantity_on_hand=1.0))
    figures = card.as_dict()
    # 0.3 + 0.3 − 0.3 − 0.2 + 0.7 = 0.8 before the count (floats would say 0.7999999…).
    assert figures["counts"][0]["computed_on_hand"] == 0.8
    assert (figures["count_differences"], figures["closing_balance"]) == (0.2, 1.0)
    assert (figures["received"], figures["used_doses"], figures["loss_spillage"]) == (
        0.3,
        0.3,
        -0.2,
    )
    assert figures["count_corrections"] == 0.7 and figures["balanced"]
    assert (figures["doses"], figures["dose_mg"]) == (1, 3.0)


DOCUMENT: dict[str, Any] = {
    "facility_id": "TF-01",
    "facility_name": "Cơ sở điều trị Methadone <Lục Ngạn>",
    "district": "Lục Ngạn",
    "province": "Bắc Giang",
    "month": "2024-03",
    "period_from": "2024-03-01T00:00:00+07:00",
    "period_to": "2024-03-31T23:59:59.999+07:00",
    "generated_at": "2024-04-02T01:00:00+00:00",
    "chain_head": {"position": 41, "hash": "ab" * 32},
    "items": [
        {
            "item": "MET10",
            "item_name": "Methadone 10 mg/ml",
            "kind": "medication",
            "unit": "ml",
            "mg_per_unit": 10.0,
            "opening_balance": 1234.5,
            "received": 500.0,
            "used_doses": 41.0,
            "used_tests": 0.0,
            "loss_spillage": -2.5,
            "loss_breakage": 0.0,
            "loss_expired": 0.0,
            "loss_other": 0.0,
            "transfer_in": 0.0,
            "transfer_out": -50.0,
            "count_corrections": 0.0,
            "count_differences": -1.25,
            "closing_balance": 1639.75,
            "balanced": True,
            "doses": 6,
            "dose_mg": 410.0,
            "tests": 0,
            "counts": [
                {
                    "event_id": "11111111-1111-4111-8111-111111111111",
                    "occurred_at": "2024-03-15T07:00:00+07:00",
                    "counted": 1600.0,
                    "computed_on_hand": 1601.25,
                    "difference": -1.25,
                }
            ],
            "stock_report_on_hand": 1639.75,
            "reconciles": True,
        }
    ],
}


def test_csv_has_one_row_per_item_with_every_line() -> None:
    [only] = list(csv.DictReader(io.StringIO(ledger_csv(DOCUMENT))))
    assert only["facility_id"] == "TF-01" and only["item"] == "MET10"
    assert (only["opening_balance"], only["transfer_out"], only["closing_balance"]) == (
        "1234.5",
        "-50.0",
        "1639.75",
    )
    assert (only["counts"], only["reconciles"]) == ("1", "True")


def test_html_is_a_bilingual_stock_card_with_signatures() -> None:
    page = ledger_html(DOCUMENT)
    assert "&lt;Lục Ngạn&gt;" in page and "<Lục Ngạn>" not in page  # escaped
    for text in (
        "Tồn đầu kỳ",
        "Opening balance",
        "1.234,5",  # Vietnamese digit grouping
        "−41",  # used, taken away
        "−1,25",
        "1.639,75",
        "15/03/2024 07:00:00",
        "Người lập biểu",
        "Thủ trưởng đơn vị",
        "ab" * 32,
    ):
        assert text in page, text


def test_the_chain_covers_every_archive_column() -> None:
    # A new archive column is a conscious choice: chained rows keep the format they had.
    assert CHAINED_COLUMNS == ARCHIVE_COLUMNS


def test_a_link_hashes_the_previous_link_and_the_content() -> None:
    content = hashlib.sha256(b"row").digest()
    assert link(ZERO_HASH, content) == hashlib.sha256(bytes(32) + content).digest()
    assert link(link(ZERO_HASH, content), content) != link(ZERO_HASH, content)


H1, H2 = b"\x01" * 32, b"\x02" * 32


@pytest.mark.parametrize(
    ("archive", "chain", "expected"),
    [
        ((1, [H1]), (1, [7], H1), []),
        ((0, []), (1, [7], H1), [("deleted", 7)]),
        ((1, [H1]), (0, [], ZERO_HASH), [("inserted", None)]),
        ((1, [H2]), (1, [7], H1), [("changed", 7)]),
        ((2, [H1]), (1, [7], H1), [("duplicated", 7)]),
        ((2, [H1, H2]), (1, [7], H1), [("duplicated", 7), ("changed", 7)]),
        ((1, [H1]), (2, [9, 7], H1), [("chained_twice", 7)]),
    ],
)
def test_each_mismatch_is_named(
    archive: tuple[int, list[bytes]],
    chain: tuple[int, list[int], bytes],
    expected: list[tuple[str, int | None]],
) -> None:
    findings = compare_findings("TF-01", "e-1", archive[0], archive[1], *chain)
    assert [(f.problem, f.position) for f in findings] == expected
    assert all(f.facility_id == "TF-01" and f.event_id == "e-1" and f.detail for f in findings)


@pytest.mark.parametrize("command", [["audit", "ledger"], ["audit", "verify"]])
def test_audit_help_names_the_data_dir_environment_variable(command: list[str]) -> None:
    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0
    assert "OSTWATCH_DATA_DIR" in result.output
