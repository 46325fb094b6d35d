"""The reference files of CONTRACT.md section 2 (a registry directory): parsing and validation.

A registry is loaded as a whole or not at all: every problem in every file is collected and
reported together as ``file:line: column: problem``, so a CDC officer fixes the spreadsheet once
instead of once per error. ``reference_problem`` then tells whether an otherwise valid event
names something the registry does not know. The rows and the snapshot are defined in
``schemas.registry``, the cell-by-cell reading of CSV text in ``schemas.csv_cells``.

``targets.csv`` may also carry the totals a source printed under its table (a row whose
``facility_id`` is ``TOTAL``, ``Tổng``, ``Tổng cộng`` or empty). Those are not targets: they are
kept as ``PrintedTotal``s, and ``target_total_mismatches`` compares them with the totals derived
from the unit rows. A mismatch is a warning, not a problem: the rows are the truth.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Final

from schemas import csv_cells as cells
from schemas.calendar import FREQUENCIES
from schemas.models import (
    BaseEvent,
    DoseDispensed,
    PatientTransferred,
    ReportSubmitted,
    StockAdjusted,
    StockCounted,
    StockReceived,
    SupervisionVisited,
    TestPerformed,
)
from schemas.registry import (
    FACILITY_TYPES,
    ITEM_KINDS,
    DeadlineRow,
    FacilityRow,
    FacilityType,
    ItemRow,
    PrintedTotal,
    RegistryError,
    RegistrySnapshot,
    TargetRow,
    TotalMismatch,
)

__all__ = [
    "FACILITY_TYPES",
    "FREQUENCIES",
    "ITEM_KINDS",
    "OPTIONAL_COLUMNS",
    "REGISTRY_FILES",
    "TARGET_COLUMNS",
    "TOTAL_MARKERS",
    "DeadlineRow",
    "FacilityRow",
    "FacilityType",
    "ItemRow",
    "PrintedTotal",
    "RegistryError",
    "RegistrySnapshot",
    "TargetRow",
    "TotalMismatch",
    "derive_totals",
    "is_total_marker",
    "parse_registry_dir",
    "parse_registry_texts",
    "reference_problem",
    "target_total_mismatches",
    "total_mismatches",
]


COLUMNS: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "facilities.csv": ("facility_id", "name", "type", "parent_id", "district", "province"),
        "items.csv": ("item", "name", "kind", "unit", "mg_per_unit"),
        "targets.csv": (
            "facility_id",
            "year",
            "routine_target",
            "take_home_target",
            "community_detox_target",
        ),
        "deadlines.csv": ("report_type", "frequency", "due_day", "reporter_type"),
    }
)
# Columns a file may carry beyond the contract's required ones (CONTRACT §2, optional); an
# absent optional column reads as empty cells.
OPTIONAL_COLUMNS: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {"facilities.csv": ("live_from",), "deadlines.csv": ("recipient_id",)}
)
TARGET_COLUMNS: Final = ("routine_target", "take_home_target", "community_detox_target")
# A targets.csv row with one of these as facility_id (compared case-insensitively) is the total
# a source printed for that year, not a unit's target.
TOTAL_MARKERS: Final = frozenset({"total", "tổng", "tổng cộng", ""})
REQUIRED_FILES: Final = ("facilities.csv", "items.csv")
REGISTRY_FILES: Final = tuple(COLUMNS)
_MAX_LISTED: Final = 20


def _rows(file: str, text: str, problems: cells.Problems) -> Iterator[cells.Row]:
    """The data rows of one registry file, its header checked against the contract's columns."""
    return cells.rows(file, text, problems, COLUMNS[file], OPTIONAL_COLUMNS.get(file, ()))


# --------------------------------------------------------------------------------------------
# One parser per file.


