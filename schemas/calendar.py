"""The reporting calendar of CONTRACT §2: the periods of each frequency and when each is due.

A period is written as ``report.submitted`` writes it: ``YYYY-MM`` (monthly), ``YYYY-Qn``
(quarterly), ``YYYY-H1``/``YYYY-H2`` (half-yearly) or ``YYYY`` (yearly). Its report is due
*before* ``due_day`` of the month after the period ends (seed 001: "trước ngày 25 hằng
tháng"), so the deadline is that day's local midnight, clamped to a short month's last day.
The alert engine, the live view and the monthly report's timeliness list all read deadlines
through these functions, so they cannot disagree on what is due when.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, date, datetime, time
from typing import Final
from zoneinfo import ZoneInfo

__all__ = [
    "FREQUENCIES",
    "LOCAL_TZ",
    "LOCAL_TZ_NAME",
    "due_instant",
    "period_bounds",
    "period_end_month",
    "periods_between",
    "periods_due_in",
]

FREQUENCIES: Final = ("monthly", "quarterly", "half_yearly", "yearly")
# Where the calendar's days are: CONTRACT §1, every day boundary is local. The one definition
# (ostwatch.timeutil passes it on to the rest of the code).
LOCAL_TZ_NAME: Final = "Asia/Ho_Chi_Minh"  # as SQL and Grafana name it
LOCAL_TZ: Final = ZoneInfo(LOCAL_TZ_NAME)
_PERIOD = re.compile(r"^(\d{4})(?:-(?:(0[1-9]|1[0-2])|Q([1-4])|H([12])))?$")


def period_bounds(period: str) -> tuple[date, date]:
    """The first and last local day of a period (ValueError for a malformed one)."""
    match = _PERIOD.match(period)
    if match is None:
        raise ValueError(f"not a period (YYYY-MM, YYYY-Qn, YYYY-H1/H2 or YYYY): {period!r}")
    year = int(match[1])
    if match[2]:
        first_month = last_month = int(match[2])
    elif match[3]:
        last_month = 3 * int(match[3])
        first_month = last_month - 2
    elif match[4]:
        last_month = 6 * int(match[4])
        first_month = last_month - 5
    else:
        first_month, last_month = 1, 12
    return date(year, first_month, 1), _month_end(year, last_month)


def period_end_month(period: str) -> tuple[int, int]:
    """(year, month) of a period's last month: 2024-03, 2024-Q1, 2024-H1, 2024-H2, 2024."""
    last = period_bounds(period)[1]
    return last.year, last.month


def _month_end(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def _local_midnight(day: date) -> datetime:
    return datetime.combine(day, time(), LOCAL_TZ).astimezone(UTC)


def due_instant(period: str, due_day: int) -> datetime:
    """A period's report is due *before* ``due_day`` of the month after it: the deadline is
    that day's local midnight, in UTC (a short month clamps the day to its last day)."""
    year, month = period_end_month(period)
    year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return _local_midnight(date(year, month, min(due_day, _month_end(year, month).day)))


def _periods_of_year(frequency: str, year: int) -> list[str]:
    if frequency == "yearly":
        return [str(year)]
    if frequency == "half_yearly":
        return [f"{year}-H1", f"{year}-H2"]
    if frequency == "quarterly":
        return [f"{year}-Q{quarter}" for quarter in range(1, 5)]
    return [f"{year}-{month:02d}" for month in range(1, 13)]


def periods_between(frequency: str, first: date, last: date) -> list[str]:
    """Every period of a frequency that ends on or after ``first`` and starts by ``last``."""
    found = []
    for year in range(first.year, last.year + 1):
        for period in _periods_of_year(frequency, year):
            start, end = period_bounds(period)
            if end >= first and start <= last:
                found.append(period)
    return found


def periods_due_in(frequency: str, year: int, month: int) -> list[str]:
    """The periods whose report falls due in local month ``year``-``month``: the period that
    ended with the month before (a quarter's in January, April, July and October)."""
    previous = (year - 1, 12) if month == 1 else (year, month - 1)
    last_day = _month_end(*previous)
    return [
        period
        for period in _periods_of_year(frequency, previous[0])
        if period_bounds(period)[1] == last_day
    ]
