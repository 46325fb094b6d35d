"""Alerts with several workers in one consumer group, on one real ClickHouse: one judge.

Worker A holds partition 0 of the events topic, so it judges; worker B holds another
partition, so it archives and judges nothing. A patient dosed at two facilities whose events
reach different workers is judged by A's sweep of the archive, once; a new judge catches up
with a fresh view of the stored alerts, so no alert gets two versions with one sequence.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from ostwatch.settings import AlertSettings
from streams.alerts.engine import AlertEngine
from streams.intake.pipeline import IntakeConfig, IntakeContext
from streams.intake.service import IntakeService
from tests.support.alert_events import dose, enrol, ev
from tests.support.intake import IntakeHarness, frame

pytestmark = pytest.mark.integration

# Events are dated 2024 and judged by today's clock: no escalation in the way of comparing.
SETTINGS = AlertSettings(commune_escalation_days=36500)


@pytest.fixture
def worker_a(chdb_dir: Path) -> Iterator[IntakeHarness]:
    harness = IntakeHarness(chdb_dir, alert_settings=SETTINGS)
    yield harness
    harness.drop()


def second_worker(harness: IntakeHarness) -> IntakeService:
    """Another worker of the group on the same ClickHouse, started like the first."""
    alerts = AlertEngine(harness.store, SETTINGS, live=True)
    service = IntakeService(IntakeContext(harness.store, IntakeConfig(retry_max_s=1.0), alerts))
    service.warm_up()
    return service


def process(service: IntakeService, docs: Sequence[dict[str, Any]], source: str) -> None:
    messages = frame(docs, framing="line", source=source, first_seq=1, offset=0)
    asyncio.run(service.process(messages))


def alerts_by_kind(harness: IntakeHarness) -> dict[str, list[tuple[int, str]]]:
    """Every stored version: kind → [(sequence, status)], read from ClickHouse itself."""
    rows = harness.db.query_rows(
        "SELECT kind, sequence, status FROM alerts ORDER BY kind, alert_id, sequence"
    )
    found: dict[str, list[tuple[int, str]]] = {}
    for kind, sequence, status in rows:
        found.setdefault(kind, []).append((int(sequence), status))
    return found


def test_a_dose_archived_by_another_worker_is_judged_by_the_judges_sweep_once(
    worker_a: IntakeHarness, chdb_dir: Path
) -> None:
    judge, other = worker_a.service, second_worker(worker_a)
    judge.alert_role.assigned({0, 2}, 4)
    other.alert_role.assigned({1, 3}, 4)
    assert (judge.alert_role.judge, judge.alert_role.alone) == (True, False)
    assert not other.alert_role.judge

    worker_a.feed([enrol("02 07:00"), dose("02 08:00")])  # A's partition: judged inline
    assert "double_dosing" not in alerts_by_kind(worker_a)
    process(other, [dose("02 09:00", facility_id="DP-01")], "facility:DP-01")  # B's partition
    assert "double_dosing" not in alerts_by_kind(worker_a)  # B judges nothing
    assert other.stats.alert_changes == 0
    asyncio.run(other.judge_between_batches())
    asyncio.run(other.judge_clock())
    assert other.stats.alert_changes == 0

    asyncio.run(judge.judge_between_batches())
    kinds = alerts_by_kind(worker_a)
    assert kinds["double_dosing"] == [(1, "open")]
    # Neither facility had stock: TF-01's (A's) and DP-01's (B's, judged by A's sweep).
    assert kinds["stock_out"] == [(1, "open"), (1, "open")]

    # Swept once: the next sweeps find nothing new to judge and change nothing.
    changes = judge.stats.alert_changes
    asyncio.run(judge.judge_between_batches())
    assert judge.alerts is not None and judge.alert_role.sweep is not None
    assert judge.alerts.sweep(judge.alert_role.sweep) == ([], [])
    assert judge.stats.alert_changes == changes

    # The same alerts as one worker judging every event itself.
    alone = IntakeHarness(chdb_dir, alert_settings=SETTINGS)
    try:
        alone.feed([enrol("02 07:00"), dose("02 08:00"), dose("02 09:00", facility_id="DP-01")])
        assert {k: [s for _, s in v] for k, v in alerts_by_kind(alone).items()} == {
            k: [s for _, s in v] for k, v in kinds.items()
        }
    finally:
        alone.drop()


def test_a_new_judge_reads_what_the_last_one_stored_before_it_judges(
    worker_a: IntakeHarness,
) -> None:
    """B judged once (its cache of stored alerts is filled), then A judged a dose to a patient
    nobody had enrolled. After a rebalance B is the judge: the late enrolment resolves A's
    alert as its second version, not as a new first one beside it."""
    a, b = worker_a.service, second_worker(worker_a)
    process(b, [ev("stock.received", "01 06:00", "TF-02", item="MET10", quantity=500)], "tf-02")
    b.alert_role.assigned({1}, 2)
    a.alert_role.assigned({0}, 2)
    worker_a.feed([dose("02 08:00")])
    assert alerts_by_kind(worker_a)["inactive_patient_dosed"] == [(1, "open")]

    a.alert_role.revoked()
    b.alert_role.assigned({0, 1}, 2)  # A left the group: B holds every partition, and judges
    process(b, [enrol("01 07:00")], "tf-01")  # happened before the dose, arrived after it
    assert alerts_by_kind(worker_a)["inactive_patient_dosed"] == [(1, "open"), (2, "resolved")]
    duplicated = worker_a.db.query_rows(
        "SELECT alert_id, sequence FROM alerts GROUP BY alert_id, sequence HAVING count() > 1"
    )
    assert duplicated == []


def test_an_acknowledgement_made_through_another_process_is_followed_not_repeated(
    worker_a: IntakeHarness,
) -> None:
    """``ostwatch alerts ack`` writes through an engine of its own (any worker's API): the
    judge's cache takes that version in before it judges the alert again."""
    worker_a.feed([enrol("01 07:00")])
    engine = worker_a.service.alerts
    assert engine is not None
    (notice_id,) = engine.table.stored(kinds=["commune_notification"])
    change = AlertEngine(worker_a.store, SETTINGS).acknowledge(notice_id, "đã gửi công văn")
    assert (change.sequence, change.alert.status) == (2, "resolved")
    changes = worker_a.service.stats.alert_changes
    worker_a.redeliver(0)  # the enrolment judged again
    assert alerts_by_kind(worker_a)["commune_notification"] == [(1, "open"), (2, "resolved")]
    assert worker_a.service.stats.alert_changes == changes


def test_the_clock_does_not_escalate_a_notice_acknowledged_through_another_process(
    worker_a: IntakeHarness,
) -> None:
    """The clock escalates unacknowledged commune notices: one acknowledged through another
    engine must stay as that acknowledgement left it, not gain an escalated version."""
    worker_a.feed([enrol("01 07:00")])
    engine = worker_a.service.alerts
    assert engine is not None
    (notice_id,) = engine.table.stored(kinds=["commune_notification"])
    AlertEngine(worker_a.store, SETTINGS).acknowledge(notice_id, "đã gửi công văn")
    engine.settings = AlertSettings(commune_escalation_days=7)  # the notice is now 7 days old
    asyncio.run(worker_a.service.judge_clock())
    assert alerts_by_kind(worker_a)["commune_notification"] == [(1, "open"), (2, "resolved")]


def test_a_start_indexes_exactly_the_patient_events_a_crash_left_out(
    worker_a: IntakeHarness,
) -> None:
    """Copies of one indexed event (a redelivered batch) are not mistaken for missing ones,
    and an archived event the index lacks is indexed again, once."""
    worker_a.feed([enrol("03 07:00"), dose("03 08:00"), dose("03 09:00")])
    table = worker_a.store.alerts(cached=False)
    assert table.reindex_missing() == 0
    indexed = worker_a.db.query_rows("SELECT count() FROM patient_events")[0][0]

    worker_a.db.command("INSERT INTO patient_events SELECT * FROM patient_events")  # copies
    assert table.reindex_missing() == 0
    lost = worker_a.db.query_rows("SELECT event_id FROM patient_events LIMIT 1")[0][0]
    worker_a.db.command("DELETE FROM patient_events WHERE event_id = {e:String}", {"e": lost})
    assert table.reindex_missing() == 1
    assert worker_a.db.query_rows("SELECT count() FROM patient_events FINAL")[0][0] == indexed
    assert table.reindex_missing() == 0
