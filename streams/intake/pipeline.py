"""The intake's batch pipeline: its stages, its checkpoint, its context, and the one owner of
retry, stop and metrics.

A batch goes through five stages in order (``Stage``): *decide* (classify every submission,
ask the store about suspected duplicates), *archive* (the accepted events), *aggregates*
(every live aggregate row the events touch), *alerts* (judged, published, stored; never holds
the intake up) and *submissions* (one row per submission: the decision itself), then its
rejections go to the dead-letter topic. Only then is the batch's ``IntakeCheckpoint``
committed: its offsets become committable in the ``OffsetLedger`` (streams/intake/offsets.py).
A batch that fails or is interrupted is abandoned instead, and nothing from its first offset
on is committed by this process — the shape quixstreams gives its sinks (``BatchingSink``
written on a ``Checkpoint`` commit, offsets committed only after every sink flushed).

Everything the intake needs from outside comes in one frozen ``IntakeContext`` built by the
entry point; ``StageRunner`` is the only place that retries a stage, notices a stop and
counts what happened.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

from ostwatch.settings import ClickHouseSettings, StreamSettings
from schemas.alerts import AlertChange
from sinks.clickhouse import StoreUnavailable
from sinks.records import Rejected
from sinks.store import Store
from streams.alerts.engine import AlertEngine
from streams.intake.classify import RawMessage
from streams.intake.limits import IntakeLimits
from streams.intake.offsets import OffsetLedger
from streams.intake.stats import IntakeStats

T = TypeVar("T")
PublishAlerts = Callable[[Sequence[AlertChange]], Awaitable[None]]
SendDeadLetters = Callable[[Sequence[Rejected]], Awaitable[None]]

log = logging.getLogger(__name__)


class Stage(StrEnum):
    """The stages of one batch, in the order they run."""

    DECIDE = "decide"
    ARCHIVE = "archive"
    AGGREGATES = "aggregates"
    ALERTS = "alerts"
    SUBMISSIONS = "submissions"
    DEAD_LETTERS = "dead_letters"


class WorkerStopping(Exception):
    """The worker stops while a batch is still unwritten: the batch is left for redelivery."""


async def _publish_nothing(changes: Sequence[AlertChange]) -> None:
    """No alerts topic (tests, benchmarks): changes are only stored."""


async def _send_nowhere(rejected: Sequence[Rejected]) -> None:
    """No dead-letter topic (tests, benchmarks): rejections are only stored."""


def _never() -> bool:
    return False


@dataclass(frozen=True)
class IntakeConfig:
    """The intake's tunables, from the settings the entry point built."""

    retry_max_s: float = 30.0  # cap of the back-off while the store is unreachable
    registry_refresh_s: float = 0.0  # how often a newer registry version is looked for
    limits: IntakeLimits = field(default_factory=IntakeLimits)
    duplicate_filter: tuple[int, float] = (10_000_000, 1e-4)  # capacity, error rate

    @classmethod
    def from_settings(cls, stream: StreamSettings, clickhouse: ClickHouseSettings) -> IntakeConfig:
        return cls(
            retry_max_s=clickhouse.insert_retry_max_s,
            registry_refresh_s=stream.registry_refresh_s,
            limits=IntakeLimits.from_settings(stream),
            duplicate_filter=(stream.duplicate_filter_capacity, stream.duplicate_filter_error_rate),
        )


@dataclass(frozen=True)
class IntakeContext:
    """What the intake depends on, given once by the entry point (``infra/worker.py``).

    ``publish_alerts`` sends alert changes to the alerts topic before they are stored (so a
    crash in between republishes them, never loses them); ``send_dead_letters`` puts each
    rejected submission's original bytes and reason on the dead-letter topic;
    ``should_stop`` is the worker's "stopping" state, which ends a retry (``StageRunner``).
    """

    store: Store
    config: IntakeConfig = field(default_factory=IntakeConfig)
    alerts: AlertEngine | None = None
    publish_alerts: PublishAlerts = _publish_nothing
    send_dead_letters: SendDeadLetters = _send_nowhere
    should_stop: Callable[[], bool] = _never


