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


def print_table(title: str, columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> None:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(format_number(row.get(column)) for column in columns))
    Console().print(table)
    if not rows:
        Console(stderr=True).print("(không có dữ liệu / no rows)")
