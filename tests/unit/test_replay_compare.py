"""How `replay --verify` compares two answers of a report: row by row on the report's key,
field by field, floats equal within rounding noise only."""

from __future__ import annotations

from sinks.replay import Difference, compare_reports

STOCK = {"facility_id": "TF-01", "item": "MET10", "unit": "ml", "on_hand": 1474.0,
         "avg_daily_use": 13.0, "days_of_supply": 113.384615}  # fmt: skip


def test_equal_answers_have_no_differences() -> None:
    noisy = {**STOCK, "on_hand": 1474.0 + 1e-9}
    assert compare_reports("stock", [STOCK], [noisy]) == []


def test_a_changed_field_is_named_with_both_values() -> None:
    replayed = {**STOCK, "on_hand": 1473.0, "days_of_supply": None}
    assert compare_reports("stock", [STOCK], [replayed]) == [
        Difference("report stock", {"facility_id": "TF-01", "item": "MET10"},
                   "days_of_supply", 113.384615, None),
        Difference("report stock", {"facility_id": "TF-01", "item": "MET10"},
                   "on_hand", 1474.0, 1473.0),
    ]  # fmt: skip


def test_a_row_on_one_side_only() -> None:
    other = {**STOCK, "facility_id": "DP-01"}
    assert compare_reports("stock", [STOCK], [other]) == [
        Difference("report stock", {"facility_id": "DP-01", "item": "MET10"},
                   "(row)", "missing", "present"),
        Difference("report stock", {"facility_id": "TF-01", "item": "MET10"},
                   "(row)", "present", "missing"),
    ]  # fmt: skip
