"""Delivery commits an alert change's offset only once the change is recorded (issue 14).

The notify agent used to keep a failed batch's offsets out of Faust's next commit by marking
its messages acknowledged; Faust still committed past them once later messages of the
partition were acknowledged (a restarted agent, the drainer of ``take_events``, the commit on
stop), and those alert changes were never recorded for delivery. It now commits through the
intake's offset ledger. These tests run the agent as the worker registers it, on Faust's real
consumer bookkeeping (no broker).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import faust
import pytest
from faust.types import TP

from ostwatch.settings import AlertSettings, StreamSettings
from streams.alerts.signing import AlertSigner
from streams.app import WorkerContext
from streams.intake.offsets import OffsetLedger
from streams.intake.service import IntakeService
from streams.notify import agent as notify_agent
from streams.notify.service import NotifyService, RawAlert
from tests.support.faust_app import BROKER, faust_would_commit, offline_app

TOPIC = BROKER.alerts_topic


@dataclass
class FakeNotify:
    """Records every batch, except that the n-th call raises (SQLite refused it)."""

    fail_at: int
    calls: list[list[int]] = field(default_factory=list)

    async def accept(self, messages: Sequence[RawAlert]) -> None:
        self.calls.append([m.offset for m in messages])
        if len(self.calls) == self.fail_at:
            raise OSError("disk I/O error")


def events(*offsets: int, partition: int = 0) -> list[Any]:
    return [
        SimpleNamespace(
            message=SimpleNamespace(
                value=b"{}", headers=[], topic=TOPIC, partition=partition, offset=o, timestamp=0
            )
        )
        for o in offsets
    ]


class FakeStream:
    """What the agent reads: ``take_events`` yielding the given batches."""

    def __init__(self, *batches: list[Any]) -> None:
        self.batches = batches

    async def take_events(self, n: int, within: float) -> AsyncIterator[Sequence[Any]]:
        for batch in self.batches:
            yield batch


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> faust.App:
    return offline_app(tmp_path, monkeypatch)


def register(app: faust.App, notify: FakeNotify) -> Any:
    """The notify agent registered as the worker does; returns its function."""
    context = WorkerContext(
        broker=BROKER,
        stream=StreamSettings(),
        service=cast(IntakeService, SimpleNamespace()),
        offsets=OffsetLedger(BROKER.events_topic),
        alert_signer=cast(AlertSigner, None),
        alerts=AlertSettings(),
        notify=cast(NotifyService, notify),
    )
    notify_agent.register(app, context)
    return app.agents["ostwatch.notify"].fun


def test_an_alert_change_that_was_not_recorded_is_never_committed(app: faust.App) -> None:
    """Offsets 0 and 1 are recorded, the batch at 2..4 fails; a stream then acknowledges
    0..9 (the failed batch and later ones). Faust alone commits 10, losing 2..4 for
    delivery; the ledger has it commit 2, so the next worker records them."""
    notify = FakeNotify(fail_at=2)
    run = register(app, notify)
    with pytest.raises(OSError, match="disk I/O error"):
        asyncio.run(run(FakeStream(events(0, 1), events(2, 3, 4))))
    assert notify.calls == [[0, 1], [2, 3, 4]]
    assert faust_would_commit(app, "ostwatch.notify", TOPIC, acked=range(10)) == {TP(TOPIC, 0): 2}


def test_recorded_alert_changes_are_committed(app: faust.App) -> None:
    run = register(app, FakeNotify(fail_at=0))
    asyncio.run(run(FakeStream(events(0, 1, 2), events(3))))
    assert faust_would_commit(app, "ostwatch.notify", TOPIC, acked=range(4)) == {TP(TOPIC, 0): 4}
