"""The reference files of CONTRACT.md section 2 (a registry directory): parsing and validation.

A registry is loaded as a whole or not at all: every problem in every file is collected and
reported together as ``file:line: column: problem``, so a CDC officer fixes the spreadsheet once
instead of once per error. ``reference_problem`` then tells whether an otherwise valid event
names something the registry does not know.

``targets.csv`` may also carry the totals a source printed under its table (a row whose
``facility_id`` is ``TOTAL``, ``Tổng``, ``Tổng cộng`` or empty). Those are not targets: they are
kept as ``PrintedTotal``s, and ``target_total_mismatches`` compares them with the totals derived
from the unit rows. A mismatch is a warning, not a problem: the rows are the truth.
"""

from __future__ import annotations

import csv
import functools
import io
import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from types import MappingProxyType
from typing import Final, Literal, TypeVar, get_args

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

FacilityType = Literal[
    "treatment_facility",
    "dispensing_point",
    "commune_health_station",
    "district_health_centre",
    "provincial_cdc",
    "psychiatric_hospital",
    "department_of_health",
]
FACILITY_TYPES: Final[tuple[str, ...]] = get_args(FacilityType)
ITEM_KINDS: Final = ("medication", "test_kit")
# Spellings a spreadsheet is likely to use for the same frequency.
_FREQUENCY_SYNONYMS: Final = {
    "quarterly": "quarterly",
    "quarter": "quarterly",
    "semiannual": "half_yearly",
    "semi_annual": "half_yearly",
    "biannual": "half_yearly",
    "half_yearly": "half_yearly",
    "annual": "yearly",
    "yearly": "yearly",
    "monthly": "monthly",
}

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

# Registry ids (facility, parent, item, report type): letters, digits, '_', '.', '-', so an id
# can appear in an event (its codes are broader) and never starts a formula in a spreadsheet
# (``=1+1``), a shell word or markup when an operator's tools show it.
_ID_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_YEAR_RE = re.compile(r"\d{4}")
_INT_RE = re.compile(r"\d+")
_DAY_RE = re.compile(r"\d{4}-\d{2}-\d{2}")

_T = TypeVar("_T")


class RegistryError(ValueError):
    """A registry that cannot be loaded; ``problems`` lists every ``file:line: column: problem``."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = tuple(problems)
        listed = "\n".join(f"  {problem}" for problem in problems[:_MAX_LISTED])
        more = len(problems) - _MAX_LISTED
        tail = f"\n  … and {more} more" if more > 0 else ""
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        super().__init__(f"registry has {count}:\n{listed}{tail}")


@dataclass(frozen=True)
class FacilityRow:
    """A unit of the health system; ``parent_id`` builds the roll-up hierarchy.

    ``live_from`` is the local day the facility started sending events: what happened there
    before is history, counted in every report but never notified (CONTRACT §2, §4).
    """

    facility_id: str
    name: str
    type: str
    parent_id: str | None
    district: str
    province: str
    live_from: date | None = None


@dataclass(frozen=True)
class ItemRow:
    """A medication (with its concentration) or a test kit."""

    item: str
    name: str
    kind: str
    unit: str
    mg_per_unit: float | None


@dataclass(frozen=True)
class TargetRow:
    """A unit's annual targets; empty cells mean no target was set."""

    facility_id: str
    year: int
    routine_target: int | None
    take_home_target: int | None
    community_detox_target: int | None


@dataclass(frozen=True)
class PrintedTotal:
    """The totals a source printed for one year's targets (a ``TOTAL`` row of targets.csv).

    Empty cells mean nothing was printed for that column; ``line`` is the row's line in the file.
    """

    year: int
    routine_target: int | None
    take_home_target: int | None
    community_detox_target: int | None
    line: int


@dataclass(frozen=True)
class TotalMismatch:
    """A printed total that differs from the total derived from the rows it sums.

    ``difference`` is ``printed - derived`` (None when no row has a value). ``year`` and ``line``
    locate the totals row of targets.csv; they are None for a table checked on its own.
    """

    column: str
    printed: int
    derived: int | None
    year: int | None = None
    line: int | None = None

    @property
    def difference(self) -> int | None:
        return None if self.derived is None else self.printed - self.derived

    @property
    def message(self) -> str:
        """One human-readable line, ``targets.csv:LINE: column: ...`` when the line is known."""
        where = f"targets.csv:{self.line}: " if self.line is not None else ""
        year = f" for {self.year}" if self.year is not None else ""
        if self.derived is None:
            derived = "no row has a value"
        else:
            derived = (
                f"the rows add up to {self.derived} (difference {self.printed - self.derived:+d})"
            )
        return f"{where}{self.column}: printed total{year} is {self.printed}, but {derived}"

    def as_dict(self) -> dict[str, int | str | None]:
        return {
            "year": self.year,
            "column": self.column,
            "printed": self.printed,
            "derived": self.derived,
            "difference": self.difference,
            "line": self.line,
        }


