"""The intake commits an offset only when every message below it is decided (issue 14).

Faust's consumer commits the end of the first run of *acknowledged* offsets of a partition
and ignores the committed offset while it is unknown or 0; a stream acknowledges messages no
agent decided (the drainer of a closed ``take_events``, a restarted agent, the commit on
stop). The first tests run Faust's real consumer bookkeeping on the app as the worker
builds it; the others drive the intake's loop and ledger directly.
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
from sinks.records import IntakeBatch
from streams.alerts.signing import AlertSigner
from streams.app import WorkerContext
from streams.intake import agent as intake_agent
from streams.intake.agent import IntakeLoop
from streams.intake.offsets import OffsetLedger, runs
from streams.intake.pipeline import IntakeCheckpoint, Stage, WorkerStopping
from streams.intake.service import IntakeService
from streams.intake.stats import IntakeStats
from tests.support.faust_app import BROKER, faust_would_commit, offline_app

TOPIC = "ostwatch.events"


LEDGER = OffsetLedger(TOPIC)


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> faust.App:
    """The Faust app with the intake registered, as ``infra.worker`` builds it (no broker)."""
    app = offline_app(tmp_path, monkeypatch)
    service = cast(IntakeService, SimpleNamespace())
    LEDGER.partitions.clear()
    signer = cast(AlertSigner, None)
    intake_agent.register(
        app, WorkerContext(BROKER, StreamSettings(), service, LEDGER, signer, AlertSettings())
    )
    return app


def test_faust_commits_the_events_topic_only_where_the_ledger_says(app: faust.App) -> None:
    """Offsets 0 and 1 were decided, the batch at 2..4 failed, a stream acknowledged them
    all and 5..9 later. Faust alone commits 10 here (a fresh group: no committed offset to
    compare with); the intake has it commit 2."""
    LEDGER.decided({0: [0, 1]})
    LEDGER.abandoned({0: [2, 3, 4]}, "RuntimeError: refused")
    intake_agent.commit_only_decided(app.consumer, LEDGER)  # what the agent does first
    assert faust_would_commit(app, "ostwatch.intake", TOPIC, acked=range(10)) == {TP(TOPIC, 0): 2}
    assert app.agents["ostwatch.intake"].concurrency == 1  # batches of a partition in order


# -- the loop and the ledger ---------------------------------------------------------------


@dataclass
class Event:
    """The parts of a Faust event the intake reads."""

    message: Any


def batch(partition: int, *offsets: int) -> list[Event]:
    return [
        Event(
            SimpleNamespace(
                value=b"{}", headers=[], topic=TOPIC, partition=partition, offset=o, timestamp=0
            )
        )
        for o in offsets
    ]


@dataclass
class FakeService:
    """Decides every batch, except that the n-th call raises ``fail_with``."""

    fail_at: int | None = None
    fail_with: BaseException = field(default_factory=lambda: RuntimeError("Code: 62. refused"))
    calls: list[list[tuple[int, int]]] = field(default_factory=list)
    stopping: bool = False
    failures: list[BaseException] = field(default_factory=list)
    stats: IntakeStats = field(default_factory=IntakeStats)  # where the loop adds stage times

    @property
    def runner(self) -> Any:
        """The part of the StageRunner the loop asks: whether the worker is stopping."""
        return SimpleNamespace(stopping=lambda: self.stopping)

    async def process(
        self, messages: Sequence[Any], checkpoint: IntakeCheckpoint | None = None
    ) -> IntakeBatch:
        self.calls.append([(m.partition, m.offset) for m in messages])
        if checkpoint is not None:
            checkpoint.reached(Stage.DECIDE)
        if self.fail_at is not None and len(self.calls) == self.fail_at:
            raise self.fail_with
        return IntakeBatch()


@dataclass
class Harness:
    service: FakeService
    offsets: OffsetLedger = field(default_factory=lambda: OffsetLedger(TOPIC))
    left: list[BaseException] = field(default_factory=list)

    def loop(self) -> IntakeLoop:
        return IntakeLoop(
            cast(IntakeService, self.service),
            self.offsets,
            leave=lambda service, exc: self.left.append(exc),
        )

    def run(self, *batches: list[Event]) -> None:
        async def source() -> AsyncIterator[Sequence[Any]]:
            for events in batches:
                yield events

        asyncio.run(self.loop().run(source()))


def test_a_failed_batch_is_never_committed_past_and_nothing_after_it_is_decided() -> None:
    harness = Harness(FakeService(fail_at=2))
    harness.run(batch(0, 0, 1), batch(0, 2, 3), batch(0, 4, 5))  # returns, never raises
    assert harness.service.calls == [[(0, 0), (0, 1)], [(0, 2), (0, 3)]]  # 4, 5 let through
    assert harness.offsets.candidate(0) == 2
    assert len(harness.left) == 1  # one failure, one request to stop the worker
    # Faust restarts an agent that crashed; a new run after a failure decides nothing.
    harness.run(batch(0, 4, 5))
    assert len(harness.service.calls) == 2
    # Whatever else is later decided in this process, nothing from offset 2 on is committed.
    harness.offsets.decided({0: [2, 3, 4, 5]})
    assert harness.offsets.candidate(0) == 2


def test_committed_batches_add_their_stage_times_and_the_wait_between_them() -> None:
    """``/api/status`` says where the intake's time goes: each committed batch's stages and
    the wait for its messages ("take"); an abandoned batch adds nothing."""
    harness = Harness(FakeService(fail_at=3))
    harness.run(batch(0, 0), batch(0, 1), batch(0, 2))
    spent = harness.service.stats.as_dict()["stage_seconds"]
    assert set(spent) == {"decide", "take"}
    assert all(seconds >= 0 for seconds in spent.values())


def test_the_ledger_says_how_long_a_batch_has_been_in_progress() -> None:
    ledger = OffsetLedger(TOPIC)
    assert ledger.as_dict()["batch_in_progress_s"] is None
    ledger.taking()
    assert ledger.as_dict()["batch_in_progress_s"] == 0.0
    ledger.decided({0: [0]})
    assert ledger.as_dict()["batch_in_progress_s"] is None


def test_a_worker_stopping_under_a_batch_leaves_it_uncommitted() -> None:
    harness = Harness(FakeService(fail_at=2, fail_with=WorkerStopping("ClickHouse away")))
    harness.run(batch(1, 7, 8), batch(1, 9), batch(1, 10))
    assert len(harness.service.calls) == 2 and not harness.left
    assert harness.offsets.candidate(1) == 9
    assert harness.offsets.partitions[1].blocked_at == 9


def test_a_cancelled_batch_blocks_its_offsets_and_a_cancel_outside_stop_leaves() -> None:
    for stopping in (True, False):
        harness = Harness(FakeService(fail_at=1, fail_with=asyncio.CancelledError()))
        harness.service.stopping = stopping
        with pytest.raises(asyncio.CancelledError):
            harness.run(batch(0, 3, 4))
        assert harness.offsets.partitions[0].blocked_at == 3
        assert harness.offsets.candidate(0) is None
        assert len(harness.left) == (0 if stopping else 1)


def test_the_ledger_commits_contiguous_decisions_only() -> None:
    ledger = OffsetLedger(TOPIC)
    ledger.decided({0: [5, 6, 7], 1: [0]})  # first batch after an assignment: starts at 5
    assert (ledger.candidate(0), ledger.candidate(1), ledger.candidate(2)) == (8, 1, None)
    ledger.decided({0: [6, 7, 8, 9]})  # a redelivery overlapping what was decided
    assert ledger.candidate(0) == 10
    ledger.decided({0: [12, 13]})  # 10 and 11 were never read here: no commit past them
    assert ledger.candidate(0) == 10
    assert ledger.partitions[0].hole == (10, 12)


def test_a_revoked_partition_starts_over_at_the_next_readers_position() -> None:
    ledger = OffsetLedger(TOPIC)
    ledger.decided({0: [0, 1, 2]})
    ledger.revoked({0})
    assert ledger.candidate(0) is None
    ledger.decided({0: [40, 41]})  # another worker had committed 40 meanwhile
    assert ledger.candidate(0) == 42


def test_runs_of_offsets() -> None:
    assert runs([5, 3, 4, 9, 10, 12]) == [(3, 6), (9, 11), (12, 13)]
    assert runs([]) == []
