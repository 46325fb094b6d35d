"""The Faust agent of the intake: batches from the events topic, written before commit."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Sequence
from typing import Any, cast

import faust

from ostwatch.settings import BrokerSettings, StreamSettings
from streams.app import on_assignment, raw_topic
from streams.intake.classify import SEQ_HEADER, SOURCE_HEADER, RawMessage
from streams.intake.service import IntakeService, WorkerStopping

log = logging.getLogger(__name__)

REASON_HEADER = "ostwatch-reason"
REGISTER_NEEDS = ("service", "broker", "stream_settings")


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
    """Keep the offsets of a batch that never reached ClickHouse out of the next commit.

    ``Stream.take_events`` acks its buffer in a ``finally`` even when the batch was
    interrupted (shutdown while ClickHouse is down). Marking each message as already
    acked makes Faust's consumer skip recording its offset, so the batch is delivered
    again after a restart instead of being lost.
    """
    for event in events:
        event.message.acked = True


def leave_after_failure(service: IntakeService, exc: Exception) -> None:
    """Stop this worker after an error no retry covers (a bug, a refused statement).

    Faust would restart the agent and go on with the next batches; their commits cannot
    pass the failed batch, so it would wait unread until some later restart while the
    worker looked healthy. Stopping makes ``ostwatch up`` restart the worker at once,
    and the new one reads the batch again from the committed offset.
    """
    service.stats.failure = f"{type(exc).__name__}: {str(exc)[:300]}"
    log.exception("the intake failed on a batch; stopping this worker so that it is restarted")
    os.kill(os.getpid(), signal.SIGTERM)


def register(
    app: faust.App,
    service: IntakeService,
    broker: BrokerSettings,
    stream_settings: StreamSettings,
) -> None:
    """Declare the intake's topics and agent on the one ostwatch Faust app."""

    events_topic = raw_topic(app, broker, broker.events_topic)
    service.should_stop = lambda: bool(app.should_stop)
    dead_letters = raw_topic(app, broker, broker.dead_letter_topic)

    async def intake(stream: faust.StreamT) -> None:
        # take_events is on Stream, missing from the StreamT protocol faust types agents with.
        async for events in cast(faust.Stream, stream).take_events(
            stream_settings.batch_max, within=stream_settings.batch_within_s
        ):
            try:
                batch = await service.process([raw_message(e) for e in events])
            except WorkerStopping as stopping:
                withhold_commit(events)
                log.warning("%s", stopping)
                return
            except asyncio.CancelledError:
                withhold_commit(events)
                raise
            except Exception as exc:
                withhold_commit(events)
                leave_after_failure(service, exc)
                raise
            for item in batch.rejected:
                await dead_letters.send(
                    key=item.facility_id.encode() or None,
                    value=item.original,
                    headers=[
                        (REASON_HEADER, item.reason.encode()),
                        (SOURCE_HEADER, item.meta.source.encode()),
                        (SEQ_HEADER, str(item.meta.seq).encode()),
                    ],
                )

    app.agent(events_topic, name="ostwatch.intake")(intake)

    async def level_duplicate_filter(partitions: set[int]) -> None:
        """Before reading partitions another worker may have owned (see the service)."""
        if partitions:
            loop = asyncio.get_running_loop()
            read = await loop.run_in_executor(None, service.level_duplicate_filter)
            log.info("duplicate filter levelled with the archive: %d recent event ids", read)

    on_assignment(app, broker.events_topic, level_duplicate_filter)