@dataclass(frozen=True)
class DeadlineRow:
    """When a report is due: ``due_day`` of the month after the period, by ``reporter_type``,
    to ``recipient_id`` (the receiving unit's facility id) when the file names one."""

    report_type: str
    frequency: str
    due_day: int
    reporter_type: str
    recipient_id: str | None = None


@dataclass(frozen=True)
class RegistrySnapshot:
    """One consistent version of the reference files."""

    facilities: Mapping[str, FacilityRow]
    items: Mapping[str, ItemRow]
    targets: tuple[TargetRow, ...] = ()
    deadlines: Mapping[str, DeadlineRow] = field(default_factory=lambda: MappingProxyType({}))
    printed_totals: tuple[PrintedTotal, ...] = ()

    @functools.cached_property
    def _children(self) -> Mapping[str, tuple[str, ...]]:
        children: dict[str, list[str]] = {}
        for row in self.facilities.values():
            if row.parent_id is not None:
                children.setdefault(row.parent_id, []).append(row.facility_id)
        return {parent: tuple(ids) for parent, ids in children.items()}

    def children_of(self, facility_id: str) -> tuple[str, ...]:
        """Facilities whose parent is ``facility_id``, in file order."""
        return self._children.get(facility_id, ())

    def descendants_of(self, facility_id: str) -> set[str]:
        """``facility_id`` and every facility below it: the units a target's actuals roll up."""
        found = {facility_id}
        pending = [facility_id]
        while pending:
            for child in self.children_of(pending.pop()):
                if child not in found:
                    found.add(child)
                    pending.append(child)
        return found


# --------------------------------------------------------------------------------------------
# Reading CSV text.


@dataclass
class _Problems:
    """Collects problems across files so all of them are reported at once."""

    items: list[str] = field(default_factory=list)

    def add(self, file: str, line: int, column: str, problem: str) -> None:
        self.items.append(f"{file}:{line}: {column}: {problem}")


@dataclass(frozen=True)
class _Row:
    """One data row: stripped cells by column name, and its line for messages."""

    file: str
    line: int
    cells: Mapping[str, str]

    def __getitem__(self, column: str) -> str:
        return self.cells[column]


def _rows(file: str, text: str, problems: _Problems) -> Iterator[_Row]:
    """The data rows of one file, after checking its header against the contract's columns."""
    expected = COLUMNS[file]
    optional = OPTIONAL_COLUMNS.get(file, ())
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    header: list[str] | None = None
    for cells in reader:
        stripped = [cell.strip() for cell in cells]
        if not any(stripped):
            continue
        if header is None:
            header = stripped
            missing = [column for column in expected if column not in header]
            extra = [column for column in header if column not in (*expected, *optional)]
            duplicated = sorted({column for column in header if header.count(column) > 1})
            for column in missing:
                problems.add(file, reader.line_num, "header", f"missing column {column!r}")
            for column in extra:
                problems.add(file, reader.line_num, "header", f"unexpected column {column!r}")
            for column in duplicated:
                problems.add(file, reader.line_num, "header", f"column {column!r} repeated")
            if missing or extra or duplicated:
                return
            continue
        if len(stripped) != len(header):
            problems.add(
                file,
                reader.line_num,
                "row",
                f"{len(stripped)} cells, the header has {len(header)}",
            )
            continue
        row = dict.fromkeys(optional, "") | dict(zip(header, stripped, strict=True))
        yield _Row(file, reader.line_num, row)
    if header is None:
        problems.add(file, 1, "header", "file is empty; expected " + ",".join(expected))


def _check(
    row: _Row,
    column: str,
    problems: _Problems,
    convert: Callable[[str], _T | None],
    rule: str,
) -> _T | None:
    """Convert one cell; record ``rule`` as the problem when ``convert`` refuses (None)."""
    value = convert(row[column])
    if value is None:
        problems.add(row.file, row.line, column, f"{rule} (got {row[column][:60]!r})")
    return value


def _code(text: str) -> str | None:
    return text if _ID_RE.fullmatch(text) else None


