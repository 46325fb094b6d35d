"""Readable tables for people (the JSON output is for programs)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table


def format_number(value: Any) -> str:
    """Numbers the Vietnamese way: '.' between thousands, ',' before decimals."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "" if value is None else str(value)
    text = f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"
    return text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")


def format_cell(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {format_number(v)}" for k, v in value.items()) or "—"
    return format_number(value)


def print_table(
    title: str,
    columns: Sequence[str | tuple[str, str]],
    rows: Sequence[Mapping[str, Any]],
) -> None:
    """A rich table; a column is a row key, or (key, header) to show another header."""
    keys = [column if isinstance(column, str) else column[0] for column in columns]
    table = Table(title=title, title_justify="left")
    for column in columns:
        header = column if isinstance(column, str) else column[1]
        numeric = rows and isinstance(rows[0].get(keys[len(table.columns)]), int | float)
        table.add_column(header, overflow="fold", justify="right" if numeric else "left")
    for row in rows:
        table.add_row(*(format_cell(row.get(key)) for key in keys))
    Console().print(table)
    if not rows:
        Console(stderr=True).print("(không có dữ liệu / no rows)")
