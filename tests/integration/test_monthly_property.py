"""For random event streams — late, out of order, resent (some with other content), with
transfers between facilities, physical counts and rejected lines, in random batches, some
redelivered — the monthly report (CONTRACT §6) from the live aggregates and from the archive
alone both equal an independent recomputation in plain Python
(tests/support/monthly_oracle.py), and both identities of §6 hold on every row, for random
periods, units and moments T.

Examples: ``OSTWATCH_PROPERTY_EXAMPLES`` (default 15), derandomised in CI
(tests/support/properties.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import strategies as st

from sinks.monthly import LISTS, MonthlyReport
from sinks.reports import Reports, Scope
from tests.fixtures.strategies import EventStream, event_streams, report_moments
from tests.support.compare import assert_same_json
from tests.support.intake import REGISTRY, IntakeHarness
from tests.support.monthly_oracle import monthly
from tests.support.oracle import tests as oracle_tests
from tests.support.properties import play, property_settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# The streams span 29 December 2024 – 2 January 2025 local, with a few older December days.
PERIODS = ("2024-12", "2025-01", "2024-11")
UNITS = (None, None, "CDC-01", "DHC-01", "DHC-02", "TF-01", "CHS-01")


@pytest.fixture(scope="module")
def harness(chdb_dir: Path) -> Iterator[IntakeHarness]:
    intake = IntakeHarness(chdb_dir)
    yield intake
    intake.drop()


def assert_identities(document: dict[str, Any]) -> None:
    """Both identities of CONTRACT §6, on every row."""
    for row in document["patients"]:
        flows = (
            row["active_start"]
            + row["enrolled"]
            + row["transferred_in"]
            - row["transferred_out"]
            - sum(row["discharged"].values())
        )
        assert flows == row["active_end"], row
        assert row["take_home_end"] <= row["active_end"], row
    for row in document["stock"]:
        ledger = (
            row["opening"]
            + row["received"]
            + row["adjusted"]
            - row["used"]
            + row["count_difference"]
        )
        assert round(ledger, 6) == pytest.approx(row["closing"], abs=2e-6), row


@property_settings(15, HealthCheck.data_too_large)
@given(stream=event_streams(), data=st.data())
def test_monthly_report_equals_a_recomputation_and_keeps_its_identities(
    harness: IntakeHarness, stream: EventStream, data: st.DataObject
) -> None:
    play(harness, stream)
    for _ in range(2):
        period = data.draw(st.sampled_from(PERIODS), label="period")
        unit = data.draw(st.sampled_from(UNITS), label="unit")
        as_of = data.draw(st.none() | report_moments(stream), label="as_of")
        expected = monthly(stream.valid_docs, REGISTRY, period, unit, as_of)
        for source in ("aggregates", "archive"):
            document = MonthlyReport(harness.db, harness.store.registry, source).answer(
                period, unit, as_of
            )
            label = f"{source} {period} unit {unit} as of {as_of}"
            assert_same_json({name: document[name] for name in LISTS}, expected, label)
            assert_identities(document)


@property_settings(10, HealthCheck.data_too_large)
@given(stream=event_streams(), data=st.data())
def test_tests_by_purpose_equal_a_recomputation(
    harness: IntakeHarness, stream: EventStream, data: st.DataObject
) -> None:
    """`report tests --by purpose` (read from the archive) against the plain recomputation,
    and adding up to the by-month report (read from the daily aggregates)."""
    play(harness, stream)
    as_of = data.draw(st.none() | report_moments(stream), label="as_of")
    reports = Reports(harness.db, harness.store.registry, "aggregates")
    by_purpose = reports.tests(as_of, Scope(), by="purpose")
    assert_same_json(by_purpose, oracle_tests(stream.valid_docs, as_of, by="purpose"))
    totals: dict[tuple[str, str], int] = {}
    for row in by_purpose:
        key = (row["facility_id"], row["month"])
        totals[key] = totals.get(key, 0) + row["tests"]
    by_month = reports.tests(as_of, Scope())
    assert totals == {(r["facility_id"], r["month"]): r["tests"] for r in by_month}
