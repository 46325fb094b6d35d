"""A bulk import in one intake batch: thousands of patients and event ids in one go.

Every query of a batch binds its keys as literal IN lists; with ClickHouse's default
256 KiB query limit a batch of a few thousand enrolments failed as a syntax error (not
retriable), which crashed the intake agent. The re-send makes every event a duplicate
suspect, the other long list.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from ostwatch.settings import AlertSettings
from sinks.records import Rejected
from streams.intake.offsets import OffsetLedger
from streams.intake.pipeline import IntakeCheckpoint, IntakeConfig, IntakeContext, Stage
from streams.intake.service import IntakeService
from tests.support.events import contract_event
from tests.support.intake import IntakeHarness, frame

pytestmark = pytest.mark.integration

PATIENTS = 7000


def cohort() -> list[dict]:
    return [
        contract_event("patient.enrolled", "2024-03-01T09:00:00+07:00", "TF-01",
                       patient_ref=f"bulkpatient-{n:06d}", programme="methadone",
                       residence_commune="BG-LN-BIENDONG")
        for n in range(PATIENTS)
    ]  # fmt: skip


def test_a_national_cohort_in_one_batch_and_its_resend(tmp_path: Path) -> None:
    harness = IntakeHarness(tmp_path / "chdb", alert_settings=AlertSettings())
    try:
        events = cohort()
        first = harness.send(events)
        assert len(first.accepted) == PATIENTS and not first.rejected
        timeline = harness.db.query_rows("SELECT uniqExact(patient_ref) FROM patient_timeline")
        assert timeline[0][0] == PATIENTS
        again = harness.send(events)
        assert len(again.duplicates) == PATIENTS and not again.accepted
    finally:
        harness.drop()


def test_a_partition_taken_over_from_another_worker_keeps_its_duplicates(tmp_path: Path) -> None:
    """Two workers on one ClickHouse: B started before A archived the events, then is
    assigned A's partition and gets them again (a redelivery after the rebalance, or a
    producer's retry). Levelled on assignment, B counts them as duplicates, not twice."""
    harness = IntakeHarness(tmp_path / "chdb")
    try:
        worker_b = IntakeService(IntakeContext(harness.store, IntakeConfig(retry_max_s=1.0)))
        worker_b.warm_up()
        events = cohort()[:50]
        assert len(harness.send(events).accepted) == 50  # worker A archives them
        resent = frame(events, framing="line", source="producer-retry", first_seq=1, offset=0)
        assert worker_b.level_duplicate_filter() >= 50  # what B does when assigned
        outcome = asyncio.run(worker_b.process(resent))
        assert len(outcome.duplicates) == 50 and not outcome.accepted
        archived = harness.db.query_rows("SELECT count() FROM events_archive")[0][0]
        assert archived == 50
    finally:
        harness.drop()


def test_a_batch_runs_every_stage_and_sends_its_rejections_before_its_checkpoint_commits(
    tmp_path: Path,
) -> None:
    """The pipeline, as the agent drives it: the dead letters go through the context's
    sender, and only then may the checkpoint commit the batch's offsets."""
    harness = IntakeHarness(tmp_path / "chdb")
    sent: list[tuple[str, int]] = []
    ledger = OffsetLedger("ostwatch.events")

    async def send_dead_letters(rejected: Sequence[Rejected]) -> None:
        assert ledger.candidate(0) is None  # nothing committable before they are sent
        sent.extend((item.meta.source, item.meta.seq) for item in rejected)

    try:
        context = IntakeContext(harness.store, IntakeConfig(retry_max_s=1.0))
        service = IntakeService(replace(context, send_dead_letters=send_dead_letters))
        service.warm_up()
        messages = frame([*cohort()[:3], b"not json"], framing="line", source="s",
                         first_seq=1, offset=0)  # fmt: skip
        checkpoint = IntakeCheckpoint(ledger, {0: [m.offset for m in messages]})
        batch = asyncio.run(service.process(messages, checkpoint))
        assert (len(batch.accepted), sent) == (3, [("s", 4)])
        assert checkpoint.stage is Stage.DEAD_LETTERS
        checkpoint.commit()
        assert ledger.candidate(0) == 4
    finally:
        harness.drop()
