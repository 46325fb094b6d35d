"""The alerts on the Faust app: publishing changes on the alerts topic, who judges, the clock.

The judging worker judges alerts for every batch it takes (``IntakeService.settle_alerts``);
this module gives the intake's context the topic to publish on (``alert_publisher``), sets
the worker's role from each partition assignment (``streams.alerts.judge``: the holder of the
events topic's partition 0 judges), and adds two timers: one that sweeps for what other
workers archived and catches up after a new assignment, and one that judges what only the
passing of time changes (deadlines, supervision, escalation, days of supply). Workers that
are not the judge let both pass.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

import faust

from ostwatch.settings import BrokerSettings
from schemas.alerts import AlertChange
from streams.alerts.signing import AlertSigner
from streams.app import WorkerContext, on_assignment, raw_topic
from streams.intake.pipeline import PublishAlerts

log = logging.getLogger(__name__)


def alert_publisher(app: faust.App, broker: BrokerSettings, signer: AlertSigner) -> PublishAlerts:
    """What the intake publishes alert changes with: the alerts topic, each value signed."""
    topic = raw_topic(app, broker, broker.alerts_topic)

    async def publish(changes: Sequence[AlertChange]) -> None:
        """Send every change, signed (streams/alerts/signing.py), and wait for the broker's
        acknowledgement of each."""
        sent = []
        for change in changes:
            value = change.to_bytes()
            sent.append(
                await topic.send(
                    key=change.alert.alert_id.encode(),
                    value=value,
                    headers=signer.headers(value),
                )
            )
        await asyncio.gather(*sent)

    return publish


def register(app: faust.App, context: WorkerContext) -> None:
    """Declare the judge's role and its timers (when alerts are on)."""
    service, broker = context.service, context.broker
    engine = service.alerts
    if engine is None:
        return
    # Nothing is judged before Faust says which partitions this worker holds.
    service.alert_role.revoked()

    async def on_assigned(partitions: set[int]) -> None:
        service.alert_role.assigned(partitions, broker.partitions)
        log.info("alert role after assignment", extra=service.alert_role.as_dict())

    async def on_revoked(sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        service.alert_role.revoked()

    on_assignment(app, broker.events_topic, on_assigned)
    # mode types the handler as a plain function; the signal awaits coroutine handlers.
    app.on_partitions_revoked.connect(cast(Any, on_revoked))

    def guarded(what: str, judge: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            try:
                await judge()
            except Exception:
                service.stats.alert_failures += 1
                log.exception("alerts: %s failed", what)

        run.__name__ = judge.__name__
        return run

    app.timer(interval=engine.settings.sweep_interval_s, on_leader=False)(
        guarded("judging what other workers archived", service.judge_between_batches)
    )
    app.timer(interval=engine.settings.clock_interval_s, on_leader=False)(
        guarded("judging deadlines and stock by the clock", service.judge_clock)
    )
