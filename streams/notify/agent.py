"""The Faust agent of delivery: alert changes from the alerts topic into the ledger.

The agent only *records* (SQLite, on disk) and returns; the offsets of a batch become
committable only after that, through the same offset ledger as the intake
(streams/intake/offsets.py): a batch that fails or is interrupted is never committed past, so
a crash loses nothing and a redelivered message is recognised by its idempotency key.
Delivering is the dispatcher's job, a background task of the same app.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

import faust

from streams.app import WorkerContext, on_assignment, raw_topic
from streams.intake.agent import batch_offsets, commit_only_decided
from streams.intake.offsets import OffsetLedger
from streams.intake.pipeline import IntakeCheckpoint
from streams.notify.service import NotifyService, RawAlert

log = logging.getLogger(__name__)


def _pairs(headers: Any) -> list[tuple[str, bytes]]:
    """Kafka headers as (name, bytes) pairs, whichever shape the client gave them in."""
    items = headers.items() if isinstance(headers, dict) else headers or ()
    return [(str(k), bytes(v or b"")) for k, v in items]


def raw_alert(event: Any) -> RawAlert:
    message = event.message
    return RawAlert(
        value=bytes(message.value or b""),
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        headers=tuple(_pairs(message.headers)),
    )


@dataclass
class NotifyLoop:
    """Records batches of alert changes; each batch's offsets are committable only once it
    is recorded (``IntakeCheckpoint``). A batch that raises is abandoned, so nothing from
    its first offset on is committed by this process, and the error propagates (Faust logs
    the crashed agent; the next worker reads the batch again)."""

    notify: NotifyService
    offsets: OffsetLedger

    async def run(self, batches: AsyncIterator[Sequence[Any]]) -> None:
        async for events in batches:
            checkpoint = IntakeCheckpoint(self.offsets, batch_offsets(events))
            checkpoint.begin()
            try:
                await self.notify.accept([raw_alert(e) for e in events])
            except BaseException as exc:
                checkpoint.abandon(f"{type(exc).__name__}: {str(exc)[:300]}")
                raise
            checkpoint.commit()


def register(app: faust.App, context: WorkerContext) -> None:
    """Declare the alerts consumer and the dispatcher task (nothing when delivery is off)."""
    notify, broker, stream = context.notify, context.broker, context.stream
    if notify is None:
        return
    alerts_topic = raw_topic(app, broker, broker.alerts_topic)
    offsets = OffsetLedger(broker.alerts_topic)
    loop = NotifyLoop(notify, offsets)

    async def record_alert_changes(stream_: faust.StreamT) -> None:
        commit_only_decided(app.consumer, offsets)  # before any message is acknowledged
        await loop.run(
            cast(faust.Stream, stream_).take_events(stream.batch_max, within=stream.batch_within_s)
        )

    app.agent(alerts_topic, name="ostwatch.notify")(record_alert_changes)

    async def revoked(partitions: set[int]) -> None:
        offsets.revoked(partitions)

    on_assignment(app, broker.alerts_topic, revoked, revoked=True)

    async def dispatch() -> None:
        await notify.run()

    app.task(dispatch)
