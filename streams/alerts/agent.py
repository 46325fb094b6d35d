"""The alerts on the Faust app: publishing changes on the alerts topic, and the clock.

The intake agent judges alerts for every batch (``IntakeService.settle_alerts``); this
module gives it the topic to publish on, and adds a timer that judges what only the passing
of time changes (deadlines, supervision, escalation, days of supply).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import faust

from ostwatch.settings import BrokerSettings
from schemas.alerts import AlertChange
from streams.app import raw_topic
from streams.intake.service import IntakeService

log = logging.getLogger(__name__)

REGISTER_NEEDS = ("service", "broker")


def register(app: faust.App, service: IntakeService, broker: BrokerSettings) -> None:
    """Declare the alerts topic and the clock timer (when the service judges alerts)."""
    engine = service.alerts
    if engine is None:
        return
    topic = raw_topic(app, broker, broker.alerts_topic)

    async def publish(changes: Sequence[AlertChange]) -> None:
        """Send every change and wait for the broker's acknowledgement of each."""
        sent = [
            await topic.send(key=change.alert.alert_id.encode(), value=change.to_bytes())
            for change in changes
        ]
        await asyncio.gather(*sent)

    service.publish_alerts = publish

    @app.timer(interval=engine.settings.clock_interval_s, on_leader=False)
    async def judge_the_clock() -> None:
        loop = asyncio.get_running_loop()
        try:
            changes = await loop.run_in_executor(None, engine.on_clock)
            await service.deliver_alerts(changes)
        except Exception:
            service.stats.alert_failures += 1
            log.exception("alerts: judging deadlines and stock by the clock failed")
