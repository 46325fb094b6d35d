"""Reference files (CONTRACT.md section 2): every registry rule, and events checked against it."""

from __future__ import annotations

import re
import time
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from schemas.models import parse_event_dict
from schemas.reference import (
    REGISTRY_FILES,
    RegistryError,
    RegistrySnapshot,
    parse_registry_dir,
    parse_registry_texts,
    reference_problem,
)
from tests.fixtures.contract_cases import REGISTRY_DIR, UNKNOWN_REFERENCE_EVENTS, VALID_EVENTS

_PROBLEM_RE = re.compile(r"^[a-z]+\.csv:\d+: [a-z_]+: \S")


def _texts() -> dict[str, str]:
    return {file: (REGISTRY_DIR / file).read_text(encoding="utf-8") for file in REGISTRY_FILES}


def _problems(**replacements: str) -> tuple[str, ...]:
    """Problems of the fixture registry with some files replaced (keys: file stem)."""
    texts = _texts() | {f"{stem}.csv": text for stem, text in replacements.items()}
    with pytest.raises(RegistryError) as caught:
        parse_registry_texts(texts)
    for problem in caught.value.problems:
        assert _PROBLEM_RE.match(problem), problem
    return caught.value.problems


def _with_rows(file: str, *rows: str) -> str:
    return _texts()[file].rstrip("\n") + "\n" + "\n".join(rows) + "\n"


@pytest.fixture(scope="module")
def registry() -> RegistrySnapshot:
    return parse_registry_dir(REGISTRY_DIR)


# --------------------------------------------------------------------------------------------
# The fixture registry.


def test_fixture_registry_loads(registry: RegistrySnapshot) -> None:
    assert set(registry.facilities) == {
        "CDC-01",
        "DHC-01",
        "DHC-02",
        "TF-01",
        "TF-02",
        "DP-01",
        "CHS-01",
        "PSY-01",
    }
    assert registry.facilities["TF-01"].parent_id == "DHC-01"
    assert registry.facilities["CDC-01"].parent_id is None
    assert registry.facilities["DHC-01"].name == "Trung tâm Y tế huyện Lục Ngạn"
    assert registry.items["MET10"].mg_per_unit == 10
    assert registry.items["KIT-MOR"].mg_per_unit is None
    assert registry.items["KIT-MOR"].kind == "test_kit"
    assert [(t.facility_id, t.year, t.take_home_target) for t in registry.targets] == [
        ("DHC-01", 2024, 40),
        ("TF-02", 2024, None),
    ]
    assert registry.deadlines["methadone_monthly"].due_day == 25
    assert registry.deadlines["cdc_methadone_monthly"].reporter_type == "provincial_cdc"


def test_hierarchy(registry: RegistrySnapshot) -> None:
    assert registry.children_of("DHC-01") == ("TF-01", "CHS-01")
    assert registry.children_of("DP-01") == ()
    assert registry.descendants_of("DHC-01") == {"DHC-01", "TF-01", "DP-01", "CHS-01"}
    assert registry.descendants_of("TF-02") == {"TF-02"}
    assert registry.descendants_of("CDC-01") == set(registry.facilities)


def test_optional_files_default_to_empty() -> None:
    texts = _texts()
    snapshot = parse_registry_texts({f: texts[f] for f in ("facilities.csv", "items.csv")})
    assert snapshot.targets == ()
    assert dict(snapshot.deadlines) == {}


# --------------------------------------------------------------------------------------------
# File shape.


@pytest.mark.parametrize("missing", ["facilities.csv", "items.csv"])
def test_required_files(missing: str) -> None:
    texts = {file: text for file, text in _texts().items() if file != missing}
    with pytest.raises(RegistryError, match=rf"{missing}:0: file: missing \(required\)"):
        parse_registry_texts(texts)


def test_bom_whitespace_and_blank_lines_are_tolerated() -> None:
    facilities = (
        "\ufeff facility_id , name,type,parent_id,district,province\n"
        "\n"
        " CDC-01 , Trung tâm Kiểm soát bệnh tật ,provincial_cdc, ,,Bắc Giang\n"
    )
    items = "item,name,kind,unit,mg_per_unit\r\nMET10,Methadone,medication,ml, 10 \r\n"
    snapshot = parse_registry_texts({"facilities.csv": facilities, "items.csv": items})
    assert snapshot.facilities["CDC-01"].name == "Trung tâm Kiểm soát bệnh tật"
    assert snapshot.facilities["CDC-01"].parent_id is None
    assert snapshot.items["MET10"].mg_per_unit == 10


