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


def commit_only_decided(consumer: Any, ledger: OffsetLedger) -> None:
    """Make Faust's consumer commit the events topic where the ledger says, not where the
    messages were acknowledged (streams/intake/offsets.py says why).

    Faust commits from one place: each commit asks ``_new_offset(tp)`` for the offset to
    commit. For the events topic that answer now comes from the ledger; everything else
    stays Faust's: the commit timer, the commit while partitions are revoked (after the
    streams finished their messages) and on stop, the producer flush before each commit.
    Acknowledgements of the topic are still made (Faust waits for them before a rebalance
    or a stop) and are dropped here, unused.
    """
    if getattr(consumer, "_ostwatch_ledger", None) is ledger:
        return
    faust_new_offset = consumer._new_offset

    def new_offset(tp: TP) -> int | None:
        if tp.topic != ledger.topic:
            return cast(int | None, faust_new_offset(tp))
        consumer._acked[tp].clear()
        consumer._acked_index[tp].clear()
        consumer._gap[tp].clear()
        return ledger.candidate(tp.partition)

    consumer._new_offset = new_offset
    consumer._ostwatch_ledger = ledger


@dataclass
class IntakeLoop:
    """Takes batches and has each decided; the ledger records what was.

    After a batch fails (or the worker stops under one), nothing more is decided in this
    process: later batches are only let through unread (Faust waits for them to be
    acknowledged before it stops), the loop never raises (Faust would restart a crashed
    agent on the next batches), and the ledger never offers an offset from the failed
    batch's first one on.
    """

    service: IntakeService
    offsets: OffsetLedger
    send_dead_letters: Callable[[Sequence[Rejected]], Awaitable[None]]
    stopping: Callable[[], bool]
    leave: Callable[[IntakeService, BaseException], None] = leave_after_failure

    async def run(self, batches: AsyncIterator[Sequence[Any]]) -> None:
        offsets = self.offsets
        reading = offsets.failure is None  # a restarted agent after a failure reads nothing
        async for events in batches:
            taken = batch_offsets(events)
            if not reading:
                offsets.abandoned(taken, "")
                continue
            offsets.taking()
            try:
                batch = await self.service.process([raw_message(e) for e in events])
                await self.send_dead_letters(batch.rejected)
            except WorkerStopping as stopping:
                offsets.abandoned(taken, "")
                log.warning("%s", stopping)
                reading = False
                continue
            except asyncio.CancelledError as exc:
                stopping_now = self.stopping()
                offsets.abandoned(taken, "" if stopping_now else "cancelled mid-batch")
                if not stopping_now:
                    self.leave(self.service, exc)
                raise
            except Exception as exc:
                offsets.abandoned(taken, f"{type(exc).__name__}: {str(exc)[:300]}")
                self.leave(self.service, exc)
                reading = False
                continue  # not raise: Faust would restart the agent on the next batches
            offsets.decided(taken)


def register(
    app: faust.App,
    service: IntakeService,
    broker: BrokerSettings,
    stream_settings: StreamSettings,
    offsets: OffsetLedger,
) -> None:
    """Declare the intake's topics and agent on the one ostwatch Faust app."""

    events_topic = raw_topic(app, broker, broker.events_topic)
    service.should_stop = lambda: bool(app.should_stop)
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

    loop = IntakeLoop(
        service,
        offsets,
        send_dead_letters=send_dead_letters,
        stopping=lambda: bool(app.should_stop),
    )

    async def intake(stream: faust.StreamT) -> None:
        commit_only_decided(app.consumer, offsets)  # before any message is acknowledged
        # take_events is on Stream, missing from the StreamT protocol faust types agents with.
        await loop.run(
            cast(faust.Stream, stream).take_events(
                stream_settings.batch_max, within=stream_settings.batch_within_s
            )
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
