"""The Faust agent of the intake: batches from the events topic, decided before commit."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import faust
from faust.types import TP

from ostwatch.settings import BrokerSettings, StreamSettings
from sinks.records import Rejected
from streams.app import on_assignment, raw_topic
from streams.intake.classify import SEQ_HEADER, SOURCE_HEADER, RawMessage
from streams.intake.offsets import OffsetLedger, by_partition
from streams.intake.service import IntakeService, WorkerStopping

log = logging.getLogger(__name__)

REASON_HEADER = "ostwatch-reason"
REGISTER_NEEDS = ("service", "broker", "stream_settings", "offsets")


def raw_message(event: Any) -> RawMessage:
    """Adapt a Faust event (raw serializers) to the client-independent RawMessage."""
    message = event.message
    headers = message.headers or []
    pairs = list(headers.items()) if isinstance(headers, dict) else list(headers)
    return RawMessage(
        value=message.value,
        headers=[(str(k), bytes(v or b"")) for k, v in pairs],
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        timestamp=message.timestamp,
    )


def withhold_commit(events: Sequence[Any]) -> None:
    """Keep the offsets of a batch that never reached its store out of Faust's next commit.

    ``Stream.take_events`` acks its buffer in a ``finally`` even when the batch was
    interrupted. Marking each message as already acked makes Faust's consumer skip recording
    its offset. (Used by the notify agent; the intake commits from an ``OffsetLedger``
    instead, because Faust still commits past such a batch once later messages are acked.)
    """
    for event in events:
        event.message.acked = True


def leave_after_failure(service: IntakeService, exc: BaseException) -> None:
    """Stop this worker after an error no retry covers (a bug, a refused statement).

    The intake reads nothing more in this process (its ledger keeps every offset from the
    failed batch on uncommitted); stopping makes ``ostwatch up`` start a new worker at once,
    and the new one reads the batch again from the committed offset.
    """
    service.stats.failure = f"{type(exc).__name__}: {str(exc)[:300]}"
    log.exception("the intake failed on a batch; stopping this worker so that it is restarted")
    os.kill(os.getpid(), signal.SIGTERM)


def batch_offsets(events: Sequence[Any]) -> dict[int, list[int]]:
    return by_partition((e.message.partition, e.message.offset) for e in events)


class OffsetCommitter:
    """Commits what the ledger says is decided, through the app's consumer (one at a time)."""

    def __init__(self, app: faust.App, ledger: OffsetLedger) -> None:
        self.app = app
        self.ledger = ledger
        self._lock = asyncio.Lock()

    async def commit(self, partitions: set[int] | None = None) -> None:
        """Commit every partition (or those of ``partitions``) this worker still holds."""
        async with self._lock:
            try:
                await self._commit(partitions)
            except Exception:  # a rebalance, a broker away, a consumer not (yet) running
                log.warning("committing decided offsets failed; retried in a second", exc_info=True)

    async def _commit(self, partitions: set[int] | None) -> None:
        topic = self.ledger.topic
        consumer = self.app.consumer
        held = {tp.partition for tp in consumer.assignment() if tp.topic == topic}
        if partitions is not None:
            held &= partitions
        due = {p: offset for p, offset in self.ledger.committable().items() if p in held}
        if not due:
            return
        # Faust has no public call for "commit these offsets"; this is the one its own
        # commit ends in: it flushes the producer (dead letters, alert changes) first.
        offsets = {TP(topic, partition): offset for partition, offset in due.items()}
        if await cast(Any, consumer)._commit_offsets(offsets):
            self.ledger.committed(due)


