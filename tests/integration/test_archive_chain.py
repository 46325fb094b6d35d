"""The hash chain over the archive: built as the real intake archives, never forked by
redelivery or a crash between writes, and every direct edit of the archive in ClickHouse
(ALTER TABLE … UPDATE / DELETE, INSERT) detected and named by ``verify``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sinks.chain import Finding
from streams.intake.pipeline import IntakeConfig, IntakeContext
from streams.intake.service import IntakeService
from tests.support.events import contract_event
from tests.support.intake import IntakeHarness

pytestmark = pytest.mark.integration

SYNC = "SETTINGS mutations_sync = 2"


@pytest.fixture
def intake(chdb_dir: Path) -> Iterator[IntakeHarness]:
    harness = IntakeHarness(chdb_dir)
    yield harness
    harness.drop()


def day(facility_id: str, n: int, hour: int = 8) -> list[dict[str, Any]]:
    """n doses and a count at a facility on 1 March 2024."""
    events = [
        contract_event(
            "dose.dispensed",
            f"2024-03-01T{hour:02d}:{minute:02d}:00+07:00",
            facility_id,
            patient_ref=f"pat-chain-{minute:04d}",
            item="MET10",
            dose_mg=60 + minute,
            mode="observed",
        )
        for minute in range(n)
    ]
    events.append(
        contract_event(
            "stock.counted",
            f"2024-03-01T{hour + 1:02d}:00:00+07:00",
            facility_id,
            item="MET10",
            quantity_on_hand=500,
        )
    )
    return events


def chain_rows(intake: IntakeHarness) -> list[tuple[Any, ...]]:
    return intake.db.query_rows(
        "SELECT facility_id, position, toString(event_id), repaired FROM archive_chain "
        "ORDER BY facility_id, position"
    )


def verify(intake: IntakeHarness) -> list[Finding]:
    return intake.store.chain.verify(settle_s=0).findings


def position_of(intake: IntakeHarness, event_id: str) -> int:
    rows = intake.db.query_rows(
        "SELECT position FROM archive_chain WHERE event_id = %(id)s", {"id": event_id}
    )
    return int(rows[0][0])


def fed(intake: IntakeHarness) -> list[dict[str, Any]]:
    """Two facilities in several batches, late events included."""
    events = day("TF-01", 6) + day("DP-01", 4) + day("TF-01", 3, hour=6)
    intake.feed(events, batch_sizes=[4, 5, 3])
    return events


def test_the_chain_follows_archive_order_and_verifies(intake: IntakeHarness) -> None:
    events = fed(intake)
    rows = chain_rows(intake)
    assert len(rows) == len(events)
    by_facility: dict[str, list[int]] = {}
    for facility, position, _, repaired in rows:
        by_facility.setdefault(facility, []).append(int(position))
        assert repaired == 0
    assert by_facility == {"DP-01": list(range(5)), "TF-01": list(range(11))}
    # Archive order: the late 06:00 events of TF-01 were sent last, so they come last.
    tf = [e["event_id"] for e in events if e["facility_id"] == "TF-01"]
    assert [r[2] for r in rows if r[0] == "TF-01"] == tf
    result = intake.store.chain.verify(settle_s=0)
    assert result.intact, result.findings
    assert (result.events, result.chain_rows, result.facilities) == (16, 16, 2)


def test_a_redelivered_batch_neither_forks_nor_doubles(intake: IntakeHarness) -> None:
    fed(intake)
    before = chain_rows(intake)
    intake.redeliver(1)
    intake.redeliver(0)
    assert chain_rows(intake) == before
    assert verify(intake) == []


def test_events_left_unchained_by_a_crash_are_chained_by_redelivery_or_start(
    intake: IntakeHarness,
) -> None:
    fed(intake)
    last_batch = list(intake.outcomes[-1].accepted)
    ids = [a.event.event_id for a in last_batch]
    # The state a worker killed between the archive write and the chain write leaves.
    intake.db.command(f"ALTER TABLE archive_chain DELETE WHERE event_id IN %(ids)s {SYNC}",
                      {"ids": ids})  # fmt: skip
    found = verify(intake)
    assert {(f.event_id, f.problem) for f in found} == {(i, "inserted") for i in ids}
    intake.redeliver(len(intake.sent) - 1)
    assert verify(intake) == []
    # Again, now with nothing redelivered: the next worker start chains them.
    intake.db.command(f"ALTER TABLE archive_chain DELETE WHERE event_id IN %(ids)s {SYNC}",
                      {"ids": ids})  # fmt: skip
    intake.service = restart_worker(intake)
    result = intake.store.chain.verify(settle_s=0)
    assert result.intact, result.findings
    repaired = {row[2] for row in chain_rows(intake) if row[3] == 1}
    assert repaired == set(ids)
    assert sum(h["repaired_links"] for h in result.heads) == len(ids)
    # And new events go on from the repaired head.
    intake.feed(day("TF-01", 2, hour=10))
    assert verify(intake) == []


def restart_worker(intake: IntakeHarness) -> IntakeService:
    """A fresh worker on the same store (its warm-up runs the repair)."""
    service = IntakeService(IntakeContext(intake.store, IntakeConfig(retry_max_s=1.0)))
    service.warm_up()
    return service


def test_an_altered_row_is_named(intake: IntakeHarness) -> None:
    events = fed(intake)
    target = events[2]["event_id"]
    intake.db.command(
        f"ALTER TABLE events_archive UPDATE dose_mg = 6 WHERE event_id = %(id)s {SYNC}",
        {"id": target},
    )
    found = verify(intake)
    assert [(f.facility_id, f.event_id, f.position, f.problem) for f in found] == [
        ("TF-01", target, position_of(intake, target), "changed")
    ]


def test_an_altered_payload_alone_is_named(intake: IntakeHarness) -> None:
    events = fed(intake)
    target = events[7]["event_id"]
    intake.db.command(
        "ALTER TABLE events_archive UPDATE payload = replaceOne(payload, '\"dose_mg\"', "
        f"'\"dose_mg\" ') WHERE event_id = %(id)s {SYNC}",
        {"id": target},
    )
    found = verify(intake)
    assert [(f.event_id, f.problem) for f in found] == [(target, "changed")]


def test_a_deleted_row_is_named(intake: IntakeHarness) -> None:
    events = fed(intake)
    target = events[8]["event_id"]
    position = position_of(intake, target)
    intake.db.command(f"ALTER TABLE events_archive DELETE WHERE event_id = %(id)s {SYNC}",
                      {"id": target})  # fmt: skip
    found = verify(intake)
    assert [(f.facility_id, f.event_id, f.position, f.problem) for f in found] == [
        ("DP-01", target, position, "deleted")
    ]


def test_an_inserted_row_is_named(intake: IntakeHarness) -> None:
    events = fed(intake)
    forged = intake.db.query_rows("SELECT toString(generateUUIDv4())")[0][0]
    intake.db.command(
        "INSERT INTO events_archive SELECT * REPLACE (toUUID(%(forged)s) AS event_id) "
        "FROM (SELECT * FROM events_archive WHERE event_id = %(id)s)",
        {"forged": forged, "id": events[0]["event_id"]},
    )
    found = verify(intake)
    assert [(f.facility_id, f.event_id, f.position, f.problem) for f in found] == [
        ("TF-01", forged, None, "inserted")
    ]


def test_a_copied_row_is_named(intake: IntakeHarness) -> None:
    events = fed(intake)
    target = events[1]["event_id"]
    intake.db.command(
        "INSERT INTO events_archive SELECT * FROM events_archive WHERE event_id = %(id)s "
        "SETTINGS insert_deduplicate = 0",
        {"id": target},
    )
    found = verify(intake)
    assert [(f.event_id, f.problem) for f in found] == [(target, "duplicated")]


def test_an_edited_chain_row_is_named(intake: IntakeHarness) -> None:
    events = fed(intake)
    target = events[3]["event_id"]
    intake.db.command(
        "ALTER TABLE archive_chain UPDATE link_hash = SHA256('forged') "
        f"WHERE event_id = %(id)s {SYNC}",
        {"id": target},
    )
    position = position_of(intake, target)
    found = {(f.position, f.problem) for f in verify(intake)}
    # This link no longer matches its content, and the next one no longer follows it.
    assert found == {(position, "link_altered"), (position + 1, "link_broken")}


def test_an_event_chained_while_verify_runs_is_not_reported(intake: IntakeHarness) -> None:
    fed(intake)
    batch = intake.outcomes[-1].accepted
    ids = [a.event.event_id for a in batch]
    keys = [(a.event.facility_id, a.event.event_id, a.event.occurred_at_utc) for a in batch]

    def unchain() -> None:
        intake.db.command(f"ALTER TABLE archive_chain DELETE WHERE event_id IN %(ids)s {SYNC}",
                          {"ids": ids})  # fmt: skip

    unchain()
    assert {f.event_id for f in verify(intake)} == set(ids)
    # The worker's chain write lands after verify compared, before it looks again.

    def worker_chains(done: int, total: int) -> None:
        intake.store.chain.extend(keys)

    result = intake.store.chain.verify(settle_s=0.01, progress=worker_chains)
    assert result.intact, result.findings


def test_a_full_intake_batch_is_chained_in_one_step(intake: IntakeHarness) -> None:
    # 5,000 events (the intake's largest batch): their ids would not fit in a query as text.
    events = [
        contract_event(
            "dose.dispensed",
            f"2024-03-01T08:00:{n % 60:02d}.{n // 60:03d}+07:00",
            ("TF-01", "TF-02", "DP-01")[n % 3],
            patient_ref=f"pat-batch-{n:05d}",
            item="MET10",
            dose_mg=60,
            mode="observed",
        )
        for n in range(5000)
    ]
    intake.feed(events, framing="batch")
    result = intake.store.chain.verify(settle_s=0)
    assert result.intact and result.chain_rows == 5000
    assert sorted(h["length"] for h in result.heads) == [1666, 1667, 1667]
