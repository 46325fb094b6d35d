"""Reading a registry's CSV text cell by cell: the header checked against the contract's
columns, each cell converted or refused with the contract's wording, and every problem
collected as ``file:line: column: problem`` so that all of them are reported at once.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Final, TypeVar

# Spellings a spreadsheet is likely to use for the same frequency.
# Spellings a spreadsheet is likely to use for the same frequency.
FREQUENCY_SYNONYMS: Final = {
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

# Registry ids (facility, parent, item, report type): letters, digits, '_', '.', '-', so an id
# can appear in an event (its codes are broader) and never starts a formula in a spreadsheet
# (``=1+1``), a shell word or markup when an operator's tools show it.
_ID_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_YEAR_RE = re.compile(r"\d{4}")
_INT_RE = re.compile(r"\d+")
_DAY_RE = re.compile(r"\d{4}-\d{2}-\d{2}")

_T = TypeVar("_T")


@dataclass
class Problems:
    """Collects problems across files so all of them are reported at once."""

    items: list[str] = field(default_factory=list)

    def add(self, file: str, line: int, column: str, problem: str) -> None:
        self.items.append(f"{file}:{line}: {column}: {problem}")


@dataclass(frozen=True)
class Row:
    """One data row: stripped cells by column name, and its line for messages."""

    file: str
    line: int
    cells: Mapping[str, str]

    def __getitem__(self, column: str) -> str:
        return self.cells[column]


def rows(
    file: str,
    text: str,
    problems: Problems,
    expected: Sequence[str],
    optional: Sequence[str] = (),
) -> Iterator[Row]:
    """The data rows of one file, after checking its header against the contract's columns
    (``expected``, each required; ``optional`` ones read as empty cells when absent)."""
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
        yield Row(file, reader.line_num, row)
    if header is None:
        problems.add(file, 1, "header", "file is empty; expected " + ",".join(expected))


def check(
    row: Row,
    column: str,
    problems: Problems,
    convert: Callable[[str], _T | None],
    rule: str,
) -> _T | None:
    """Convert one cell; record ``rule`` as the problem when ``convert`` refuses (None)."""
    value = convert(row[column])
    if value is None:
        problems.add(row.file, row.line, column, f"{rule} (got {row[column][:60]!r})")
    return value


def code(text: str) -> str | None:
    return text if _ID_RE.fullmatch(text) else None


def non_empty(text: str) -> str | None:
    return text or None


def one_of(choices: tuple[str, ...]) -> Callable[[str], str | None]:
    return lambda text: text if text in choices else None


def positive_number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value > 0 else None


def count(text: str) -> int | None:
    return int(text) if _INT_RE.fullmatch(text) else None


def year(text: str) -> int | None:
    return int(text) if _YEAR_RE.fullmatch(text) else None


def due_day(text: str) -> int | None:
    day = count(text)
    return day if day is not None and 1 <= day <= 31 else None


def day(text: str) -> date | None:
    if not _DAY_RE.fullmatch(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def frequency(text: str) -> str | None:
    return FREQUENCY_SYNONYMS.get(text.lower().replace("-", "_").replace(" ", "_"))


CODE_RULE = "must be 1–64 of A-Z, a-z, 0-9, '_', '.' or '-'"
