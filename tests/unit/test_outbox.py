"""The facility outbox without a broker: events are kept on disk, in order, across restarts,
and a broker that cannot be reached leaves them waiting instead of losing them."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from infra.broker import free_port
from producers.outbox import Outbox, OutboxError
from producers.publisher import InvalidEvent
from tests.support.events import contract_event

TOPIC = "ostwatch.events"


def dose(day: int) -> dict[str, object]:
    at = f"2024-03-0{day}T08:00:00+07:00"
    return contract_event(
        "dose.dispensed", at, "TF-02", patient_ref="pat-outbox-01", item="MET10", dose_mg=80,
        mode="observed",
    )  # fmt: skip


def unreachable() -> str:
    """A loopback port nothing listens on: a facility whose link is down."""
    return f"127.0.0.1:{free_port()}"


def test_events_wait_on_disk_while_the_broker_is_unreachable(tmp_path: Path) -> None:
    with Outbox(tmp_path / "outbox", unreachable(), TOPIC) as outbox:
        seqs = [outbox.add(dose(day)) for day in (1, 2, 3)]
        source = outbox.source
        started = time.monotonic()
        assert outbox.deliver(timeout=2) == 0
        assert time.monotonic() - started < 30  # gives up for now, does not hang
        assert outbox.pending() == 3
    assert seqs == [1, 2, 3]
    # The facility system restarts: the same events, seqs and source are still there.
    with Outbox(tmp_path / "outbox", unreachable(), TOPIC) as reopened:
        assert reopened.pending() == 3
        assert reopened.source == source
        assert reopened.add(dose(4)) == 4


def test_an_invalid_event_is_refused_when_added_not_days_later(tmp_path: Path) -> None:
    with Outbox(tmp_path, unreachable(), TOPIC) as outbox:
        bad = dose(1) | {"dose_mg": 0}
        with pytest.raises(InvalidEvent, match="dose_mg"):
            outbox.add(bad)
        assert outbox.pending() == 0


def test_an_unusable_directory_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(OutboxError, match="cannot use the outbox in"):
        Outbox(blocker / "outbox", unreachable(), TOPIC)
