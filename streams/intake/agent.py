"""The Faust agent of the intake: batches from the events topic, decided before commit."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import faust
from faust.types import TP

from ostwatch.settings import BrokerSettings
from schemas.kafka_headers import REASON_HEADER, SEQ_HEADER, SOURCE_HEADER
from sinks.records import Rejected
from streams.app import WorkerContext, on_assignment, raw_topic
from streams.intake.batches import take_batches
from streams.intake.classify import RawMessage
from streams.intake.offsets import OffsetLedger, by_partition
from streams.intake.pipeline import IntakeCheckpoint, SendDeadLetters, WorkerStopping
from streams.intake.service import IntakeService

log = logging.getLogger(__name__)


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


def leave_after_failure(service: IntakeService, exc: BaseException) -> None:
    """Stop this worker after an error no retry covers (a bug, a refused statement).

    The intake reads nothing more in this process (its ledger keeps every offset from the
    failed batch on uncommitted); stopping makes ``ostwatch up`` start a new worker at once,
    and the new one reads the batch again from the committed offset.
    """
    service.runner.failed(exc)
    log.exception("the intake failed on a batch; stopping this worker so that it is restarted")
    os.kill(os.getpid(), signal.SIGTERM)


def batch_offsets(events: Sequence[Any]) -> dict[int, list[int]]:
    return by_partition((e.message.partition, e.message.offset) for e in events)


def commit_only_decided(consumer: Any, ledger: OffsetLedger) -> None:
    """Make Faust's consumer commit the ledger's topic where the ledger says, not where the
    messages were acknowledged (streams/intake/offsets.py says why). The intake's events
    topic and delivery's alerts topic each have a ledger; other topics stay Faust's.

    Faust commits from one place: each commit asks ``_new_offset(tp)`` for the offset to
    commit. For a ledger's topic that answer now comes from the ledger; everything else
    stays Faust's: the commit timer, the commit while partitions are revoked (after the
    streams finished their messages) and on stop, the producer flush before each commit.
    Acknowledgements of the topic are still made (Faust waits for them before a rebalance
    or a stop) and are dropped here, unused.
    """
    ledgers: dict[str, OffsetLedger] | None = getattr(consumer, "_ostwatch_ledgers", None)
    if ledgers is None:
        ledgers = {}
        faust_new_offset = consumer._new_offset

        def new_offset(tp: TP) -> int | None:
            own = ledgers.get(tp.topic)
            if own is None:
                return cast(int | None, faust_new_offset(tp))
            consumer._acked[tp].clear()
            consumer._acked_index[tp].clear()
            consumer._gap[tp].clear()
            return own.candidate(tp.partition)

        consumer._new_offset = new_offset
        consumer._ostwatch_ledgers = ledgers
    ledgers[ledger.topic] = ledger


@dataclass
class IntakeLoop:
    """Takes batches and has each run through the intake's stages under a checkpoint: committed
    in the ledger once decided, abandoned otherwise.

    After a batch fails (or the worker stops under one), nothing more is decided in this
    process: later batches are only let through unread (Faust waits for them to be
    acknowledged before it stops), the loop never raises (Faust would restart a crashed
    agent on the next batches), and the ledger never offers an offset from the failed
    batch's first one on.
    """

    service: IntakeService
    offsets: OffsetLedger
    leave: Callable[[IntakeService, BaseException], None] = leave_after_failure

    async def run(self, batches: AsyncIterator[Sequence[Any]]) -> None:
        reading = self.offsets.failure is None  # a restarted agent after a failure reads nothing
        previous_end: float | None = None
        async for events in batches:
            checkpoint = IntakeCheckpoint(self.offsets, batch_offsets(events))
            if not reading:
                checkpoint.abandon("")
                continue
            checkpoint.begin()
            if previous_end is not None:
                self.service.stats.record_stages({"take": time.monotonic() - previous_end})
            try:
                await self.service.process([raw_message(e) for e in events], checkpoint)
            except WorkerStopping as stopping:
                checkpoint.abandon("")
                log.warning("%s", stopping)
                reading = False
                continue
            except asyncio.CancelledError as exc:
                stopping_now = self.service.runner.stopping()
                checkpoint.abandon("" if stopping_now else "cancelled mid-batch")
                if not stopping_now:
                    self.leave(self.service, exc)
                raise
            except Exception as exc:
                checkpoint.abandon(f"{type(exc).__name__}: {str(exc)[:300]}")
                self.leave(self.service, exc)
                reading = False
                continue  # not raise: Faust would restart the agent on the next batches
            checkpoint.commit()
            self.service.stats.record_stages(checkpoint.stage_seconds())
            previous_end = time.monotonic()


def dead_letter_sender(app: faust.App, broker: BrokerSettings) -> SendDeadLetters:
    """Puts each rejected submission on the dead-letter topic: its original bytes, named by
    its source and seq, with the reason (the intake's context gets this)."""
    dead_letters = raw_topic(app, broker, broker.dead_letter_topic)

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

    return send_dead_letters


def register(app: faust.App, context: WorkerContext) -> None:
    """Declare the intake's agent on the one ostwatch Faust app."""
    service, offsets, broker, stream = (
        context.service,
        context.offsets,
        context.broker,
        context.stream,
    )
    events_topic = raw_topic(app, broker, broker.events_topic)
    loop = IntakeLoop(service, offsets)

    async def intake(stream_: faust.StreamT) -> None:
        commit_only_decided(app.consumer, offsets)  # before any message is acknowledged
        # Stream, not the StreamT protocol faust types agents with (see take_batches).
        await loop.run(
            take_batches(cast(faust.Stream, stream_), stream.batch_max, stream.batch_within_s)
        )

    app.agent(events_topic, name="ostwatch.intake", concurrency=1)(intake)

    async def revoked(partitions: set[int]) -> None:
        """Faust committed them (after the streams finished); the next reader starts at
        the group's committed offset, which may become another worker's."""
        offsets.revoked(partitions)

    on_assignment(app, broker.events_topic, revoked, revoked=True)

    async def level_duplicate_filter(partitions: set[int]) -> None:
        """Before reading partitions another worker may have owned (see the service)."""
        if partitions:
            loop = asyncio.get_running_loop()
            read = await loop.run_in_executor(None, service.level_duplicate_filter)
            log.info("duplicate filter levelled with the archive: %d recent event ids", read)

    on_assignment(app, broker.events_topic, level_duplicate_filter)