@dataclass
class IntakeLoop:
    """Takes batches, has each decided, and commits only what is decided.

    After a batch fails, nothing more is read in this process: the loop returns instead of
    raising (Faust would restart a crashed agent on the next batches), a restarted agent
    returns at once, and the ledger never commits from the failed batch's offsets on.
    """

    service: IntakeService
    offsets: OffsetLedger
    commit: Callable[[], Awaitable[None]]
    send_dead_letters: Callable[[Sequence[Rejected]], Awaitable[None]]
    stopping: Callable[[], bool]
    leave: Callable[[IntakeService, BaseException], None] = leave_after_failure

    async def run(self, batches: AsyncIterator[Sequence[Any]]) -> None:
        offsets = self.offsets
        if offsets.failure is not None:
            return  # Faust restarted the agent after a failure: read nothing more here
        async for events in batches:
            taken = batch_offsets(events)
            offsets.taking()
            try:
                batch = await self.service.process([raw_message(e) for e in events])
                await self.send_dead_letters(batch.rejected)
            except WorkerStopping as stopping:
                offsets.abandoned(taken, "")
                log.warning("%s", stopping)
                return
            except asyncio.CancelledError as exc:
                stopping_now = self.stopping()
                offsets.abandoned(taken, "" if stopping_now else "cancelled mid-batch")
                if not stopping_now:
                    self.leave(self.service, exc)
                raise
            except Exception as exc:
                offsets.abandoned(taken, f"{type(exc).__name__}: {str(exc)[:300]}")
                self.leave(self.service, exc)
                return  # not raise: Faust would restart the agent on the next batches
            offsets.decided(taken)
            await self.commit()


def register(
    app: faust.App,
    service: IntakeService,
    broker: BrokerSettings,
    stream_settings: StreamSettings,
    offsets: OffsetLedger,
) -> None:
    """Declare the intake's topics and agent on the one ostwatch Faust app."""

    # acks=False: Faust's consumer never commits this topic; the intake commits from
    # ``offsets`` (streams/intake/offsets.py explains why).
    events_topic = raw_topic(app, broker, broker.events_topic, acks=False)
    service.should_stop = lambda: bool(app.should_stop)
    dead_letters = raw_topic(app, broker, broker.dead_letter_topic)
    committer = OffsetCommitter(app, offsets)

    async def send_dead_letters(rejected: Sequence[Rejected]) -> None:
        for item in rejected:
            await dead_letters.send(
                key=item.facility_id.encode() or None,
                value=item.original,
                headers=[
                    (REASON_HEADER, item.reason.encode()),
                    (SOURCE_HEADER, item.meta.source.encode()),
                    (SEQ_HEADER, str(item.meta.seq).encode()),
                ],
            )

    loop = IntakeLoop(
        service,
        offsets,
        commit=committer.commit,
        send_dead_letters=send_dead_letters,
        stopping=lambda: bool(app.should_stop),
    )

    async def intake(stream: faust.StreamT) -> None:
        # take_events is on Stream, missing from the StreamT protocol faust types agents with.
        await loop.run(
            cast(faust.Stream, stream).take_events(
                stream_settings.batch_max, within=stream_settings.batch_within_s
            )
        )

    app.agent(events_topic, name="ostwatch.intake", concurrency=1)(intake)

    async def commit_decided() -> None:
        """Retry a commit that failed (a rebalance), so that an idle worker shows no lag."""
        await committer.commit()

    app.timer(interval=1.0, on_leader=False)(commit_decided)

    async def revoked(partitions: set[int]) -> None:
        """Commit what is decided while the partitions are still ours, then forget them."""
        try:
            await committer.commit(partitions)
        finally:
            offsets.revoked(partitions)

    on_assignment(app, broker.events_topic, revoked, revoked=True)

    async def level_duplicate_filter(partitions: set[int]) -> None:
        """Before reading partitions another worker may have owned (see the service)."""
        if partitions:
            loop = asyncio.get_running_loop()
            read = await loop.run_in_executor(None, service.level_duplicate_filter)
            log.info("duplicate filter levelled with the archive: %d recent event ids", read)

    on_assignment(app, broker.events_topic, level_duplicate_filter)
