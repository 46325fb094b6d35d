"""The Faust agent of delivery: alert changes from the alerts topic into the ledger.

The agent only *records* (SQLite, on disk) and returns; Faust commits the offsets after
that, so a crash loses nothing and a redelivered message is recognised by its idempotency
key. Delivering is the dispatcher's job, a background task of the same app.
"""

from __future__ import annotations

import logging
from typing import Any, cast

import faust

from ostwatch.settings import BrokerSettings, StreamSettings
from streams.app import raw_topic
from streams.intake.agent import withhold_commit
from streams.notify.service import NotifyService, RawAlert

log = logging.getLogger(__name__)

REGISTER_NEEDS = ("notify", "broker", "stream_settings")


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


def register(
    app: faust.App,
    notify: NotifyService | None,
    broker: BrokerSettings,
    stream_settings: StreamSettings,
) -> None:
    """Declare the alerts consumer and the dispatcher task (nothing when delivery is off)."""
    if notify is None:
        return
    alerts_topic = raw_topic(app, broker, broker.alerts_topic)

    async def record_alert_changes(stream: faust.StreamT) -> None:
        async for events in cast(faust.Stream, stream).take_events(
            stream_settings.batch_max, within=stream_settings.batch_within_s
        ):
            try:
                await notify.accept([raw_alert(e) for e in events])
            except BaseException:
                withhold_commit(events)
                raise

    app.agent(alerts_topic, name="ostwatch.notify")(record_alert_changes)

    async def dispatch() -> None:
        await notify.run()

    app.task(dispatch)
