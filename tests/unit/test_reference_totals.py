"""Printed totals in targets.csv: parsed apart from the targets, checked against the rows."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from producers.simulator import build_province, write_registry
from schemas.reference import (
    REGISTRY_FILES,
    PrintedTotal,
    RegistryError,
    RegistrySnapshot,
    TotalMismatch,
    derive_totals,
    is_total_marker,
    parse_registry_dir,
    parse_registry_texts,
    target_total_mismatches,
    total_mismatches,
)
from tests.fixtures.contract_cases import REGISTRY_DIR

SEED_APPENDIX = (
    Path(__file__).resolve().parents[2]
    / "producers"
    / "simulator"
    / "data"
    / "bac_giang_targets_2024.csv"
)
# What seed 001 prints under its appendix table (data/README.md).
SEED_PRINTED = {
    "routine_2023": 1352,
    "routine_target_2024": 1450,
    "take_home_2023": 273,
    "take_home_target_2024": 652,
    "community_detox_2023": 53,
    "community_detox_target_2024": 150,
}

HEADER = "facility_id,year,routine_target,take_home_target,community_detox_target"


def _texts(targets: str) -> dict[str, str]:
    texts = {file: (REGISTRY_DIR / file).read_text(encoding="utf-8") for file in REGISTRY_FILES}
    return texts | {"targets.csv": targets}


def _targets(*rows: str) -> str:
    # The fixture's unit rows: DHC-01 2024 120,40,15 and TF-02 2024 80,,
    return "\n".join([HEADER, "DHC-01,2024,120,40,15", "TF-02,2024,80,,", *rows]) + "\n"


def _snapshot(*rows: str) -> RegistrySnapshot:
    return parse_registry_texts(_texts(_targets(*rows)))


def _problems(*rows: str) -> tuple[str, ...]:
    with pytest.raises(RegistryError) as caught:
        parse_registry_texts(_texts(_targets(*rows)))
    return caught.value.problems


# --------------------------------------------------------------------------------------------
# Parsing the totals row.


@pytest.mark.parametrize(
    "marker", ["TOTAL", "total", "Total", "Tổng", "TỔNG", "Tổng cộng", "tổng  CỘNG", ""]
)
def test_a_totals_row_is_a_printed_total_not_a_target(marker: str) -> None:
    snapshot = _snapshot(f"{marker},2024,200,40,15")
    assert [t.facility_id for t in snapshot.targets] == ["DHC-01", "TF-02"]
    assert snapshot.printed_totals == (PrintedTotal(2024, 200, 40, 15, line=4),)


def test_markers_are_recognised_in_decomposed_unicode() -> None:
    assert is_total_marker("To\u0302\u0309ng co\u0323\u0302ng")  # "Tổng cộng", NFD
    assert not is_total_marker("DHC-01")
    assert not is_total_marker("TOTALS")


def test_totals_cells_may_be_empty() -> None:
    snapshot = _snapshot("TOTAL,2024,,40,")
    assert snapshot.printed_totals == (PrintedTotal(2024, None, 40, None, line=4),)
    assert target_total_mismatches(snapshot) == []


def test_one_totals_row_per_year() -> None:
    snapshot = _snapshot("TOTAL,2024,200,,", "Tổng,2025,1,,")
    assert [(t.year, t.line) for t in snapshot.printed_totals] == [(2024, 4), (2025, 5)]
    problems = _problems("TOTAL,2024,200,,", "Tổng cộng,2024,201,,")
    assert problems == ("targets.csv:5: year: totals for 2024 already on line 4",)


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ("TOTAL,2024,-1,,", "targets.csv:4: routine_target: must be a whole number >= 0"),
        ("TOTAL,2024,,1.5,", "targets.csv:4: take_home_target: must be a whole number >= 0"),
        ('TOTAL,2024,"1,352",,', "targets.csv:4: routine_target: must be a whole number"),
        ("TOTAL,2024,,,many", "targets.csv:4: community_detox_target: must be a whole number"),
        ("TOTAL,24,1,,", "targets.csv:4: year: must be a 4-digit year"),
    ],
    ids=["negative", "fraction", "thousands-comma", "text", "short-year"],
)
def test_totals_row_numbers_are_checked_like_targets(row: str, expected: str) -> None:
    problems = _problems(row)
    assert len(problems) == 1 and problems[0].startswith(expected), problems


def test_a_facility_called_total_stays_a_unit() -> None:
    texts = _texts(_targets("TOTAL,2024,1,2,3"))
    texts["facilities.csv"] += "TOTAL,Odd name,treatment_facility,DHC-01,,\n"
    snapshot = parse_registry_texts(texts)
    assert snapshot.targets[-1].facility_id == "TOTAL"
    assert snapshot.printed_totals == ()


def test_fixture_registry_has_no_printed_totals() -> None:
    snapshot = parse_registry_dir(REGISTRY_DIR)
    assert snapshot.printed_totals == ()
    assert target_total_mismatches(snapshot) == []


# --------------------------------------------------------------------------------------------
# Deriving totals and comparing.


def test_no_mismatch_when_printed_totals_agree() -> None:
    assert target_total_mismatches(_snapshot("TOTAL,2024,200,40,15")) == []


def test_mismatch_names_year_column_numbers_and_line() -> None:
    snapshot = _snapshot("TOTAL,2024,201,40,15")
    [mismatch] = target_total_mismatches(snapshot)
    assert mismatch == TotalMismatch("routine_target", 201, 200, year=2024, line=4)
    assert mismatch.difference == 1
    assert mismatch.as_dict() == {
        "year": 2024,
        "column": "routine_target",
        "printed": 201,
        "derived": 200,
        "difference": 1,
        "line": 4,
    }
    assert mismatch.message.startswith("targets.csv:4: routine_target: printed total for 2024")


def test_only_rows_of_the_totals_year_are_summed() -> None:
    snapshot = _snapshot("DHC-01,2025,7,,", "TOTAL,2025,7,,", "TOTAL,2024,200,41,")
    [mismatch] = target_total_mismatches(snapshot)
    assert (mismatch.year, mismatch.column, mismatch.printed, mismatch.derived) == (
        2024,
        "take_home_target",
        41,
        40,
    )


def test_derived_total_is_none_when_no_row_has_a_value() -> None:
    assert derive_totals([{"a": None}, {"a": None, "b": 0}], ("a", "b")) == {"a": None, "b": 0}
    snapshot = _snapshot("DHC-01,2025,,,", "TOTAL,2025,,,9")
    [mismatch] = target_total_mismatches(snapshot)
    assert (mismatch.column, mismatch.printed, mismatch.derived) == (
        "community_detox_target",
        9,
        None,
    )
    assert mismatch.difference is None
    assert "no row has a value" in mismatch.message


def test_a_printed_total_for_a_year_without_rows() -> None:
    [mismatch] = target_total_mismatches(_snapshot("TOTAL,2030,5,,"))
    assert (mismatch.year, mismatch.printed, mismatch.derived) == (2030, 5, None)


def _seed_rows() -> list[dict[str, int | None]]:
    with SEED_APPENDIX.open(encoding="utf-8", newline="") as handle:
        return [
            {column: int(row[column]) if row[column] else None for column in SEED_PRINTED}
            for row in csv.DictReader(handle)
        ]


def test_seed_appendix_has_exactly_its_two_known_mismatches() -> None:
    rows = _seed_rows()
    assert len(rows) == 11
    assert derive_totals(rows, tuple(SEED_PRINTED)) == {
        "routine_2023": 1351,
        "routine_target_2024": 1450,
        "take_home_2023": 273,
        "take_home_target_2024": 636,
        "community_detox_2023": 53,
        "community_detox_target_2024": 150,
    }
    found = total_mismatches(rows, SEED_PRINTED)
    assert [(m.column, m.printed, m.derived, m.difference) for m in found] == [
        ("routine_2023", 1352, 1351, 1),
        ("take_home_target_2024", 652, 636, 16),
    ]


def test_columns_not_printed_are_not_compared() -> None:
    rows = _seed_rows()
    assert total_mismatches(rows, {"routine_2023": None, "routine_target_2024": 1450}) == []


# --------------------------------------------------------------------------------------------
# The simulator's registry carries the seed's printed 2024 totals.


def test_simulator_targets_end_with_the_seed_totals(tmp_path: Path) -> None:
    write_registry(build_province(scale=1.0, seed=0), tmp_path)
    with (tmp_path / "targets.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[-1] == {
        "facility_id": "TOTAL",
        "year": "2024",
        "routine_target": "1450",
        "take_home_target": "652",
        "community_detox_target": "150",
    }
    assert sum(row["facility_id"] == "TOTAL" for row in rows) == 1


def test_simulator_registry_reports_the_seed_take_home_mismatch(tmp_path: Path) -> None:
    write_registry(build_province(scale=1.0, seed=0), tmp_path)
    snapshot = parse_registry_dir(tmp_path)
    assert len(snapshot.targets) == 11
    assert [
        (m.year, m.column, m.printed, m.derived, m.difference)
        for m in target_total_mismatches(snapshot)
    ] == [(2024, "take_home_target", 652, 636, 16)]


def test_scaled_simulator_totals_are_scaled_like_the_targets(tmp_path: Path) -> None:
    province = build_province(scale=3.0, seed=0)
    assert [
        (t.routine_target, t.take_home_target, t.community_detox_target)
        for t in province.printed_totals
    ] == [(4350, 1956, 450)]
    write_registry(province, tmp_path)
    found = target_total_mismatches(parse_registry_dir(tmp_path))
    assert [(m.column, m.printed, m.derived) for m in found] == [("take_home_target", 1956, 1908)]


def test_a_custom_seed_table_has_no_printed_totals(tmp_path: Path) -> None:
    custom = tmp_path / "seed.csv"
    custom.write_text(SEED_APPENDIX.read_text(encoding="utf-8"), encoding="utf-8")
    assert build_province(custom, scale=1.0, seed=0).printed_totals == ()
