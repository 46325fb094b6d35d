"""The intake's state and its stages, independent of Faust: the agent only feeds it batches.

State is a cache of what ClickHouse holds (accepted event_ids, the current registry);
it is rebuilt from the store at start, so a killed worker loses nothing. The stages, the
checkpoint and the context are described in streams/intake/pipeline.py.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from ostwatch.timeutil import utc_now
from schemas.alerts import AckSelection, AlertChange
from schemas.codec import encode_raw_submission
from schemas.models import BaseEvent
from schemas.privacy import scrub_text
from schemas.reference import RegistrySnapshot
from sinks.aggregates import touched_by
from sinks.records import IntakeBatch, Rejected
from sinks.store import Store
from streams.alerts.engine import Acknowledged, AlertEngine
from streams.alerts.judge import AlertRole, Sweep
from streams.intake.classify import (
    RawMessage,
    classify,
    expand,
    message_meta,
    refused,
    settle_suspects,
)
from streams.intake.conflicts import divert_conflicts, named
from streams.intake.limits import FacilityRateLimiter, IntakeLimits
from streams.intake.pipeline import (
    IntakeCheckpoint,
    IntakeContext,
    Stage,
    StageRunner,
    WorkerStopping,
)
from streams.intake.seen import SeenEventIds
from streams.intake.stats import IntakeStats

__all__ = [
    "CODE_ERRORS",
    "QUARANTINE_REASON",
    "IntakeService",
    "IntakeStats",
    "WorkerStopping",
    "quarantine_reason",
]

log = logging.getLogger(__name__)


DUPLICATE_FILTER_MARGIN = timedelta(minutes=10)

# Errors that are the code's fault whatever the data: no submission is rejected for them,
# the worker stops (and ``ostwatch up`` restarts it), as for any error without a quarantine.
CODE_ERRORS = (AttributeError, NameError, ImportError, AssertionError, NotImplementedError)
QUARANTINE_REASON = "refused by the store, which no retry can change (quarantined)"


def quarantine_reason(error: BaseException) -> str:
    """The rejection reason of a submission the store refused alone: the store's own first
    line, with anything that looks like personal data in it replaced."""
    lines = str(error).strip().splitlines()
    detail = scrub_text(" ".join(lines[0].split()) if lines else "")[:300]
    return f"{QUARANTINE_REASON}: {type(error).__name__}" + (f": {detail}" if detail else "")


NOT_QUARANTINED = (WorkerStopping, *CODE_ERRORS)


class IntakeService:
    """Classifies batches and writes them, retrying ClickHouse until it has the data."""

    def __init__(self, context: IntakeContext) -> None:
        self.context = context
        config = context.config
        self.limits: IntakeLimits = config.limits
        self._rate = FacilityRateLimiter(
            self.limits.facility_rate_per_s, self.limits.facility_burst
        )
        self.runner = StageRunner(config.retry_max_s, context.should_stop)
        self._registry_refresh_s = config.registry_refresh_s
        self._duplicate_filter = config.duplicate_filter
        self._filter_level_at = utc_now()
        self._seen = SeenEventIds.for_archive(0, *config.duplicate_filter)
        self._registry: RegistrySnapshot | None = None
        self.registry_version = 0
        self._registry_checked = 0.0
        # Whether this worker judges alerts (streams/alerts/judge.py); one judgement at a time.
        self.alert_role = AlertRole()
        self._judging = asyncio.Lock()

    @property
    def store(self) -> Store:
        return self.context.store

    @property
    def alerts(self) -> AlertEngine | None:
        return self.context.alerts

    @property
    def stats(self) -> IntakeStats:
        """The runner's counters (the one owner of the intake's metrics)."""
        return self.runner.stats

    def warm_up(self) -> None:
        """Load the duplicate filter and the registry from ClickHouse, and bring the live
        aggregates and the archive's hash chain level with the archive (blocking)."""
        started = time.monotonic()
        self._filter_level_at = utc_now()
        capacity, error_rate = self._duplicate_filter
        self._seen = SeenEventIds.for_archive(self.store.archived_count(), capacity, error_rate)
        for keys in self.store.archived_event_keys():
            self._seen.update_keys(keys)
        self.refresh_registry(force=True)
        repaired = self.store.aggregates.reconcile()
        chained = self.store.chain.repair()
        self.alert_role.caught_up = False  # the judge catches up before judging again
        log.info(
            "intake warm: %d archived event ids, registry v%d, %d aggregate keys repaired, "
            "%d unchained events chained (%.1f s)",
            self._seen.added,
            self.registry_version,
            repaired,
            chained,
            time.monotonic() - started,
        )

    @property
    def duplicate_filter(self) -> SeenEventIds:
        return self._seen

    def level_duplicate_filter(self) -> int:
        """Add the event_ids other workers archived since this filter was last level with
        the archive; returns how many were read (blocking).

        Called whenever this worker is assigned partitions: until then another worker
        may have owned them, and a redelivered or re-sent event it archived must still be
        a duplicate here. ``DUPLICATE_FILTER_MARGIN`` covers batches still being written
        and clocks that differ between machines.
        """
        since = self._filter_level_at - DUPLICATE_FILTER_MARGIN
        self._filter_level_at = utc_now()
        event_ids = self.store.archived_event_ids_since(since)
        self._seen.update(event_ids)
        return len(event_ids)

    def refresh_registry(self, force: bool = False) -> None:
        """Pick up a newer registry version; cheap, checked at most every few seconds."""
        now = time.monotonic()
        if not force and now - self._registry_checked < self._registry_refresh_s:
            return
        self._registry_checked = now
        version = self.store.registry_version()
        if force or version != self.registry_version:
            self.registry_version, self._registry = self.store.current_registry()

    def archive(self, batch: IntakeBatch) -> None:
        """Stage *archive*: the accepted events (and redeliveries: a write is idempotent)."""
        self.store.write_archive(batch)

    def refresh_aggregates(self, batch: IntakeBatch) -> None:
        """Stage *aggregates*: every aggregate row the archived events touch, and the alert
        engine's index of them.

        Redelivered events are refreshed too: a worker may have died after archiving
        them and before refreshing, and a refresh is idempotent.
        """
        events = [item.event for item in batch.archived]
        touched = touched_by(events)
        if touched:
            self.store.aggregates.refresh(touched)
        if self.alerts is not None and events:
            self.alerts.index(batch.archived)

    def judge_alerts(self, events: Sequence[BaseEvent]) -> list[AlertChange]:
        """The alert changes an archived batch causes (blocking; not yet stored)."""
        if self.alerts is None or not events:
            return []
        return self.alerts.after_intake(events)

    async def settle_alerts(self, batch: IntakeBatch) -> None:
        """Judge, publish and store the alerts a written batch causes (the judge only).

        A failure here never holds up the intake: it is logged, and the events stay
        unjudged in ``alert_progress`` so that the next catch-up judges them again.
        """
        if self.alerts is None or not self.alert_role.judge:
            return
        loop = asyncio.get_running_loop()
        events = [item.event for item in batch.archived]
        try:
            async with self._judging:
                await self._catch_up_alerts()
                changes = await loop.run_in_executor(None, self.judge_alerts, events)
                await self.deliver_alerts(changes)
                await self._judged(
                    [(item.event.event_id, item.meta.received_at) for item in batch.archived]
                )
        except Exception:
            self.stats.alert_failures += 1
            log.exception("alerts for a batch of %d events could not be judged", len(events))

    async def judge_between_batches(self) -> None:
        """The judge's timer: catch up after becoming the judge, then judge what the other
        workers archived (nothing more while this worker holds every partition)."""
        if self.alerts is None or not self.alert_role.judge:
            return
        async with self._judging:
            await self._catch_up_alerts()
            sweep = self.alert_role.sweep
            if sweep is None:
                return
            loop = asyncio.get_running_loop()
            changes, fresh = await loop.run_in_executor(None, self.alerts.sweep, sweep)
            await self.deliver_alerts(changes)
            await self._judged(fresh)

    async def judge_clock(self) -> None:
        """What only the passing of time changes: deadlines, supervision, escalation, stock."""
        if self.alerts is None or not self.alert_role.judge:
            return
        async with self._judging:
            changes = await asyncio.get_running_loop().run_in_executor(None, self.alerts.on_clock)
            await self.deliver_alerts(changes)

    @property
    def judges_alerts(self) -> bool:
        """Whether this worker's engine is the one writer of judged alerts now."""
        return self.alerts is not None and self.alert_role.judge

    async def acknowledge_alerts(self, selection: AckSelection, note: str) -> Acknowledged:
        """An acknowledgement (``ostwatch alerts ack``) through the live engine, the one
        writer of alerts, between two judgements: its versions follow the cached ones, so no
        judgement running at the same time can write a version of the same alert with the
        same sequence. Published, then stored, like every judged change. A worker that does
        not judge now first drops its cache (the judge may have written since).
        KeyError names an alert id that does not exist."""
        engine = self.alerts
        if engine is None:
            raise RuntimeError("alerts are off on this worker")
        async with self._judging:
            if not self.alert_role.judge:
                engine.table.forget()
            loop = asyncio.get_running_loop()
            outcome = await loop.run_in_executor(None, engine.acknowledge_many, selection, note)
            await self.deliver_alerts(outcome.changes)
        return outcome

    async def _catch_up_alerts(self) -> None:
        """Once after becoming the judge (and after a start or an import), before anything
        else is judged: what was archived since the last judged event."""
        role, engine = self.alert_role, self.alerts
        if role.caught_up or engine is None:
            return
        margin = timedelta(seconds=engine.settings.sweep_margin_s)
        loop = asyncio.get_running_loop()
        changes, newest = await loop.run_in_executor(None, engine.catch_up, margin)
        await self.deliver_alerts(changes)
        if newest is not None:
            await loop.run_in_executor(None, engine.table.advance, newest)
        role.caught_up = True
        if not role.alone:
            role.sweep = Sweep(upto=newest or utc_now(), margin=margin)

    async def _judged(self, events: Sequence[tuple[str, datetime]]) -> None:
        """Record how far the archive is judged (and, beside other workers, which events)."""
        if not events or self.alerts is None:
            return
        newest = max(at for _, at in events)
        await asyncio.get_running_loop().run_in_executor(None, self.alerts.table.advance, newest)
        if self.alert_role.sweep is not None:
            self.alert_role.sweep.note(events)

    async def deliver_alerts(self, changes: Sequence[AlertChange]) -> None:
        """Publish alert changes, then store them (see ``IntakeContext.publish_alerts``)."""
        if not changes or self.alerts is None:
            return
        await self.context.publish_alerts(changes)
        await asyncio.get_running_loop().run_in_executor(None, self.alerts.commit, changes)
        self.stats.alert_changes += len(changes)

    def decide(self, messages: Sequence[RawMessage]) -> IntakeBatch:
        """Classify one batch (blocking: may ask ClickHouse about suspected duplicates)."""
        self.refresh_registry()
        classified = classify(
            messages,
            self._registry,
            self._seen,
            utc_now(),
            limits=self.limits,
            rate=self._rate,
        )
        archived = self.store.archived_submission_of(
            [(s.event.facility_id, s.event.event_id) for s in classified.suspects]
        )
        batch = settle_suspects(classified, archived)
        return divert_conflicts(batch, self.store.recorded_digests(named(batch)))

    async def process(
        self, messages: Sequence[RawMessage], checkpoint: IntakeCheckpoint | None = None
    ) -> IntakeBatch:
        """Run a batch through every stage; returns only once ClickHouse has it and its
        rejections are on the dead-letter topic (the caller then commits ``checkpoint``).

        ClickHouse unreachable: the identical batch is retried with back-off. Refused for a
        reason no retry covers: the batch is split until each submission the store refuses
        stands alone, which is rejected with the store's reason (``_quarantine``), so one
        line can never stop the intake.
        """
        batch = await self._write_or_split(messages, self._quarantine, checkpoint)
        visible_at = time.time()
        for message in messages:
            if message.timestamp:
                self.stats.freshness.record(visible_at - message.timestamp)
        self.stats.record(batch)
        for item in batch.rejected:
            log.info(
                "rejected: %s",
                item.reason,
                extra={
                    "topic": item.meta.topic,
                    "partition": item.meta.partition,
                    "offset": item.meta.offset,
                    "event_id": item.event_id or None,
                    "source": item.meta.source,
                    "seq": item.meta.seq,
                },
            )
        _reached(checkpoint, Stage.DEAD_LETTERS)
        await self.context.send_dead_letters(batch.rejected)
        return batch

    async def _write_or_split(
        self,
        messages: Sequence[RawMessage],
        split: Callable[[Sequence[RawMessage], Exception], Awaitable[IntakeBatch]],
        checkpoint: IntakeCheckpoint | None = None,
    ) -> IntakeBatch:
        """Write a batch; if the store refuses it for a reason no retry covers, ``split`` it.

        A worker stopping, or a programming error (``CODE_ERRORS``), is never quarantined.
        """
        try:
            return await self._write_batch(messages, checkpoint)
        except NOT_QUARANTINED:
            raise
        except Exception as exc:
            return await split(messages, exc)

    async def _write_batch(
        self, messages: Sequence[RawMessage], checkpoint: IntakeCheckpoint | None
    ) -> IntakeBatch:
        """The stages of one batch up to its submission rows (retrying while ClickHouse is
        away).

        *decide*, *archive* and *aggregates* are retried as one step: what is decided depends
        on what the store holds (suspected duplicates are looked up), so after the store was
        away the batch is decided again before it is written.
        """
        attempt: list[IntakeBatch] = []

        def decide_and_write() -> IntakeBatch:
            _reached(checkpoint, Stage.DECIDE)
            decided = self.decide(messages)
            attempt[:] = [decided]
            _reached(checkpoint, Stage.ARCHIVE)
            self.archive(decided)
            _reached(checkpoint, Stage.AGGREGATES)
            self.refresh_aggregates(decided)
            return decided

        try:
            batch = await self.runner.run(Stage.DECIDE, messages, decide_and_write)
            self._seen.update([item.event.event_id for item in batch.accepted])
            _reached(checkpoint, Stage.ALERTS)
            await self.settle_alerts(batch)
            _reached(checkpoint, Stage.SUBMISSIONS)
            await self.runner.run(
                Stage.SUBMISSIONS, messages, lambda: self.store.write_submissions(batch)
            )
        except Exception:
            # Part of a refused batch may be archived already: its events must come back as
            # suspects (looked up, then recognised as redeliveries) when it is split.
            if attempt:
                self._seen.update([item.event.event_id for item in attempt[0].accepted])
            raise
        return batch

    async def _quarantine(self, messages: Sequence[RawMessage], error: Exception) -> IntakeBatch:
        """Split a refused batch (bisection, submission by submission) until every part the
        store refuses is one submission; those are rejected with the store's reason and kept,
        everything else is written as usual."""
        items = list(expand(messages, self.limits))
        first = messages[0] if messages else None
        log.warning(
            "splitting a batch of %d submissions to set aside what the store refuses: %s",
            len(items),
            quarantine_reason(error),
            extra={
                "topic": first.topic if first else None,
                "partition": first.partition if first else None,
                "offset": first.offset if first else None,
            },
        )
        return await self._split(items, error)

    async def _split(self, items: Sequence[RawMessage], error: Exception) -> IntakeBatch:
        if not items:  # nothing to blame: the refusal was not about a submission
            raise error
        if len(items) == 1:
            return await self._set_aside(items[0], error)
        middle = len(items) // 2
        result = IntakeBatch()
        for half in (items[:middle], items[middle:]):
            part = await self._write_or_split(half, self._split)
            result.accepted += part.accepted
            result.rejected += part.rejected
            result.duplicates += part.duplicates
            result.redelivered += part.redelivered
        return result

    async def _set_aside(self, item: RawMessage, error: Exception) -> IntakeBatch:
        """Reject one submission the store refused alone, once the store has shown that it
        answers (a store refusing everything is no reason to reject: ``error`` is raised,
        and the worker stops as it would without a quarantine)."""
        try:
            await self.runner.run(Stage.SUBMISSIONS, [item], self.store.ping)
        except WorkerStopping:
            raise
        except Exception as probe:
            raise error from probe
        reason = quarantine_reason(error)
        try:
            rejected = refused(item, reason, utc_now(), self.limits)
        except Exception:  # whatever made the store refuse it may also break reading it
            log.exception("a refused submission could not be read back; kept without it")
            rejected = self._bare(item, reason)
        batch = IntakeBatch(rejected=[rejected])
        try:
            await self.runner.run(
                Stage.SUBMISSIONS, [item], lambda: self.store.write_submissions(batch)
            )
        except WorkerStopping:
            raise
        except Exception:
            # The row itself is refused (its line or its time): keep the reason and the
            # submission's name without them.
            batch = IntakeBatch(rejected=[self._bare(item, reason, rejected)])
            await self.runner.run(
                Stage.SUBMISSIONS, [item], lambda: self.store.write_submissions(batch)
            )
        self.stats.quarantined += 1
        kept = batch.rejected[0]
        log.error(
            "quarantined: %s",
            reason,
            extra={
                "topic": item.topic,
                "partition": item.partition,
                "offset": item.offset,
                "event_id": kept.event_id or None,
                "source": kept.meta.source,
                "seq": kept.meta.seq,
            },
        )
        return batch

    @staticmethod
    def _bare(item: RawMessage, reason: str, rejected: Rejected | None = None) -> Rejected:
        """A rejection that keeps only the reason and the submission's name."""
        if rejected is not None:
            return replace(rejected, raw=b"", occurred_at=None)
        return Rejected(
            message_meta(item, utc_now()), reason, b"", encode_raw_submission(b"", reason)
        )


def _reached(checkpoint: IntakeCheckpoint | None, stage: Stage) -> None:
    if checkpoint is not None:
        checkpoint.reached(stage)
