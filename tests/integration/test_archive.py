"""The portable archive in process: Avro files any reader takes, an exact round trip into
a fresh store (every report equal), duplicates ignored on re-import, and export filters."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import fastavro
import pytest

from producers.simulator import build_province, generate, write_registry
from sinks.archive import ArchiveError, Filters, export, import_archive
from sinks.replay import REPORT_KEYS, verify
from sinks.reports import Reports, Scope
from sinks.store import Store
from tests.support.intake import IntakeHarness

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IntakeHarness]:
    """Three simulated days of the province, fed through the real intake."""
    registry_dir = tmp_path_factory.mktemp("registry")
    province = build_province(scale=0.2, seed=11, target_year=2024)
    write_registry(province, registry_dir)
    running = IntakeHarness(tmp_path_factory.mktemp("chdb"), registry_dir)
    # Across a month end, so that a facility has two monthly files.
    docs = [item.event for item in generate(province, start=date(2024, 3, 30), days=3, seed=11)]
    running.feed(docs, batch_sizes=[1000] * (len(docs) // 1000))
    yield running
    running.drop()


@pytest.fixture
def fresh(harness: IntakeHarness) -> Iterator[Store]:
    """An empty, migrated store beside the harness's (another database, same engine)."""
    db = harness.db.sibling(f"t_{uuid.uuid4().hex[:12]}")
    store = Store(db)
    store.migrate()
    yield store
    db.command(f"DROP DATABASE IF EXISTS `{db.database}`")
    db.close()


def all_reports(store: Store, as_of: datetime | None = None) -> dict[str, object]:
    reports = Reports(store.db, store.registry, "aggregates")
    return {name: getattr(reports, name)(as_of, Scope()) for name in REPORT_KEYS}


def test_files_are_plain_avro_with_every_archived_event(
    harness: IntakeHarness, tmp_path: Path
) -> None:
    result = export(harness.store, tmp_path / "out", Filters())
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    archived = dict(harness.db.query_rows("SELECT toString(event_id), payload FROM events_archive"))
    assert result["events"] == manifest["events"] == len(archived) > 1000
    months = {entry["month"] for entry in manifest["files"]}
    # The run's two months, and the past months its opening register is dated in.
    assert months == {json.loads(payload)["occurred_at"][:7] for payload in archived.values()}
    assert {"2024-03", "2024-04"} <= months and len(months) > 2
    seen: dict[str, str] = {}
    for entry in manifest["files"]:
        with (tmp_path / "out" / entry["path"]).open("rb") as handle:
            reader = fastavro.reader(handle)
            assert reader.metadata["avro.codec"] == "deflate"
            fields = {field["name"]: field["type"] for field in reader.writer_schema["fields"]}
            records = list(reader)
        assert fields["payload"] == "string" and fields["event_id"]["logicalType"] == "uuid"
        assert len(records) == entry["events"]
        for record in records:
            assert record["facility_id"] == entry["facility_id"]
            assert record["local_date"].isoformat()[:7] == entry["month"]
            seen[str(record["event_id"])] = record["payload"]
    assert seen == archived  # every event once, its canonical payload byte for byte
    with (tmp_path / "out" / "registry.avro").open("rb") as handle:
        versions = list(fastavro.reader(handle))
    assert [v["version"] for v in versions] == [1]
    assert set(versions[0]["files"]) >= {"facilities.csv", "items.csv"}