def _parse_facilities(text: str, problems: cells.Problems) -> dict[str, FacilityRow]:
    file = "facilities.csv"
    facilities: dict[str, FacilityRow] = {}
    lines: dict[str, int] = {}
    for row in _rows(file, text, problems):
        facility_id = cells.check(row, "facility_id", problems, cells.code, cells.CODE_RULE)
        name = cells.check(row, "name", problems, cells.non_empty, "must not be empty")
        kind = cells.check(
            row,
            "type",
            problems,
            cells.one_of(FACILITY_TYPES),
            "must be one of " + ", ".join(FACILITY_TYPES),
        )
        parent_id = row["parent_id"] or None
        if parent_id is not None:
            cells.check(row, "parent_id", problems, cells.code, cells.CODE_RULE)
        live_from = None
        if row["live_from"]:
            live_from = cells.check(
                row, "live_from", problems, cells.day, "must be a date YYYY-MM-DD"
            )
            if live_from is None:
                continue
        if facility_id is None or name is None or kind is None:
            continue
        if facility_id in facilities:
            problems.add(
                file,
                row.line,
                "facility_id",
                f"{facility_id!r} already on line {lines[facility_id]}",
            )
            continue
        lines[facility_id] = row.line
        facilities[facility_id] = FacilityRow(
            facility_id, name, kind, parent_id, row["district"], row["province"], live_from
        )
    for facility_id, row_ in facilities.items():
        if row_.parent_id is not None and row_.parent_id not in facilities:
            problems.add(
                file, lines[facility_id], "parent_id", f"unknown facility {row_.parent_id!r}"
            )
    _check_cycles(facilities, lines, problems)
    return facilities


def _check_cycles(
    facilities: Mapping[str, FacilityRow], lines: Mapping[str, int], problems: cells.Problems
) -> None:
    """A unit cannot roll up into itself; report each cycle once, at its first line.

    Every facility is walked up at most once: a walk stops at a facility an earlier walk
    settled, so a parent chain of any length is checked in linear time (a 5,000-level
    chain took minutes when each facility walked the whole chain above it).
    """
    settled: set[str] = set()
    for start in facilities:
        path: list[str] = []
        position: dict[str, int] = {}
        current: str | None = start
        while (
            current is not None
            and current in facilities
            and current not in settled
            and current not in position
        ):
            position[current] = len(path)
            path.append(current)
            current = facilities[current].parent_id
        settled.update(path)
        if current is None or current not in position:
            continue
        cycle = path[position[current] :]
        first = min(cycle, key=lambda facility_id: lines[facility_id])
        shown = " → ".join([*cycle, cycle[0]])
        problems.add("facilities.csv", lines[first], "parent_id", f"parent cycle {shown}")


def _parse_items(text: str, problems: cells.Problems) -> dict[str, ItemRow]:
    file = "items.csv"
    items: dict[str, ItemRow] = {}
    lines: dict[str, int] = {}
    for row in _rows(file, text, problems):
        item = cells.check(row, "item", problems, cells.code, cells.CODE_RULE)
        name = cells.check(row, "name", problems, cells.non_empty, "must not be empty")
        kind = cells.check(
            row, "kind", problems, cells.one_of(ITEM_KINDS), "must be medication or test_kit"
        )
        unit = cells.check(row, "unit", problems, cells.non_empty, "must not be empty")
        mg_per_unit: float | None = None
        if kind == "medication":
            mg_per_unit = cells.check(
                row,
                "mg_per_unit",
                problems,
                cells.positive_number,
                "must be a number > 0 for a medication",
            )
            if mg_per_unit is None:
                continue
        elif kind == "test_kit" and row["mg_per_unit"]:
            problems.add(file, row.line, "mg_per_unit", "must be empty for a test_kit")
            continue
        if item is None or name is None or kind is None or unit is None:
            continue
        if item in items:
            problems.add(file, row.line, "item", f"{item!r} already on line {lines[item]}")
            continue
        lines[item] = row.line
        items[item] = ItemRow(item, name, kind, unit, mg_per_unit)
    return items


def _optional_count(
    row: cells.Row, column: str, problems: cells.Problems
) -> tuple[bool, int | None]:
    """An empty target cell means 'no target'; anything else must be a whole number >= 0."""
    if not row[column]:
        return True, None
    value = cells.check(row, column, problems, cells.count, "must be a whole number >= 0 or empty")
    return value is not None, value


def is_total_marker(facility_id: str) -> bool:
    """Whether a targets.csv ``facility_id`` marks a printed totals row (TOTAL, Tổng, empty…)."""
    folded = " ".join(unicodedata.normalize("NFC", facility_id).casefold().split())
    return folded in TOTAL_MARKERS