def test_columns_may_come_in_any_order() -> None:
    items = "kind,item,unit,name,mg_per_unit\ntest_kit,KIT,kit,Kit,\n"
    snapshot = parse_registry_texts(_texts() | {"items.csv": items})
    assert snapshot.items["KIT"].kind == "test_kit"


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        (
            "item,name,kind,unit\nX,X,test_kit,kit\n",
            "items.csv:1: header: missing column 'mg_per_unit'",
        ),
        (
            "item,name,kind,unit,mg_per_unit,price\nX,X,test_kit,kit,,1\n",
            "items.csv:1: header: unexpected column 'price'",
        ),
        (
            "item,name,kind,unit,mg_per_unit,item\nX,X,test_kit,kit,,X\n",
            "items.csv:1: header: column 'item' repeated",
        ),
        ("", "items.csv:1: header: file is empty"),
        (
            "item,name,kind,unit,mg_per_unit\nX,X,test_kit,kit\n",
            "items.csv:2: row: 4 cells, the header has 5",
        ),
    ],
    ids=["missing", "extra", "repeated", "empty", "short-row"],
)
def test_header_and_row_shape(items: str, expected: str) -> None:
    assert any(problem.startswith(expected) for problem in _problems(items=items))


# --------------------------------------------------------------------------------------------
# facilities.csv


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (
            "TF-01,Dup,treatment_facility,DHC-01,,",
            "facilities.csv:10: facility_id: 'TF-01' already on line 5",
        ),
        ("TF 03,X,treatment_facility,DHC-01,,", "facilities.csv:10: facility_id: must be 1–64"),
        ("TF-03,,treatment_facility,DHC-01,,", "facilities.csv:10: name: must not be empty"),
        ("TF-03,X,hospital,DHC-01,,", "facilities.csv:10: type: must be one of treatment_facility"),
        (
            "TF-03,X,treatment_facility,DHC-09,,",
            "facilities.csv:10: parent_id: unknown facility 'DHC-09'",
        ),
        (
            "TF-03,X,treatment_facility,TF-03,,",
            "facilities.csv:10: parent_id: parent cycle TF-03 → TF-03",
        ),
    ],
    ids=["duplicate", "bad-id", "no-name", "bad-type", "unknown-parent", "self-parent"],
)
def test_facility_rules(row: str, expected: str) -> None:
    problems = _problems(facilities=_with_rows("facilities.csv", row))
    assert any(problem.startswith(expected) for problem in problems), problems


def test_parent_cycle_is_reported_once() -> None:
    rows = (
        "A,A,treatment_facility,B,,",
        "B,B,treatment_facility,C,,",
        "C,C,treatment_facility,A,,",
    )
    problems = _problems(facilities=_with_rows("facilities.csv", *rows))
    assert problems == ("facilities.csv:10: parent_id: parent cycle A → B → C → A",)


@pytest.mark.parametrize(
    ("file", "row"),
    [
        ("facilities.csv", "=1+1,X,treatment_facility,DHC-01,,"),
        ("facilities.csv", "=cmd|' /C calc'!A0,X,treatment_facility,DHC-01,,"),
        ("facilities.csv", "+TF,X,treatment_facility,DHC-01,,"),
        ("facilities.csv", "@SUM(A1),X,treatment_facility,DHC-01,,"),
        ("facilities.csv", "<img src=x>,X,treatment_facility,DHC-01,,"),
        ("facilities.csv", "TF/03,X,treatment_facility,DHC-01,,"),
        ("facilities.csv", "TF-03,X,treatment_facility,=1+1,,"),
        ("facilities.csv", "CSYTĐ,X,treatment_facility,DHC-01,,"),
        ("items.csv", "=1+1,X,test_kit,kit,"),
        ("deadlines.csv", "=HYPERLINK(1),monthly,5,provincial_cdc"),
    ],
)
def test_registry_ids_are_letters_digits_and_a_few_marks(file: str, row: str) -> None:
    """Ids go into CSV exports, spreadsheets and pages: ``=1+1`` as a facility id would be a
    formula in an inspector's spreadsheet (issue 15)."""
    problems = _problems(**{file.removesuffix(".csv"): _with_rows(file, row)})
    assert any("must be 1–64 of A-Z, a-z, 0-9, '_', '.' or '-'" in p for p in problems), problems


def test_ids_with_dots_dashes_and_underscores_pass() -> None:
    rows = ("BG.TF-03_a,X,treatment_facility,DHC-01,,", "x.1,Y,dispensing_point,BG.TF-03_a,,")
    texts = _texts() | {"facilities.csv": _with_rows("facilities.csv", *rows)}
    assert parse_registry_texts(texts).facilities["x.1"].parent_id == "BG.TF-03_a"