def _non_empty(text: str) -> str | None:
    return text or None


def _one_of(choices: tuple[str, ...]) -> Callable[[str], str | None]:
    return lambda text: text if text in choices else None


def _positive_number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value > 0 else None


def _count(text: str) -> int | None:
    return int(text) if _INT_RE.fullmatch(text) else None


def _year(text: str) -> int | None:
    return int(text) if _YEAR_RE.fullmatch(text) else None


def _due_day(text: str) -> int | None:
    day = _count(text)
    return day if day is not None and 1 <= day <= 31 else None


def _day(text: str) -> date | None:
    if not _DAY_RE.fullmatch(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _frequency(text: str) -> str | None:
    return _FREQUENCY_SYNONYMS.get(text.lower().replace("-", "_").replace(" ", "_"))


_CODE_RULE = "must be 1–64 of A-Z, a-z, 0-9, '_', '.' or '-'"


# --------------------------------------------------------------------------------------------
# One parser per file.


def _parse_facilities(text: str, problems: _Problems) -> dict[str, FacilityRow]:
    file = "facilities.csv"
    facilities: dict[str, FacilityRow] = {}
    lines: dict[str, int] = {}
    for row in _rows(file, text, problems):
        facility_id = _check(row, "facility_id", problems, _code, _CODE_RULE)
        name = _check(row, "name", problems, _non_empty, "must not be empty")
        kind = _check(
            row,
            "type",
            problems,
            _one_of(FACILITY_TYPES),
            "must be one of " + ", ".join(FACILITY_TYPES),
        )
        parent_id = row["parent_id"] or None
        if parent_id is not None:
            _check(row, "parent_id", problems, _code, _CODE_RULE)
        live_from = None
        if row["live_from"]:
            live_from = _check(row, "live_from", problems, _day, "must be a date YYYY-MM-DD")
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
    facilities: Mapping[str, FacilityRow], lines: Mapping[str, int], problems: _Problems
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


def _parse_items(text: str, problems: _Problems) -> dict[str, ItemRow]:
    file = "items.csv"
    items: dict[str, ItemRow] = {}
    lines: dict[str, int] = {}
    for row in _rows(file, text, problems):
        item = _check(row, "item", problems, _code, _CODE_RULE)
        name = _check(row, "name", problems, _non_empty, "must not be empty")
        kind = _check(row, "kind", problems, _one_of(ITEM_KINDS), "must be medication or test_kit")
        unit = _check(row, "unit", problems, _non_empty, "must not be empty")
        mg_per_unit: float | None = None
        if kind == "medication":
            mg_per_unit = _check(
                row,
                "mg_per_unit",
                problems,
                _positive_number,
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


def _optional_count(row: _Row, column: str, problems: _Problems) -> tuple[bool, int | None]:
    """An empty target cell means 'no target'; anything else must be a whole number >= 0."""
    if not row[column]:
        return True, None
    value = _check(row, column, problems, _count, "must be a whole number >= 0 or empty")
    return value is not None, value


def is_total_marker(facility_id: str) -> bool:
    """Whether a targets.csv ``facility_id`` marks a printed totals row (TOTAL, Tổng, empty…)."""
    folded = " ".join(unicodedata.normalize("NFC", facility_id).casefold().split())
    return folded in TOTAL_MARKERS


def _parse_total(
    row: _Row, totals: dict[int, PrintedTotal], problems: _Problems
) -> PrintedTotal | None:
    """A printed totals row: one per year, cells empty or whole numbers like a target's."""
    file = row.file
    year = _check(row, "year", problems, _year, "must be a 4-digit year")
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
    text: str, facilities: Mapping[str, FacilityRow], problems: _Problems
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
        year = _check(row, "year", problems, _year, "must be a 4-digit year")
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
    text: str, facilities: Mapping[str, FacilityRow], problems: _Problems
) -> dict[str, DeadlineRow]:
    file = "deadlines.csv"
    deadlines: dict[str, DeadlineRow] = {}
    lines: dict[str, int] = {}
    for row in _rows(file, text, problems):
        report_type = _check(row, "report_type", problems, _code, _CODE_RULE)
        frequency = _check(
            row, "frequency", problems, _frequency, "must be one of " + ", ".join(FREQUENCIES)
        )
        due_day = _check(row, "due_day", problems, _due_day, "must be a day of the month 1–31")
        reporter_type = _check(
            row,
            "reporter_type",
            problems,
            _one_of(FACILITY_TYPES),
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
    problems = _Problems()
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
