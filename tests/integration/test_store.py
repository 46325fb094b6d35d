"""The store against the real ClickHouse engine (chDB): idempotent writes and registry history."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from schemas.models import parse_event_dict
from sinks.clickhouse import migration_files
from sinks.records import Accepted, IntakeBatch, MessageMeta, Rejected
from sinks.store import Store
from streams.intake.seen import filter_key
from tests.fixtures.contract_cases import VALID_EVENTS

pytestmark = pytest.mark.integration
REGISTRY_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "registry"


def batch_of(source: str, docs: list[dict]) -> IntakeBatch:
    now = datetime.now(UTC)
    return IntakeBatch(
        accepted=[
            Accepted(parse_event_dict(doc), MessageMeta(source, n, "t", 0, n, now))
            for n, doc in enumerate(docs, start=1)
        ]
    )


def test_migrations_apply_once(store: Store) -> None:
    assert store.migrate() == []
    versions = store.db.query_rows("SELECT version FROM schema_migrations ORDER BY version")
    assert [v for (v,) in versions] == [v for v, _, _ in migration_files()]


def test_a_retried_batch_does_not_double_anything(store: Store) -> None:
    batch = batch_of("ingest:retry", VALID_EVENTS)
    store.write_intake(batch)
    store.write_intake(batch)  # the worker retries the identical batch after a failure
    archived = store.db.query_rows("SELECT count() FROM events_archive")[0][0]
    assert archived == len(VALID_EVENTS)
    assert store.submission_counts("ingest:retry") == {
        "accepted": len(VALID_EVENTS),
        "rejected": 0,
        "duplicates": 0,
    }
    assert archived_ids(store) == {filter_key(parse_event_dict(d).event_id) for d in VALID_EVENTS}


def archived_ids(store: Store) -> set[int]:
    """The duplicate filter's keys of the archive, each exactly once."""
    keys = [key for block in store.archived_event_keys() for key in block]
    assert len(keys) == len(set(keys))
    return set(keys)


def test_the_archive_gives_the_filter_keys_the_intake_computes(store: Store) -> None:
    """ClickHouse and ``filter_key`` agree, so the warm-up streams numbers, not ids."""
    store.write_intake(batch_of("ingest:keys", VALID_EVENTS))
    expected = {filter_key(parse_event_dict(d).event_id) for d in VALID_EVENTS}
    assert archived_ids(store) == expected and None not in expected


def test_an_event_archived_under_another_facility_is_found(store: Store) -> None:
    """A re-send under another facility_id is still the same event_id: a duplicate."""
    store.write_intake(batch_of("ingest:first", VALID_EVENTS[:1]))
    event = parse_event_dict(VALID_EVENTS[0])
    never_sent = str(uuid.uuid4())
    found = store.archived_submission_of([("ELSEWHERE", event.event_id), ("X", never_sent)])
    assert found == {event.event_id: ("ingest:first", 1)}


def test_archive_keeps_event_time_local_day_and_arrival(store: Store) -> None:
    doc = dict(VALID_EVENTS[0], occurred_at="2024-03-05T23:30:00+07:00")
    store.write_intake(batch_of("ingest:time", [doc]))
    occurred, text, local_day, received = store.db.query_rows(
        "SELECT occurred_at, occurred_at_text, local_date, received_at FROM events_archive"
    )[0]
    assert occurred.replace(tzinfo=UTC) == datetime(2024, 3, 5, 16, 30, tzinfo=UTC)
    assert text == "2024-03-05T23:30:00+07:00"
    assert str(local_day) == "2024-03-05"
    assert received.year >= 2024


def test_redelivered_rejection_is_listed_once(store: Store) -> None:
    meta = MessageMeta("ingest:bad:f.jsonl", 3, "t", 0, 9, datetime.now(UTC))
    rejected = Rejected(meta, "not JSON: empty line", b"", b"")
    store.write_intake(IntakeBatch(rejected=[rejected]))
    store.write_intake(IntakeBatch(rejected=[rejected]))
    rows = store.rejected()
    assert [(r["line"], r["reason"]) for r in rows] == [(3, "not JSON: empty line")]


def test_registry_versions_are_kept(store: Store) -> None:
    texts = {p.name: p.read_text(encoding="utf-8") for p in REGISTRY_DIR.glob("*.csv")}
    first = store.load_registry(texts, "one")
    assert (first.version, first.unchanged) == (1, False)
    assert store.load_registry(texts, "again").unchanged is True
    texts["items.csv"] += "KIT-X,Another kit,test_kit,kit,\n"
    second = store.load_registry(texts, "two")
    assert second.version == 2
    version, snapshot = store.current_registry()
    assert version == 2 and snapshot is not None and "KIT-X" in snapshot.items
    per_version = store.db.query_rows(
        "SELECT version, count() FROM registry_items GROUP BY version ORDER BY version"
    )
    assert per_version == [(1, first.items), (2, first.items + 1)]


def test_a_second_process_gets_a_clear_lock_error(tmp_path: Path) -> None:
    """The embedded engine allows one process per directory; the second is told why."""
    import subprocess
    import sys

    opener = (
        "import sys, time; from pathlib import Path; from ostwatch.settings import "
        "ClickHouseSettings; from sinks.clickhouse import ClickHouse, StoreLocked\n"
        "try:\n"
        f"    db = ClickHouse.connect(ClickHouseSettings(), Path({str(tmp_path)!r}))\n"
        "except StoreLocked as exc:\n"
        "    print('LOCKED', exc, flush=True); sys.exit(0)\n"
        "print('OPEN', flush=True); time.sleep(float(sys.argv[1]))\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", opener, "60"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "OPEN"
        second = subprocess.run(
            [sys.executable, "-c", opener, "0"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert second.stdout.startswith("LOCKED"), second.stdout + second.stderr
        assert "ostwatch up" in second.stdout
    finally:
        holder.kill()
        holder.wait()


def test_recorded_digests_across_sources_take_each_source_its_own_range(store: Store) -> None:
    """One query for several sources: each name answers with its own fingerprint, and a
    seq inside another source's range but outside its own is not found."""
    now = datetime.now(UTC)
    rejected = [
        Rejected(MessageMeta(source, seq, "t", 0, offset, now, f"{source}#{seq}"), "bad", b"", b"")
        for offset, (source, seq) in enumerate([("a", 1), ("a", 2), ("b", 50), ("b", 51)])
    ]
    store.submissions.write(IntakeBatch(rejected=rejected))
    names = [("a", 1), ("a", 2), ("b", 51), ("b", 2), ("a", 50), ("c", 1)]
    assert store.submissions.recorded_digests(names) == {
        ("a", 1): "a#1",
        ("a", 2): "a#2",
        ("b", 51): "b#51",
    }


def test_repositories_answer_what_callers_asked_the_client(store: Store) -> None:
    store.write_intake(batch_of("ingest:repo", VALID_EVENTS))
    assert store.archive.count() == len(VALID_EVENTS)
    assert store.submissions.count() == len(VALID_EVENTS)
    by_type = store.archive.counts_by_type()
    assert sum(by_type.values()) == len(VALID_EVENTS)
    latest = store.archive.latest_received()
    assert latest is not None and latest.tzinfo is not None
    totals = store.intake_totals()
    assert totals["accepted"] == len(VALID_EVENTS)
    assert sum(f["events"] for f in totals["facilities"]) == len(VALID_EVENTS)
