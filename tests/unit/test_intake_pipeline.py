"""The intake's pipeline parts with no services: the one owner of retry and stop, and the
checkpoint that alone moves the offset ledger."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from sinks.clickhouse import StoreUnavailable
from streams.intake.offsets import OffsetLedger
from streams.intake.pipeline import (
    IntakeCheckpoint,
    IntakeConfig,
    IntakeContext,
    Stage,
    StageRunner,
    WorkerStopping,
)


def test_the_runner_retries_an_unreachable_store_with_the_identical_step() -> None:
    calls: list[int] = []

    def step() -> str:
        calls.append(len(calls))
        if len(calls) < 3:
            raise StoreUnavailable("connection refused")
        return "written"

    runner = StageRunner(retry_max_s=0.01, should_stop=lambda: False)
    assert asyncio.run(runner.run(Stage.ARCHIVE, [], step)) == "written"
    assert calls == [0, 1, 2]
    assert (runner.stats.write_retries, runner.stats.store_healthy) == (2, True)


def test_the_runner_stops_retrying_when_the_worker_stops() -> None:
    def step() -> None:
        raise StoreUnavailable("connection refused")

    runner = StageRunner(retry_max_s=0.01, should_stop=lambda: True)
    with pytest.raises(WorkerStopping):
        asyncio.run(runner.run(Stage.SUBMISSIONS, [], step))
    assert runner.stats.store_healthy is False


def test_the_runner_leaves_other_errors_to_its_caller() -> None:
    def step() -> None:
        raise ValueError("Code: 62. Syntax error")

    runner = StageRunner(retry_max_s=0.01, should_stop=lambda: False)
    with pytest.raises(ValueError, match="Code: 62"):
        asyncio.run(runner.run(Stage.DECIDE, [], step))
    assert runner.stats.write_retries == 0
    runner.failed(ValueError("Code: 62. Syntax error"))
    assert runner.stats.failure == "ValueError: Code: 62. Syntax error"


def test_a_checkpoint_commits_or_abandons_its_offsets_once() -> None:
    ledger = OffsetLedger("ostwatch.events")
    first = IntakeCheckpoint(ledger, {0: [0, 1, 2]})
    first.begin()
    assert ledger.batch_since is not None
    first.reached(Stage.SUBMISSIONS)
    assert ledger.as_dict()["batch_stage"] == "submissions"
    first.commit()
    assert ledger.candidate(0) == 3 and ledger.as_dict()["batch_stage"] is None
    with pytest.raises(RuntimeError):
        first.abandon("again")
    second = IntakeCheckpoint(ledger, {0: [3, 4]})
    second.abandon("RuntimeError: refused")
    IntakeCheckpoint(ledger, {0: [5]}).commit()
    assert ledger.candidate(0) == 3  # never past the abandoned batch
    assert ledger.failure == "RuntimeError: refused"


def test_a_checkpoint_times_each_stage_until_the_next_one_or_its_close(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = iter([10.0, 10.5, 12.0, 12.25])
    monkeypatch.setattr("streams.intake.pipeline.time.monotonic", lambda: next(clock))
    checkpoint = IntakeCheckpoint(OffsetLedger("ostwatch.events"), {0: [0]})
    checkpoint.reached(Stage.DECIDE)  # 10.0
    checkpoint.reached(Stage.ARCHIVE)  # 10.5
    checkpoint.reached(Stage.SUBMISSIONS)  # 12.0
    checkpoint.commit()  # 12.25
    assert checkpoint.stage_seconds() == {"decide": 0.5, "archive": 1.5, "submissions": 0.25}


def test_the_context_and_its_configuration_are_frozen() -> None:
    config = IntakeConfig(retry_max_s=1.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.retry_max_s = 2.0  # type: ignore[misc]
    context = IntakeContext(store=None, config=config)  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        context.should_stop = lambda: True  # type: ignore[misc]
