"""`replay verify` in process: a store rebuilt from the archive equals the live one, and a
live aggregate row altered behind the worker's back is found and named."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest

from producers.simulator import build_province, generate, write_registry
from sinks.replay import verify
from tests.support.intake import IntakeHarness

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IntakeHarness]:
    """Two simulated days of the province fed through the real intake, in batches."""
    registry_dir = tmp_path_factory.mktemp("registry")
    province = build_province(scale=0.2, seed=7, target_year=2024)
    write_registry(province, registry_dir)
    running = IntakeHarness(tmp_path_factory.mktemp("chdb"), registry_dir)
    docs = [item.event for item in generate(province, start=date(2024, 3, 1), days=2, seed=7)]
    running.feed(docs, batch_sizes=[500] * (len(docs) // 500))
    yield running
    running.drop()


def test_verify_is_equal_after_a_normal_ingest(harness: IntakeHarness) -> None:
    result = verify(harness.store)
    assert result.events > 1000
    assert result.differences == []
    assert result.equal and result.difference_count == 0
    assert result.checked["dispensing_daily"] > 0 and result.checked["report stock"] > 0
    # The scratch database is gone afterwards.
    databases = {row[0] for row in harness.db.query_rows("SHOW DATABASES")}
    assert not [name for name in databases if name.startswith(f"{harness.database}_replay")]


def test_verify_names_a_live_row_altered_in_clickhouse(harness: IntakeHarness) -> None:
    facility, day, mg = harness.db.query_rows(
        "SELECT facility_id, local_date, mg_observed FROM dispensing_daily FINAL "
        "WHERE mg_observed > 0 ORDER BY facility_id, local_date LIMIT 1"
    )[0]
    harness.db.command(
        "ALTER TABLE dispensing_daily UPDATE mg_observed = mg_observed + 5 "
        "WHERE facility_id = %(f)s AND local_date = %(d)s SETTINGS mutations_sync = 2",
        {"f": facility, "d": day},
    )
    try:
        result = verify(harness.store)
        assert not result.equal
        table_diffs = [d for d in result.differences if d.table == "dispensing_daily"]
        assert [(d.key, d.column, d.live, d.replayed) for d in table_diffs] == [
            ({"facility_id": facility, "local_date": day.isoformat()}, "mg_observed",
             mg + 5, mg)
        ]  # fmt: skip
        # The report built on that row differs too, on the same facility and day.
        report = [d for d in result.differences if d.table == "report dispensing"]
        assert [(d.key, d.column) for d in report] == [
            ({"facility_id": facility, "date": day.isoformat()}, "mg_observed")
        ]
        assert result.difference_count == 2
    finally:
        harness.db.command(
            "ALTER TABLE dispensing_daily UPDATE mg_observed = %(mg)s "
            "WHERE facility_id = %(f)s AND local_date = %(d)s SETTINGS mutations_sync = 2",
            {"f": facility, "d": day, "mg": mg},
        )
    assert verify(harness.store).equal


def test_verify_caps_the_list_but_counts_every_difference(harness: IntakeHarness) -> None:
    harness.db.command("TRUNCATE TABLE tests_daily")
    try:
        result = verify(harness.store, limit=3)
        assert len(result.differences) == 3
        missing = harness.db.query_rows(
            "SELECT uniqExact(facility_id, local_date) FROM events_archive "
            "WHERE event_type = 'test.performed'"
        )[0][0]
        assert missing > 3
        # Every tests_daily row is missing, plus the tests report rows it carried.
        assert result.difference_count >= missing
        assert all(d.column == "(row)" for d in result.differences)
    finally:
        harness.store.aggregates.rebuild()
