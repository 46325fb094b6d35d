"""The one CSV writer for files people open in a spreadsheet: no cell becomes a formula.

Excel, LibreOffice and Google Sheets run a cell that starts with ``=``, ``+``, ``-`` or ``@``
(and, in some, a tab or carriage return) as a formula, so a facility name or an id such as
``=HYPERLINK(…)`` or ``=cmd|' /C calc'!A0`` in a CSV written by ostwatch would run on the
reader's machine (CSV injection, OWASP). Every text cell starting with one of those characters
gets a leading ``'`` (the spreadsheets' "this is text" mark). Numbers are left alone, and so is
text that is a plain number ("-12.5"): a spreadsheet reads those as numbers, not formulas,
and a program reading the CSV gets them back unchanged.

Every CSV the CLI writes (``audit ledger --format csv``, reports, maps, notices) goes through
``writer``/``dict_writer`` here.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Collection, Iterable, Mapping
from typing import IO, Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def safe_cell(value: Any) -> Any:
    """``value`` as it may go into a CSV cell: text that a spreadsheet would run, quoted."""
    formula = isinstance(value, str) and value.startswith(FORMULA_STARTS)
    return "'" + value if formula and not _PLAIN_NUMBER.fullmatch(value) else value


def plain_cell(text: str) -> str:
    """The value :func:`safe_cell` quoted, back as it was (for CSV files we read again)."""
    if text.startswith("'") and text[1:].startswith(FORMULA_STARTS):
        return text[1:]
    return text


class SafeWriter:
    """``csv.writer`` whose rows pass through :func:`safe_cell`."""

    def __init__(self, handle: IO[str], **options: Any) -> None:
        self._writer = csv.writer(handle, **options)

    def writerow(self, row: Iterable[Any]) -> None:
        self._writer.writerow([safe_cell(value) for value in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


class SafeDictWriter:
    """``csv.DictWriter`` whose values pass through :func:`safe_cell` (headers are ours)."""

    def __init__(self, handle: IO[str], fieldnames: Collection[str], **options: Any) -> None:
        self._writer = csv.DictWriter(handle, fieldnames=list(fieldnames), **options)

    def writeheader(self) -> None:
        self._writer.writeheader()

    def writerow(self, row: Mapping[str, Any]) -> None:
        self._writer.writerow({key: safe_cell(value) for key, value in row.items()})

    def writerows(self, rows: Iterable[Mapping[str, Any]]) -> None:
        for row in rows:
            self.writerow(row)


def writer(handle: IO[str], **options: Any) -> SafeWriter:
    return SafeWriter(handle, **options)


def dict_writer(handle: IO[str], fieldnames: Collection[str], **options: Any) -> SafeDictWriter:
    return SafeDictWriter(handle, fieldnames, **options)
