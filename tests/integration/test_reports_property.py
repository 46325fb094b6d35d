"""For random event streams — late, out of order, resent with other content, mixed with
rejected lines, in random batches and framings, some batches redelivered — every report
from the live aggregates equals the same report recomputed from the archive alone, and
both equal a plain Python recomputation (tests/support/oracle.py), at several moments T.

Examples: ``OSTWATCH_PROPERTY_EXAMPLES`` (default 20), derandomised in CI
(tests/support/properties.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import strategies as st

from tests.fixtures.strategies import EventStream, event_streams, report_moments
from tests.support.compare import assert_same_json
from tests.support.intake import REGISTRY, IntakeHarness
from tests.support.oracle import recompute
from tests.support.properties import play, property_settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def harness(chdb_dir: Path) -> Iterator[IntakeHarness]:
    """One database for the whole property test, emptied before each example."""
    intake = IntakeHarness(chdb_dir)
    yield intake
    intake.drop()


@property_settings(20, HealthCheck.data_too_large)
@given(stream=event_streams(), data=st.data())
def test_aggregates_archive_and_recomputation_agree(
    harness: IntakeHarness, stream: EventStream, data: st.DataObject
) -> None:
    play(harness, stream)

    accepted = stream.valid_docs  # in arrival order; the oracle keeps each event_id's first
    assert harness.accepted_ids() == {doc["event_id"].lower() for doc in accepted}

    as_ofs: list[datetime | None] = [None]
    as_ofs += data.draw(st.lists(report_moments(stream), min_size=2, max_size=3), label="as_of")
    for as_of in as_ofs:
        expected: dict[str, Any] = recompute(accepted, REGISTRY, as_of)
        for source in ("aggregates", "archive"):
            actual = harness.reports(source, as_of)
            assert_same_json(actual, expected, f"{source} as of {as_of}")
