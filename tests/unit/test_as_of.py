"""``--as-of`` outside what a report can answer is the caller's error, named in one line (a 400
over the API), never an OverflowError deep in the reports (issue 15: 0001-01-01 gave a 500)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from infra.application import common as api
from infra.application.reports import ReportRequest
from infra.cli.common import request


@pytest.mark.parametrize(
    "text",
    [
        "0001-01-01T00:00:00+00:00",  # .NET's DateTime.MinValue
        "1899-12-31T23:59:59+07:00",
        "9999-12-31T23:59:59+00:00",
        "2300-01-01T00:00:00+00:00",
    ],
)
def test_an_as_of_no_report_can_answer_is_refused_in_one_line(text: str) -> None:
    with pytest.raises(api.OperationError, match=r"^--as-of: must be between 1900-02-01 and"):
        api.parse_as_of(text)
    # The request refuses it, before any store or worker is asked.
    with pytest.raises(api.OperationError) as caught:
        request(ReportRequest, as_of=text)
    assert len(str(caught.value).splitlines()) == 1 and text in str(caught.value)
    assert str(caught.value).startswith("--as-of: must be between")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-12T23:59:59+07:00", datetime(2024, 3, 12, 16, 59, 59, tzinfo=UTC)),
        ("1900-02-01T00:00:00Z", datetime(1900, 2, 1, tzinfo=UTC)),
        ("2299-11-30T00:00:00Z", datetime(2299, 11, 30, tzinfo=UTC)),
    ],
)
def test_an_as_of_within_the_range_is_the_instant_given(text: str, expected: datetime) -> None:
    assert api.parse_as_of(text) == expected


@pytest.mark.parametrize("text", ["yesterday", "2024-03-12T23:59:59"])
def test_an_as_of_that_is_not_rfc3339_with_an_offset_is_refused(text: str) -> None:
    with pytest.raises(api.OperationError, match=r"^--as-of: "):
        api.parse_as_of(text)
