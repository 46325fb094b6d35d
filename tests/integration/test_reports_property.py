"""For random event streams — late, out of order, resent with other content, mixed with
rejected lines, in random batches and framings, some batches redelivered — every report
from the live aggregates equals the same report recomputed from the archive alone, and
both equal a plain Python recomputation (tests/support/oracle.py), at several moments T.

Examples: ``OSTWATCH_PROPERTY_EXAMPLES`` (default 20), derandomised in CI
(tests/support/properties.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import strategies as st

from tests.fixtures.strategies import (
    LOCAL_MIDNIGHTS,
    NEW_YEAR,
    OLD_INSTANTS,
    VIETNAM,
    EventStream,
    event_streams,
    span_instants,
)
from tests.support.compare import assert_same_json
from tests.support.intake import REGISTRY, IntakeHarness
from tests.support.oracle import recompute
from tests.support.properties import play, property_settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

_MS = timedelta(milliseconds=1)


@pytest.fixture(scope="module")
def harness(chdb_dir: Path) -> Iterator[IntakeHarness]:
    """One database for the whole property test, emptied before each example."""
    intake = IntakeHarness(chdb_dir)
    yield intake
    intake.drop()


def moments(stream: EventStream) -> st.SearchStrategy[datetime]:
    """Interesting T: anywhere, exact event instants and just before them, local midnights,
    the new year, old days; spelled in UTC, local time or another offset."""
    instants = sorted({datetime.fromisoformat(doc["occurred_at"]) for doc in stream.valid_docs})
    choices = [
        span_instants,
        st.sampled_from(LOCAL_MIDNIGHTS),
        st.sampled_from((NEW_YEAR - _MS, NEW_YEAR)),
        st.sampled_from(OLD_INSTANTS),
    ]
    if instants:
        exact = st.sampled_from(instants)
        choices += [exact, exact, exact.map(lambda at: at - _MS)]
    offsets = st.sampled_from((UTC, VIETNAM, VIETNAM, timezone(timedelta(hours=-5))))
    return st.tuples(st.one_of(choices), offsets).map(lambda pair: pair[0].astimezone(pair[1]))


@property_settings(20, HealthCheck.data_too_large)
@given(stream=event_streams(), data=st.data())
def test_aggregates_archive_and_recomputation_agree(
    harness: IntakeHarness, stream: EventStream, data: st.DataObject
) -> None:
    play(harness, stream)

    accepted = stream.valid_docs  # in arrival order; the oracle keeps each event_id's first
    assert harness.accepted_ids() == {doc["event_id"].lower() for doc in accepted}

    as_ofs: list[datetime | None] = [None]
    as_ofs += data.draw(st.lists(moments(stream), min_size=2, max_size=3), label="as_of")
    for as_of in as_ofs:
        expected: dict[str, Any] = recompute(accepted, REGISTRY, as_of)
        for source in ("aggregates", "archive"):
            actual = harness.reports(source, as_of)
            assert_same_json(actual, expected, f"{source} as of {as_of}")