def _parse_total(
    row: cells.Row, totals: dict[int, PrintedTotal], problems: cells.Problems
) -> PrintedTotal | None:
    """A printed totals row: one per year, cells empty or whole numbers like a target's."""
    file = row.file
    year = cells.check(row, "year", problems, cells.year, "must be a 4-digit year")
    checked = [_optional_count(row, column, problems) for column in TARGET_COLUMNS]
    if year is None or not all(ok for ok, _ in checked):
        return None
    if year in totals:
        problems.add(
            file, row.line, "year", f"totals for {year} already on line {totals[year].line}"
        )
        return None
    routine, take_home, detox = (value for _, value in checked)
    return PrintedTotal(year, routine, take_home, detox, row.line)


def _parse_targets(
    text: str, facilities: Mapping[str, FacilityRow], problems: cells.Problems
) -> tuple[tuple[TargetRow, ...], tuple[PrintedTotal, ...]]:
    file = "targets.csv"
    targets: list[TargetRow] = []
    totals: dict[int, PrintedTotal] = {}
    lines: dict[tuple[str, int], int] = {}
    for row in _rows(file, text, problems):
        facility_id = row["facility_id"]
        known = facility_id in facilities
        if not known and is_total_marker(facility_id):
            total = _parse_total(row, totals, problems)
            if total is not None:
                totals[total.year] = total
            continue
        if not known:
            problems.add(file, row.line, "facility_id", f"unknown facility {facility_id[:60]!r}")
        year = cells.check(row, "year", problems, cells.year, "must be a 4-digit year")
        ok_routine, routine = _optional_count(row, "routine_target", problems)
        ok_take_home, take_home = _optional_count(row, "take_home_target", problems)
        ok_detox, detox = _optional_count(row, "community_detox_target", problems)
        if not (known and year is not None and ok_routine and ok_take_home and ok_detox):
            continue
        key = (facility_id, year)
        if key in lines:
            problems.add(
                file, row.line, "year", f"{facility_id} {year} already on line {lines[key]}"
            )
            continue
        lines[key] = row.line
        targets.append(TargetRow(facility_id, year, routine, take_home, detox))
    return tuple(targets), tuple(totals.values())


def _parse_deadlines(
    text: str, facilities: Mapping[str, FacilityRow], problems: cells.Problems
) -> dict[str, DeadlineRow]:
    file = "deadlines.csv"
    deadlines: dict[str, DeadlineRow] = {}
    lines: dict[str, int] = {}
    for row in _rows(file, text, problems):
        report_type = cells.check(row, "report_type", problems, cells.code, cells.CODE_RULE)
        frequency = cells.check(
            row, "frequency", problems, cells.frequency, "must be one of " + ", ".join(FREQUENCIES)
        )
        due_day = cells.check(
            row, "due_day", problems, cells.due_day, "must be a day of the month 1–31"
        )
        reporter_type = cells.check(
            row,
            "reporter_type",
            problems,
            cells.one_of(FACILITY_TYPES),
            "must be a facility type: " + ", ".join(FACILITY_TYPES),
        )
        recipient_id = row["recipient_id"] or None
        if recipient_id is not None and recipient_id not in facilities:
            problems.add(file, row.line, "recipient_id", f"unknown facility {recipient_id[:60]!r}")
            continue
        if report_type is None or frequency is None or due_day is None or reporter_type is None:
            continue
        if report_type in deadlines:
            problems.add(
                file,
                row.line,
                "report_type",
                f"{report_type!r} already on line {lines[report_type]}",
            )
            continue
        lines[report_type] = row.line
        deadlines[report_type] = DeadlineRow(
            report_type, frequency, due_day, reporter_type, recipient_id
        )
    return deadlines


def parse_registry_texts(texts: Mapping[str, str]) -> RegistrySnapshot:
    """Validate the reference files given as texts keyed by file name; RegistryError if any
    problem. facilities.csv and items.csv are required; the others default to empty."""
    problems = cells.Problems()
    for file in REQUIRED_FILES:
        if file not in texts:
            problems.add(file, 0, "file", "missing (required)")
    facilities = (
        _parse_facilities(texts["facilities.csv"], problems) if "facilities.csv" in texts else {}
    )
    items = _parse_items(texts["items.csv"], problems) if "items.csv" in texts else {}
    targets, printed_totals = (
        _parse_targets(texts["targets.csv"], facilities, problems)
        if "targets.csv" in texts
        else ((), ())
    )
    deadlines = (
        _parse_deadlines(texts["deadlines.csv"], facilities, problems)
        if "deadlines.csv" in texts
        else {}
    )
    if problems.items:
        raise RegistryError(problems.items)
    return RegistrySnapshot(
        facilities=MappingProxyType(facilities),
        items=MappingProxyType(items),
        targets=targets,
        deadlines=MappingProxyType(deadlines),
        printed_totals=printed_totals,
    )