def _chain(levels: int, loop_back: bool = False) -> str:
    rows = [f"L{n},Unit {n},district_health_centre,{f'L{n - 1}' if n else ''},,"
            for n in range(levels)]  # fmt: skip
    if loop_back:
        rows[0] = f"L0,Unit 0,district_health_centre,L{levels - 1},,"
    return _with_rows("facilities.csv", *rows)


def test_a_five_thousand_level_parent_chain_is_checked_in_linear_time() -> None:
    started = time.perf_counter()
    snapshot = parse_registry_texts(_texts() | {"facilities.csv": _chain(5000)})
    assert time.perf_counter() - started < 5  # was minutes (each unit walked the chain above)
    assert snapshot.facilities["L4999"].parent_id == "L4998"
    assert len(snapshot.descendants_of("L0")) == 5000
    problems = _problems(facilities=_chain(5000, loop_back=True))
    assert len(problems) == 1 and problems[0].startswith(
        "facilities.csv:10: parent_id: parent cycle"
    )
    assert problems[0].count("→") == 5000


@pytest.mark.parametrize("kind", ["treatment_facility", "provincial_cdc", "psychiatric_hospital"])
def test_every_facility_type_is_accepted(kind: str) -> None:
    texts = _texts() | {"facilities.csv": _with_rows("facilities.csv", f"NEW,X,{kind},,,")}
    assert parse_registry_texts(texts).facilities["NEW"].type == kind


def test_live_from_is_an_optional_column_of_facilities() -> None:
    """CONTRACT §2: facilities.csv may say from which local day a facility sent events."""
    lines = _texts()["facilities.csv"].splitlines()
    with_column = [lines[0] + ",live_from"] + [
        line + (",2024-03-05" if line.startswith("TF-01,") else ",") for line in lines[1:]
    ]
    snapshot = parse_registry_texts(_texts() | {"facilities.csv": "\n".join(with_column)})
    assert snapshot.facilities["TF-01"].live_from == date(2024, 3, 5)
    assert snapshot.facilities["TF-02"].live_from is None
    # Without the column every facility is live from its first event.
    assert parse_registry_texts(_texts()).facilities["TF-01"].live_from is None
    bad = [with_column[0], *with_column[1:], "NEW,X,treatment_facility,,,,05/03/2024"]
    problems = _problems(facilities="\n".join(bad))
    assert problems == (
        "facilities.csv:10: live_from: must be a date YYYY-MM-DD (got '05/03/2024')",
    )


# --------------------------------------------------------------------------------------------
# items.csv


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ("MET10,Dup,medication,ml,10", "items.csv:5: item: 'MET10' already on line 2"),
        ("X,X,drug,ml,10", "items.csv:5: kind: must be medication or test_kit"),
        ("X,X,medication,ml,", "items.csv:5: mg_per_unit: must be a number > 0"),
        ("X,X,medication,ml,0", "items.csv:5: mg_per_unit: must be a number > 0"),
        ("X,X,medication,ml,-2", "items.csv:5: mg_per_unit: must be a number > 0"),
        ("X,X,medication,ml,ten", "items.csv:5: mg_per_unit: must be a number > 0"),
        ("X,X,medication,ml,nan", "items.csv:5: mg_per_unit: must be a number > 0"),
        ("X,X,test_kit,kit,1", "items.csv:5: mg_per_unit: must be empty for a test_kit"),
        ("X,X,test_kit,,", "items.csv:5: unit: must not be empty"),
        ("X,,test_kit,kit,", "items.csv:5: name: must not be empty"),
    ],
    ids=[
        "duplicate",
        "bad-kind",
        "no-mg",
        "zero-mg",
        "negative-mg",
        "text-mg",
        "nan-mg",
        "kit-with-mg",
        "no-unit",
        "no-name",
    ],
)
def test_item_rules(row: str, expected: str) -> None:
    problems = _problems(items=_with_rows("items.csv", row))
    assert any(problem.startswith(expected) for problem in problems), problems


def test_fractional_concentration() -> None:
    texts = _texts() | {"items.csv": _with_rows("items.csv", "MET5,Methadone 5,medication,ml,5.5")}
    assert parse_registry_texts(texts).items["MET5"].mg_per_unit == 5.5


