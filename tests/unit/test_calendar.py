"""The reporting calendar (schemas/calendar.py): periods of every frequency and their due."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from schemas.calendar import due_instant, period_bounds, periods_between, periods_due_in


@pytest.mark.parametrize(
    ("period", "first", "last"),
    [
        ("2024-02", date(2024, 2, 1), date(2024, 2, 29)),
        ("2024-Q1", date(2024, 1, 1), date(2024, 3, 31)),
        ("2024-Q4", date(2024, 10, 1), date(2024, 12, 31)),
        ("2024-H1", date(2024, 1, 1), date(2024, 6, 30)),
        ("2024-H2", date(2024, 7, 1), date(2024, 12, 31)),
        ("2024", date(2024, 1, 1), date(2024, 12, 31)),
    ],
)
def test_period_bounds(period: str, first: date, last: date) -> None:
    assert period_bounds(period) == (first, last)


@pytest.mark.parametrize("bad", ["2024-Q5", "2024-13", "2024-H3", "24-01", "2024-Q1x"])
def test_malformed_periods_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="not a period"):
        period_bounds(bad)


def test_a_quarter_is_due_in_the_month_after_it() -> None:
    assert due_instant("2024-Q1", 25) == datetime(2024, 4, 24, 17, 0, tzinfo=UTC)
    assert due_instant("2024-Q4", 31) == datetime(2025, 1, 30, 17, 0, tzinfo=UTC)


def test_periods_between_covers_quarters() -> None:
    assert periods_between("quarterly", date(2024, 2, 10), date(2024, 7, 1)) == [
        "2024-Q1",
        "2024-Q2",
        "2024-Q3",
    ]


@pytest.mark.parametrize(
    ("frequency", "year", "month", "expected"),
    [
        ("monthly", 2024, 4, ["2024-03"]),
        ("monthly", 2024, 1, ["2023-12"]),
        ("quarterly", 2024, 4, ["2024-Q1"]),
        ("quarterly", 2024, 1, ["2023-Q4"]),
        ("quarterly", 2024, 5, []),
        ("half_yearly", 2024, 7, ["2024-H1"]),
        ("half_yearly", 2025, 1, ["2024-H2"]),
        ("half_yearly", 2024, 3, []),
        ("yearly", 2025, 1, ["2024"]),
        ("yearly", 2025, 2, []),
    ],
)
def test_periods_due_in_a_month(frequency: str, year: int, month: int, expected: list[str]) -> None:
    assert periods_due_in(frequency, year, month) == expected