@dataclass
class IntakeCheckpoint:
    """One batch's claim on the offset ledger: committed once every stage is done, or
    abandoned (and then never committed past by this process).

    ``offsets`` are the batch's Kafka offsets by partition; ``stage`` is where the batch is
    (``/api/status`` shows it beside ``batch_in_progress_s``, so a stall names its stage)."""

    ledger: OffsetLedger
    offsets: Mapping[int, Sequence[int]]
    marks: list[tuple[Stage, float]] = field(default_factory=list)  # each stage's start
    closed_at: float | None = None  # when it was committed or abandoned

    @property
    def stage(self) -> Stage | None:
        return self.marks[-1][0] if self.marks else None

    @property
    def closed(self) -> bool:
        return self.closed_at is not None

    def begin(self) -> None:
        self.ledger.taking()

    def reached(self, stage: Stage) -> None:
        self.ledger.batch_stage = stage.value
        self.marks.append((stage, time.monotonic()))

    def stage_seconds(self) -> dict[str, float]:
        """How long each stage this batch went through took (wall clock, until the next
        stage began or the checkpoint closed): where a batch's time goes, for the status."""
        ends = [at for _, at in self.marks[1:]]
        ends.append(time.monotonic() if self.closed_at is None else self.closed_at)
        spent: dict[str, float] = {}
        for (stage, began), ended in zip(self.marks, ends, strict=True):
            spent[stage.value] = spent.get(stage.value, 0.0) + ended - began
        return spent

    def commit(self) -> None:
        """Every submission of the batch is decided and written: its offsets may be committed."""
        self._close()
        self.ledger.decided(self.offsets)

    def abandon(self, reason: str) -> None:
        """The batch will not be decided here; ``reason`` (empty for a stop) ends the intake."""
        self._close()
        self.ledger.abandoned(self.offsets, reason)

    def _close(self) -> None:
        if self.closed:
            raise RuntimeError("a checkpoint is committed or abandoned once")
        self.closed_at = time.monotonic()


@dataclass
class StageRunner:
    """The one owner of retry, stop and metrics for the intake's stages.

    A blocking step runs in the default executor until the store takes it: an unreachable
    store (``StoreUnavailable``) is retried with the identical step and a doubling back-off
    (capped at ``retry_max_s``), so deduplication holds; any other error is the caller's.
    When the worker is asked to stop the runner stops retrying and raises ``WorkerStopping``:
    Faust waits for the batch in flight before it leaves, so retrying on would ignore SIGTERM
    for as long as ClickHouse stays away.
    """

    retry_max_s: float
    should_stop: Callable[[], bool]
    stats: IntakeStats = field(default_factory=IntakeStats)

    def stopping(self) -> bool:
        return bool(self.should_stop())

    def failed(self, exc: BaseException) -> None:
        """The intake stops on an error no retry covers; the status page says why."""
        self.stats.failure = f"{type(exc).__name__}: {str(exc)[:300]}"

    async def run(self, stage: Stage, messages: Sequence[RawMessage], step: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        delay = 0.2
        while True:
            try:
                result = await loop.run_in_executor(None, step)
                self.stats.store_healthy = True
                return result
            except StoreUnavailable as exc:
                self.stats.store_healthy = False
                self.stats.write_retries += 1
                log.warning(
                    "ClickHouse unavailable at stage %s, retrying batch of %d in %.1f s: %s",
                    stage,
                    len(messages),
                    delay,
                    exc,
                    extra={
                        "topic": messages[0].topic if messages else None,
                        "partition": messages[0].partition if messages else None,
                        "offset": messages[0].offset if messages else None,
                    },
                )
                await self._pause_unless_stopping(delay, len(messages))
                delay = min(delay * 2, self.retry_max_s)

    async def _pause_unless_stopping(self, delay: float, pending: int) -> None:
        """Sleep ``delay`` seconds, checking twice a second whether the worker is stopping."""
        deadline = time.monotonic() + delay
        while True:
            if self.stopping():
                raise WorkerStopping(
                    f"stopping with a batch of {pending} unwritten (ClickHouse unavailable); "
                    "its offsets stay uncommitted, so the next worker reads it again"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            await asyncio.sleep(min(0.5, remaining))