# --------------------------------------------------------------------------------------------
# targets.csv


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ("TF-99,2024,1,1,1", "targets.csv:4: facility_id: unknown facility 'TF-99'"),
        ("TF-01,24,1,1,1", "targets.csv:4: year: must be a 4-digit year"),
        ("TF-01,20x4,1,1,1", "targets.csv:4: year: must be a 4-digit year"),
        ("TF-01,2024,-5,1,1", "targets.csv:4: routine_target: must be a whole number >= 0"),
        ("TF-01,2024,1,1.5,1", "targets.csv:4: take_home_target: must be a whole number >= 0"),
        ("TF-01,2024,1,1,many", "targets.csv:4: community_detox_target: must be a whole number"),
        ("DHC-01,2024,1,1,1", "targets.csv:4: year: DHC-01 2024 already on line 2"),
    ],
    ids=["unknown-facility", "short-year", "bad-year", "negative", "fraction", "text", "duplicate"],
)
def test_target_rules(row: str, expected: str) -> None:
    problems = _problems(targets=_with_rows("targets.csv", row))
    assert any(problem.startswith(expected) for problem in problems), problems


def test_targets_may_be_zero_or_empty() -> None:
    texts = _texts() | {"targets.csv": _with_rows("targets.csv", "TF-01,2025,0,,")}
    target = parse_registry_texts(texts).targets[-1]
    assert (target.routine_target, target.take_home_target) == (0, None)


# --------------------------------------------------------------------------------------------
# deadlines.csv


@pytest.mark.parametrize(
    ("written", "normalised"),
    [
        ("monthly", "monthly"),
        ("Monthly", "monthly"),
        ("half_yearly", "half_yearly"),
        ("semiannual", "half_yearly"),
        ("semi_annual", "half_yearly"),
        ("semi-annual", "half_yearly"),
        ("biannual", "half_yearly"),
        ("yearly", "yearly"),
        ("annual", "yearly"),
    ],
)
def test_frequency_synonyms(written: str, normalised: str) -> None:
    row = f"chs_tests,{written},15,commune_health_station"
    texts = _texts() | {"deadlines.csv": _with_rows("deadlines.csv", row)}
    assert parse_registry_texts(texts).deadlines["chs_tests"].frequency == normalised


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ("x,weekly,5,provincial_cdc", "deadlines.csv:4: frequency: must be one of monthly, quar"),
        ("x,monthly,0,provincial_cdc", "deadlines.csv:4: due_day: must be a day of the month"),
        ("x,monthly,32,provincial_cdc", "deadlines.csv:4: due_day: must be a day of the month"),
        ("x,monthly,last,provincial_cdc", "deadlines.csv:4: due_day: must be a day of the month"),
        ("x,monthly,5,ministry", "deadlines.csv:4: reporter_type: must be a facility type"),
        (
            "methadone_monthly,monthly,5,provincial_cdc",
            "deadlines.csv:4: report_type: 'methadone_monthly' already on line 2",
        ),
        ("bad type,monthly,5,provincial_cdc", "deadlines.csv:4: report_type: must be 1–64"),
    ],
    ids=["frequency", "day-0", "day-32", "day-text", "reporter", "duplicate", "bad-code"],
)
def test_deadline_rules(row: str, expected: str) -> None:
    problems = _problems(deadlines=_with_rows("deadlines.csv", row))
    assert any(problem.startswith(expected) for problem in problems), problems


def test_deadline_recipients_and_quarters() -> None:
    header = "report_type,frequency,due_day,reporter_type,recipient_id"
    rows = (
        "q,quarterly,15,district_health_centre,CDC-01",
        "q2,Quarter,15,district_health_centre,",
    )
    texts = _texts() | {"deadlines.csv": "\n".join((header, *rows)) + "\n"}
    deadlines = parse_registry_texts(texts).deadlines
    assert (deadlines["q"].frequency, deadlines["q"].recipient_id) == ("quarterly", "CDC-01")
    assert (deadlines["q2"].frequency, deadlines["q2"].recipient_id) == ("quarterly", None)


def test_a_deadline_file_without_recipients_still_loads() -> None:
    old = "report_type,frequency,due_day,reporter_type\nm,monthly,25,provincial_cdc\n"
    deadlines = parse_registry_texts(_texts() | {"deadlines.csv": old}).deadlines
    assert deadlines["m"].recipient_id is None


def test_an_unknown_recipient_is_a_problem() -> None:
    header = "report_type,frequency,due_day,reporter_type,recipient_id"
    bad = header + "\nm,monthly,25,provincial_cdc,SYT-99\n"
    assert _problems(deadlines=bad) == ("deadlines.csv:2: recipient_id: unknown facility 'SYT-99'",)