def parse_registry_dir(path: Path) -> RegistrySnapshot:
    """Read and validate a registry directory (UTF-8 files, a BOM is tolerated)."""
    if not path.is_dir():
        raise RegistryError([f"{path}:0: directory: not a directory"])
    texts: dict[str, str] = {}
    unreadable: list[str] = []
    for file in REGISTRY_FILES:
        candidate = path / file
        if not candidate.is_file():
            continue
        try:
            texts[file] = candidate.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            unreadable.append(f"{file}:0: file: not UTF-8 ({exc.reason} at byte {exc.start})")
    if unreadable:
        raise RegistryError(unreadable)
    return parse_registry_texts(texts)


# --------------------------------------------------------------------------------------------
# Printed totals against the rows they sum.


def derive_totals(
    rows: Iterable[Mapping[str, int | None]], columns: Sequence[str]
) -> dict[str, int | None]:
    """Sum each column over ``rows``; empty cells (None) are absent, and a column no row has a
    value for has no total (None) rather than 0."""
    totals: dict[str, int | None] = dict.fromkeys(columns)
    for row in rows:
        for column in columns:
            value = row.get(column)
            if value is not None:
                totals[column] = (totals[column] or 0) + value
    return totals


def total_mismatches(
    rows: Iterable[Mapping[str, int | None]], printed: Mapping[str, int | None]
) -> list[TotalMismatch]:
    """Compare totals a source printed (column → total, None for not printed) with the totals
    derived from its rows; one ``TotalMismatch`` per column that disagrees, in ``printed``'s
    order. Works on any table of whole-number columns."""
    derived = derive_totals(rows, tuple(printed))
    return [
        TotalMismatch(column, total, derived[column])
        for column, total in printed.items()
        if total is not None and derived[column] != total
    ]


def target_total_mismatches(snapshot: RegistrySnapshot) -> list[TotalMismatch]:
    """Each printed totals row of targets.csv against the sum of that year's unit rows."""
    found: list[TotalMismatch] = []
    for total in snapshot.printed_totals:
        rows = [
            {column: getattr(target, column) for column in TARGET_COLUMNS}
            for target in snapshot.targets
            if target.year == total.year
        ]
        printed = {column: getattr(total, column) for column in TARGET_COLUMNS}
        found.extend(
            replace(mismatch, year=total.year, line=total.line)
            for mismatch in total_mismatches(rows, printed)
        )
    return found


# --------------------------------------------------------------------------------------------
# Events against the registry.


def _facility_problem(column: str, facility_id: str, registry: RegistrySnapshot) -> str | None:
    if facility_id in registry.facilities:
        return None
    return f"{column}: unknown facility {facility_id!r}"


def _item_problem(
    item: str, needed_kind: str | None, event_type: str, registry: RegistrySnapshot
) -> str | None:
    row = registry.items.get(item)
    if row is None:
        return f"item: unknown item {item!r}"
    if needed_kind is not None and row.kind != needed_kind:
        return f"item: must be a {needed_kind} for {event_type}, {item!r} is a {row.kind}"
    return None


def reference_problem(event: BaseEvent, registry: RegistrySnapshot) -> str | None:
    """Why a schema-valid event must still be rejected against ``registry``; None if it is fine."""
    problem = _facility_problem("facility_id", event.facility_id, registry)
    if problem is not None:
        return problem
    if isinstance(event, DoseDispensed):
        return _item_problem(event.item, "medication", event.event_type, registry)
    if isinstance(event, TestPerformed):
        return _item_problem(event.item, "test_kit", event.event_type, registry)
    if isinstance(event, StockReceived | StockAdjusted | StockCounted):
        return _item_problem(event.item, None, event.event_type, registry)
    if isinstance(event, PatientTransferred):
        if event.to_facility_id == event.facility_id:
            return f"to_facility_id: must differ from facility_id {event.facility_id!r}"
        return _facility_problem("to_facility_id", event.to_facility_id, registry)
    if isinstance(event, SupervisionVisited):
        return _facility_problem("supervisor_id", event.supervisor_id, registry)
    if isinstance(event, ReportSubmitted) and event.report_type not in registry.deadlines:
        return f"report_type: unknown report type {event.report_type!r} (not in deadlines.csv)"
    return None
