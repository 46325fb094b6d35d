"""Reports as files other systems and spreadsheets read: CSV and xlsx, from the JSON rows.

Every ``report`` answers rows of JSON; this module lays them out as tables without changing
a figure. Nested objects (``positive``, ``discharged``, an alert's ``details``) become one
column per key, ``positive.opiates``; lists become their JSON text. CSV is for programs: one
header row of field names, UTF-8. An xlsx sheet is for people and programs alike: row 1 the
Vietnamese label of each column, row 2 its field name (English, as in the JSON and CSV),
data from row 3, numbers stored as numbers, the header rows frozen.

Workbooks are written with XlsxWriter (write-only, streaming; a national monthly report is a
few thousand rows), never read back here.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import xlsxwriter

from infra.labels import MONTHLY_COLUMNS, NESTED_KEYS
from ostwatch import csv_safe
from schemas.labels import FIELD_LABELS, LIST_TITLES, NESTED_LABELS

__all__ = [
    "Sheet",
    "csv_text",
    "flatten",
    "monthly_csv_files",
    "monthly_workbook",
    "report_sheet",
    "workbook_bytes",
]

MAX_SHEET_NAME = 31  # Excel's limit


@dataclass(frozen=True)
class Sheet:
    """One table: its name (a sheet of a workbook, a file of a CSV directory), its columns
    (field names, flattened) and its rows (flattened)."""

    name: str
    columns: tuple[str, ...]
    rows: tuple[Mapping[str, Any], ...]


def _flat_value(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return orjson.dumps(value).decode()
    return value


def flatten(row: Mapping[str, Any]) -> dict[str, Any]:
    """One level of nesting unfolded: ``{"positive": {"opiates": 2}}`` → ``positive.opiates``."""
    flat: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, Mapping):
            for inner, item in value.items():
                flat[f"{key}.{inner}"] = _flat_value(item)
        else:
            flat[key] = _flat_value(value)
    return flat


def _columns(rows: Sequence[Mapping[str, Any]], preferred: Sequence[str] = ()) -> tuple[str, ...]:
    """The columns of flattened rows: ``preferred`` first (a nested field in place, its known
    keys in order, then any other key it has, sorted), then whatever else appears."""
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(flatten(row)))
    ordered: list[str] = []
    for name in preferred:
        if name in NESTED_KEYS:
            known = [f"{name}.{key}" for key in NESTED_KEYS[name]]
            extra = sorted(c for c in seen if c.startswith(f"{name}.") and c not in known)
            ordered += [*known, *extra]
        else:
            ordered.append(name)
    return tuple(ordered + [c for c in seen if c not in ordered])


def _sheet(name: str, rows: Sequence[Mapping[str, Any]], preferred: Sequence[str] = ()) -> Sheet:
    columns = _columns(rows, preferred)
    nested = {c for c in columns if "." in c and c.split(".", 1)[0] in NESTED_KEYS}
    flat_rows = []
    for row in rows:
        flat = flatten(row)
        # A count absent from a nested object is a zero (only keys with ≥ 1 are listed).
        flat_rows.append({c: flat.get(c, 0 if c in nested else None) for c in columns})
    return Sheet(name, columns, tuple(flat_rows))


def report_sheet(name: str, rows: Sequence[Mapping[str, Any]]) -> Sheet:
    """A report's JSON rows as one table, in the rows' own field order."""
    preferred = list(rows[0]) if rows else []
    return _sheet(name, rows, preferred)


def csv_text(sheet: Sheet) -> str:
    """The table as CSV: a header of field names, then one line per row (empty for None)."""
    out = io.StringIO()
    writer = csv_safe.writer(out, lineterminator="\n")
    writer.writerow(sheet.columns)
    for row in sheet.rows:
        writer.writerow(["" if row[c] is None else _csv_cell(row[c]) for c in sheet.columns])
    return out.getvalue()


def _csv_cell(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def label_vi(column: str) -> str:
    """The Vietnamese header of a (flattened) column; the field name itself if none."""
    if column in FIELD_LABELS:
        return FIELD_LABELS[column]
    head, _, key = column.partition(".")
    if key and head in NESTED_LABELS:
        return f"{NESTED_LABELS[head]}: {FIELD_LABELS.get(f'{head}.{key}', key)}"
    return column


def workbook_bytes(sheets: Iterable[Sheet], properties: Mapping[str, str] | None = None) -> bytes:
    """An xlsx workbook, one sheet per table: Vietnamese labels, field names, the rows."""
    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True, "strings_to_numbers": False})
    if properties:
        book.set_properties(dict(properties))
    header_vi = book.add_format({"bold": True, "text_wrap": True, "valign": "top"})
    header_en = book.add_format({"italic": True, "font_color": "#555555"})
    for sheet in sheets:
        page = book.add_worksheet(sheet.name[:MAX_SHEET_NAME])
        for col, column in enumerate(sheet.columns):
            page.write_string(0, col, label_vi(column), header_vi)
            page.write_string(1, col, column, header_en)
            page.set_column(col, col, max(12, min(40, len(label_vi(column)) + 2)))
        for row_index, row in enumerate(sheet.rows, start=2):
            for col, column in enumerate(sheet.columns):
                _write_cell(page, row_index, col, row[column])
        page.freeze_panes(2, 0)
        if sheet.rows:
            page.autofilter(1, 0, 1 + len(sheet.rows), max(len(sheet.columns) - 1, 0))
    book.close()
    return out.getvalue()


def _write_cell(page: Any, row: int, col: int, value: Any) -> None:
    if value is None:
        page.write_blank(row, col, None)
    elif isinstance(value, bool):
        page.write_boolean(row, col, value)
    elif isinstance(value, int | float):
        page.write_number(row, col, value)
    else:
        page.write_string(row, col, str(value))


# -- the monthly report -----------------------------------------------------------------


def _with_names(
    document: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Rows with the unit's name beside its id (xlsx is read by people too)."""
    names = {unit["facility_id"]: unit["name"] for unit in document.get("units", ())}
    return [
        {"facility_id": row["facility_id"], "facility_name": names.get(row["facility_id"], "")}
        | dict(row)
        for row in rows
    ]


def monthly_sheets(document: Mapping[str, Any], *, names: bool) -> list[Sheet]:
    """The monthly report's five lists as tables, in the JSON's field order."""
    sheets = []
    for name, columns in MONTHLY_COLUMNS.items():
        rows = _with_names(document, document[name]) if names else document[name]
        preferred = (
            ["facility_id", "facility_name", *columns] if names else ["facility_id", *columns]
        )
        sheets.append(_sheet(name, rows, preferred))
    return sheets


def monthly_csv_files(document: Mapping[str, Any]) -> dict[str, str]:
    """``<list>.csv`` → its text, one file per list (CONTRACT §6)."""
    return {f"{sheet.name}.csv": csv_text(sheet) for sheet in monthly_sheets(document, names=False)}


def monthly_workbook(document: Mapping[str, Any]) -> bytes:
    """The monthly report as xlsx: one sheet per list, unit names beside their ids."""
    title = f"Báo cáo tháng {document['period']} / Monthly report {document['period']}"
    return workbook_bytes(
        monthly_sheets(document, names=True),
        {
            "title": title,
            "subject": ", ".join(LIST_TITLES[name][1] for name in MONTHLY_COLUMNS),
            "comments": f"ostwatch, as of {document.get('as_of')}, generated "
            f"{datetime.now().astimezone().isoformat(timespec='seconds')}",
        },
    )
