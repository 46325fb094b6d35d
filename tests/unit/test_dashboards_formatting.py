"""Numbers and dates for Vietnamese readers (the live view; Grafana uses its own units)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from dashboards.formatting import vi_date, vi_number


@pytest.mark.parametrize(
    ("value", "decimals", "text"),
    [
        (1234567.5, 1, "1.234.567,5"),
        (1234567.5, 0, "1.234.568"),
        (0.25, 2, "0,25"),
        (-1500, 0, "-1.500"),
        (999, 0, "999"),
        (None, 1, "—"),
    ],
)
def test_vi_number(value: float | None, decimals: int, text: str) -> None:
    assert vi_number(value, decimals) == text


def test_vi_date_is_day_month_year_in_local_time() -> None:
    assert vi_date(date(2024, 3, 5)) == "05/03/2024"
    # 17:30 UTC on 4 March is 00:30 on 5 March in Hà Nội; ClickHouse hands over naive UTC.
    naive_utc = datetime(2024, 3, 4, 17, 30, tzinfo=UTC).replace(tzinfo=None)
    assert vi_date(naive_utc) == "05/03/2024"
    assert vi_date(datetime(2024, 3, 4, 17, 30, tzinfo=UTC), with_time=True) == "05/03/2024 00:30"
    assert vi_date(None) == "—"