def test_due_day_bounds_pass() -> None:
    rows = ("first,monthly,1,provincial_cdc", "last,yearly,31,provincial_cdc")
    texts = _texts() | {"deadlines.csv": _with_rows("deadlines.csv", *rows)}
    deadlines = parse_registry_texts(texts).deadlines
    assert (deadlines["first"].due_day, deadlines["last"].due_day) == (1, 31)


# --------------------------------------------------------------------------------------------
# The error as a whole.


def test_every_problem_is_reported_but_at_most_20_listed() -> None:
    rows = [f"BAD{n},X,nonsense,,," for n in range(25)]
    with pytest.raises(RegistryError) as caught:
        parse_registry_texts(_texts() | {"facilities.csv": _with_rows("facilities.csv", *rows)})
    assert len(caught.value.problems) == 25
    message = str(caught.value)
    assert message.startswith("registry has 25 problems:\n")
    assert message.count("type: must be one of") == 20
    assert message.endswith("… and 5 more")


def test_problems_from_several_files_come_together() -> None:
    problems = _problems(
        items=_with_rows("items.csv", "X,X,drug,ml,1"),
        deadlines=_with_rows("deadlines.csv", "x,weekly,5,provincial_cdc"),
    )
    assert {problem.split(":")[0] for problem in problems} == {"items.csv", "deadlines.csv"}


def test_registry_error_is_a_value_error() -> None:
    assert issubclass(RegistryError, ValueError)


def test_directory_that_is_not_one(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="not a directory"):
        parse_registry_dir(tmp_path / "nope")


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    for file, text in _texts().items():
        (tmp_path / file).write_text(text, encoding="utf-8")
    (tmp_path / "facilities.csv").write_bytes(_texts()["facilities.csv"].encode("utf-16"))
    with pytest.raises(RegistryError, match=r"facilities.csv:0: file: not UTF-8"):
        parse_registry_dir(tmp_path)


def test_directory_with_bom_files(tmp_path: Path) -> None:
    for file, text in _texts().items():
        (tmp_path / file).write_text("\ufeff" + text, encoding="utf-8")
    assert parse_registry_dir(tmp_path) == parse_registry_dir(REGISTRY_DIR)


# --------------------------------------------------------------------------------------------
# Events against the registry.


@pytest.mark.parametrize("doc", VALID_EVENTS, ids=lambda doc: doc["event_id"][-3:])
def test_valid_events_pass_the_registry(doc: dict[str, Any], registry: RegistrySnapshot) -> None:
    assert reference_problem(parse_event_dict(doc), registry) is None


@pytest.mark.parametrize(
    ("doc", "expected"),
    list(
        zip(
            UNKNOWN_REFERENCE_EVENTS,
            [
                "facility_id: unknown facility 'TF-99'",
                "item: unknown item 'MET20'",
                "item: must be a medication for dose.dispensed, 'KIT-MOR' is a test_kit",
                "item: must be a test_kit for test.performed, 'MET10' is a medication",
                "report_type: unknown report type 'detox_monthly' (not in deadlines.csv)",
                "to_facility_id: unknown facility 'TF-77'",
                "to_facility_id: must differ from facility_id 'TF-01'",
                "supervisor_id: unknown facility 'DHC-99'",
                "item: unknown item 'unknown-item'",
            ],
            strict=True,
        )
    ),
    ids=lambda value: value["event_type"] if isinstance(value, dict) else "",
)
def test_unknown_references_are_named(
    doc: dict[str, Any], expected: str, registry: RegistrySnapshot
) -> None:
    assert reference_problem(parse_event_dict(doc), registry) == expected


def test_stock_events_accept_any_item_kind(registry: RegistrySnapshot) -> None:
    kit_stock = next(
        e for e in VALID_EVENTS if e["event_type"] == "stock.received" and "KIT" in e["item"]
    )
    assert reference_problem(parse_event_dict(kit_stock), registry) is None
    counted = next(e for e in VALID_EVENTS if e["event_type"] == "stock.counted")
    assert reference_problem(parse_event_dict(counted | {"item": "KIT-MOR"}), registry) is None


def test_reports_need_a_deadline_calendar() -> None:
    texts = _texts()
    bare = parse_registry_texts({f: texts[f] for f in ("facilities.csv", "items.csv")})
    report = next(e for e in VALID_EVENTS if e["event_type"] == "report.submitted")
    assert reference_problem(parse_event_dict(report), bare) == (
        "report_type: unknown report type 'methadone_monthly' (not in deadlines.csv)"
    )