def test_import_into_an_empty_store_reproduces_every_report(
    harness: IntakeHarness, fresh: Store, tmp_path: Path
) -> None:
    export(harness.store, tmp_path / "out", Filters())
    first = import_archive(fresh, tmp_path / "out")
    events = harness.db.query_rows("SELECT count() FROM events_archive")[0][0]
    assert first["imported"] == events and first["duplicates"] == 0
    assert first["registry_versions"] == 1
    assert all(all_reports(harness.store).values())  # every report has rows to compare
    assert all_reports(fresh) == all_reports(harness.store)
    as_of = datetime(2024, 3, 31, 9, 30, tzinfo=UTC)
    assert all_reports(fresh, as_of) == all_reports(harness.store, as_of)
    # The archive rows themselves came back exactly (payload, times, Kafka coordinates).
    columns = "toString(event_id), occurred_at, occurred_at_text, received_at, payload, " \
        "source, seq, kafka_partition, kafka_offset, results, expiry_date"  # fmt: skip
    query = f"SELECT {columns} FROM events_archive ORDER BY event_id"  # noqa: S608
    assert fresh.db.query_rows(query) == harness.db.query_rows(query)
    assert verify(fresh).equal

    again = import_archive(fresh, tmp_path / "out")
    assert again["imported"] == 0 and again["duplicates"] == events
    assert again["registry"].startswith("kept this store's")
    assert fresh.db.query_rows("SELECT count() FROM events_archive")[0][0] == events
    assert all_reports(fresh) == all_reports(harness.store)


def test_import_adds_only_new_events_to_a_store_that_has_some(
    harness: IntakeHarness, fresh: Store, tmp_path: Path
) -> None:
    """Half the facilities first, then everything: the overlap counts as duplicates and
    the aggregates of the store that already had data are brought level."""
    facilities = sorted(
        row[0] for row in harness.db.query_rows("SELECT DISTINCT facility_id FROM events_archive")
    )
    half = tuple(facilities[: len(facilities) // 2])
    part = export(harness.store, tmp_path / "part", Filters(facilities=half))
    export(harness.store, tmp_path / "all", Filters())
    assert import_archive(fresh, tmp_path / "part")["imported"] == part["events"]
    result = import_archive(fresh, tmp_path / "all")
    assert result["duplicates"] == part["events"]
    assert all_reports(fresh) == all_reports(harness.store)
    assert verify(fresh).equal


def test_events_repeated_across_files_are_imported_once(
    harness: IntakeHarness, fresh: Store, tmp_path: Path
) -> None:
    """A hand-assembled directory: one file copied under another facility's name (no
    manifest matches it). Every event still lands once and the reports are the source's."""
    export(harness.store, tmp_path / "out", Filters())
    files = sorted((tmp_path / "out" / "events").glob("*/*.avro"))
    copy = tmp_path / "out" / "events" / "ZZ-COPY" / files[0].name
    copy.parent.mkdir()
    copy.write_bytes(files[0].read_bytes())
    with files[0].open("rb") as handle:
        repeated = sum(1 for _ in fastavro.reader(handle))
    result = import_archive(fresh, tmp_path / "out")
    events = harness.db.query_rows("SELECT count() FROM events_archive")[0][0]
    assert result["imported"] == events and result["duplicates"] == repeated > 0
    assert fresh.db.query_rows("SELECT count(), uniqExact(event_id) FROM events_archive") == [
        (events, events)
    ]
    assert all_reports(fresh) == all_reports(harness.store)
    assert verify(fresh).equal


def test_export_filters_and_refusals(harness: IntakeHarness, tmp_path: Path) -> None:
    as_of = datetime(2024, 3, 31, 12, 0, tzinfo=UTC)
    result = export(harness.store, tmp_path / "early", Filters(as_of=as_of))
    expected = harness.db.query_rows(
        "SELECT count() FROM events_archive WHERE occurred_at <= %(t)s", {"t": as_of}
    )[0][0]
    assert 0 < result["events"] == expected
    latest = max(
        record["occurred_at"]
        for path in (tmp_path / "early" / "events").glob("*/*.avro")
        for record in fastavro.reader(path.open("rb"))
    )
    assert latest <= as_of
    april = export(harness.store, tmp_path / "april", Filters(date_from=date(2024, 4, 1)))
    assert {p.name for p in (tmp_path / "april" / "events").glob("*/*.avro")} == {"2024-04.avro"}
    assert april["events"] > 0
    with pytest.raises(ArchiveError, match="not empty"):
        export(harness.store, tmp_path / "april", Filters())
    with pytest.raises(ArchiveError, match="no events"):
        import_archive(harness.store, tmp_path)
