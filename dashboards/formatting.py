"""Numbers and dates as Vietnamese readers write them: 1.234.567,5 and 24/03/2024."""

from __future__ import annotations

from datetime import UTC, date, datetime

from ostwatch.timeutil import LOCAL_TZ


def vi_number(value: float | None, decimals: int = 0) -> str:
    """Thousands separated by '.', decimals by ','; '—' for no value."""
    if value is None:
        return "—"
    text = f"{float(value):,.{decimals}f}"
    return text.replace(",", "\0").replace(".", ",").replace("\0", ".")


def vi_date(value: date | datetime | None, *, with_time: bool = False) -> str:
    """dd/mm/yyyy; an instant (ClickHouse hands them over in UTC) in local time."""
    if value is None:
        return "—"
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return aware.astimezone(LOCAL_TZ).strftime("%d/%m/%Y %H:%M" if with_time else "%d/%m/%Y")
    return value.strftime("%d/%m/%Y")
