"""The poison-pill quarantine (streams/intake/service.py), through the real intake on chDB.

The store is made to refuse one submission (a ClickHouse error no retry covers, raised by the
client as the engine would), to be unreachable for a while, or to refuse everything; the
intake must isolate the one, retry the identical batch for the outage, and reject nothing
when the store itself is at fault.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from ostwatch.settings import AlertSettings
from sinks.records import IntakeBatch
from streams.intake.service import QUARANTINE_REASON
from tests.support.events import contract_event
from tests.support.intake import SOURCE, IntakeHarness, frame

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

Insert = Callable[..., Any]


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IntakeHarness]:
    instance = IntakeHarness(tmp_path_factory.mktemp("quarantine"), alert_settings=AlertSettings())
    yield instance
    instance.drop()


def doses(count: int, day: str = "2024-03-10") -> list[dict[str, Any]]:
    return [
        contract_event("dose.dispensed", f"{day}T08:{n // 60:02d}:{n % 60:02d}+07:00", "TF-01",
                       patient_ref=f"pat-quar-{n:05d}", item="MET10", dose_mg=60,
                       mode="observed")
        for n in range(count)
    ]  # fmt: skip


def intercept(
    harness: IntakeHarness, monkeypatch: pytest.MonkeyPatch, before: Callable[..., None]
) -> list[tuple[str, Any]]:
    """Run ``before(table, columns, settings)`` ahead of every INSERT the client sends (it
    may raise as ClickHouse would); returns the (table, settings) of every attempt."""
    client = harness.db._client
    real: Insert = client.insert
    attempts: list[tuple[str, Any]] = []

    def insert(table: str, data: Any, *args: Any, **kwargs: Any) -> Any:
        attempts.append((table, kwargs.get("settings")))
        before(table, data, kwargs.get("settings"))
        return real(table, data, *args, **kwargs)

    monkeypatch.setattr(client, "insert", insert)
    return attempts


def counts(batch: IntakeBatch) -> dict[str, int]:
    return {
        "accepted": len(batch.accepted),
        "rejected": len(batch.rejected),
        "duplicates": len(batch.duplicates),
        "redelivered": len(batch.redelivered),
    }


@pytest.mark.parametrize("framing", ["batch", "line"])
def test_one_submission_the_store_refuses_is_isolated_and_the_rest_accepted(
    harness: IntakeHarness, monkeypatch: pytest.MonkeyPatch, framing: Any
) -> None:
    harness.reset()
    events = doses(400)
    poison = events[273]["event_id"]

    def refuse_the_poison(table: str, columns: Any, settings: Any) -> None:
        if table == "events_archive" and poison in columns[0]:
            raise DatabaseError(
                "Code: 53. DB::Exception: Type mismatch in a value of event "
                f"{poison}, phone 0912 345 678 (refused for this test). (TYPE_MISMATCH)"
            )

    attempts = intercept(harness, monkeypatch, refuse_the_poison)
    batch = harness.send(events, framing=framing)

    assert counts(batch) == {"accepted": 399, "rejected": 1, "duplicates": 0, "redelivered": 0}
    [kept] = batch.rejected
    assert kept.event_id == poison and kept.meta.seq == harness._seq - 400 + 274
    assert kept.reason.startswith(f"{QUARANTINE_REASON}: DatabaseError: Code: 53.")
    assert "0912" not in kept.reason and "[redacted:phone]" in kept.reason
    assert harness.service.stats.quarantined == 1
    # Bisection: about two archive inserts per halving, not one per submission.
    archive_inserts = sum(1 for table, _ in attempts if table == "events_archive")
    assert archive_inserts <= 2 * 9 + 1, archive_inserts
    # What the store holds: every other event archived once, the poison listed as rejected.
    archived = harness.db.query_rows("SELECT event_id FROM events_archive")
    assert len(archived) == 399 and poison not in {row[0] for row in archived}
    assert harness.store.submission_counts(SOURCE) == {
        "accepted": 399, "rejected": 1, "duplicates": 0,
    }  # fmt: skip
    [row] = harness.store.rejected()
    assert row["reason"] == kept.reason
    assert harness.report("dispensing")[0]["observed_doses"] == 399

    # The pipeline goes on: later events flow, and the poison sent again is refused again.
    later = harness.send([*doses(5, "2024-03-11"), events[273]], framing=framing)
    assert counts(later) == {"accepted": 5, "rejected": 1, "duplicates": 0, "redelivered": 0}


def test_a_refusal_after_the_batch_was_archived_archives_nothing_twice(
    harness: IntakeHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The archive takes the batch, then one submission's row is refused: the split finds
    the events archived already (redeliveries, looked up), so no event is archived twice,
    and every submission is decided once."""
    harness.reset()
    poison_seq = harness._seq + 40

    def refuse_its_row(table: str, columns: Any, settings: Any) -> None:
        rows = zip(columns[1], columns[2], strict=True)  # seq, outcome
        if table == "submissions" and (poison_seq, "accepted") in rows:
            raise DatabaseError("Code: 27. DB::Exception: Cannot parse input (refused for test)")

    intercept(harness, monkeypatch, refuse_its_row)
    batch = harness.send(doses(64), framing="batch")
    assert [r.meta.seq for r in batch.rejected] == [poison_seq]
    assert len(batch.accepted) + len(batch.redelivered) == 63
    archived = harness.db.query_rows("SELECT event_id, count() FROM events_archive GROUP BY 1")
    assert len(archived) == 64 and {n for _, n in archived} == {1}
    assert harness.store.submission_counts(SOURCE) == {
        "accepted": 63, "rejected": 1, "duplicates": 0,
    }  # fmt: skip


def test_an_unreachable_store_is_retried_with_the_identical_batch_not_quarantined(
    harness: IntakeHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness.reset()
    failures = iter(range(3))

    def unreachable_three_times(table: str, columns: Any, settings: Any) -> None:
        if table == "events_archive" and next(failures, None) is not None:
            raise OperationalError("HTTPConnectionPool: Connection refused (for this test)")

    attempts = intercept(harness, monkeypatch, unreachable_three_times)
    batch = harness.send(doses(50), framing="batch")
    assert counts(batch) == {"accepted": 50, "rejected": 0, "duplicates": 0, "redelivered": 0}
    stats = harness.service.stats
    assert stats.write_retries == 3 and stats.quarantined == 0
    tokens = [settings["insert_deduplication_token"] for table, settings in attempts
              if table == "events_archive"]  # fmt: skip
    assert len(tokens) == 4 and len(set(tokens)) == 1  # the identical batch, each time


def test_a_store_that_refuses_everything_rejects_nothing(
    harness: IntakeHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not a poison pill: the worker stops (and is restarted) rather than reject data."""
    harness.reset()
    db = harness.db
    real_query = db._client.query

    def refuse_all(*args: Any, **kwargs: Any) -> Any:
        raise DatabaseError("Code: 497. DB::Exception: not enough privileges (for this test)")

    intercept(harness, monkeypatch, refuse_all)
    monkeypatch.setattr(db._client, "query", refuse_all)
    with pytest.raises(DatabaseError, match="Code: 497"):
        messages = frame(doses(20), framing="batch", source=SOURCE, first_seq=1, offset=0)
        asyncio.run(harness.service.process(messages))
    monkeypatch.setattr(db._client, "query", real_query)
    assert sum(harness.store.submission_counts(SOURCE).values()) == 0
    assert harness.service.stats.quarantined == 0
