"""A message that reuses an earlier submission's name (``ostwatch-source``/``ostwatch-seq``)
with other content is a conflict: refused, kept with its reason (``report rejected``), and the
first submission's recorded outcome stands (issue 15, item 6). A true resend is not one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.alert_events import dose, enrol
from tests.support.intake import SOURCE, IntakeHarness, frame

pytestmark = [pytest.mark.integration]


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[IntakeHarness]:
    running = IntakeHarness(tmp_path / "chdb")
    yield running
    running.drop()


def test_a_reused_name_with_other_content_never_overwrites_the_first(
    harness: IntakeHarness,
) -> None:
    first = [enrol("01 07:00"), dose("01 08:00"), dose("02 08:00")]
    assert len(harness.send(first).accepted) == 3
    counts = harness.store.submission_counts(SOURCE)
    assert counts == {"accepted": 3, "rejected": 0, "duplicates": 0}

    # The same names again: #2 a different valid event, #3 a line the intake must reject.
    forged = dose("03 08:00")
    messages = [
        *frame([forged], framing="event", source=SOURCE, first_seq=2, offset=100),
        *frame([b'{"not": "an event"}'], framing="line", source=SOURCE, first_seq=3, offset=101),
    ]
    outcome = harness.process(messages)
    assert (len(outcome.accepted), len(outcome.rejected), len(outcome.conflicts)) == (0, 0, 2)

    assert harness.store.submission_counts(SOURCE) == counts  # the first outcomes stand
    archived = {
        row[0] for row in harness.db.query_rows("SELECT toString(event_id) FROM events_archive")
    }
    assert forged["event_id"] not in archived and len(archived) == 3
    rejected = harness.store.rejected()
    assert [(r["seq"], r["event_id"]) for r in rejected] == [(2, forged["event_id"]), (3, None)]
    assert all(
        r["reason"].startswith(f"conflict: submission {SOURCE} #{r['seq']} was already recorded")
        for r in rejected
    )

    # A resend of the same bytes (Kafka's redelivery, a producer's retry) is no conflict.
    again = harness.redeliver(0)
    assert (len(again.redelivered), len(again.conflicts)) == (3, 0)
    assert harness.store.submission_counts(SOURCE) == counts


def test_two_contents_under_one_new_name_in_one_batch_keep_the_first(
    harness: IntakeHarness,
) -> None:
    one, other = dose("04 08:00"), dose("04 09:00")
    messages = [
        *frame([one], framing="event", source=SOURCE, first_seq=50, offset=0),
        *frame([other], framing="event", source=SOURCE, first_seq=50, offset=1),
    ]
    outcome = harness.process(messages)
    assert [a.event.event_id for a in outcome.accepted] == [one["event_id"]]
    assert [c.event_id for c in outcome.conflicts] == [other["event_id"]]
    assert harness.store.submission_counts(SOURCE)["accepted"] == 1
