"""The delivery side built from settings: ledger, router, notifiers and dispatcher.

Built once by the worker (``build_notify``) and handed to the agent; nothing here opens a
connection at import time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ostwatch.settings import NotifySettings, SettingsError
from schemas.alerts import AlertChange
from streams.alerts.signing import AlertSigner
from streams.notify.dispatcher import Dispatcher, RetryPolicy
from streams.notify.ledger import EnqueueResult, Ledger, Received
from streams.notify.notifiers import EmailNotifier, Notifier, OutboxNotifier, WebhookNotifier
from streams.notify.recipients import RecipientsError, load_recipients
from streams.notify.routing import Router, default_routes, reaches_communes

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RawAlert:
    """A message from the alerts topic, independent of the Kafka client."""

    value: bytes
    topic: str
    partition: int
    offset: int
    headers: Sequence[tuple[str, bytes]] = ()


@dataclass
class IntakeCounts:
    received: int = 0
    recorded: int = 0
    redelivered: int = 0
    unreadable: int = 0
    deliveries_planned: int = 0
    unrouted: int = 0
    conflicting: int = 0
    unsigned: int = 0  # refused: not signed by this stack's judge (forged, or a wrong key)


class NotifyService:
    """What the agent calls (``accept``) and what runs in the background (``run``).

    With a ``signer`` (the worker always gives one), a change the judge did not sign is
    refused: logged and counted, never recorded for delivery (streams/alerts/signing.py).
    """

    def __init__(
        self,
        ledger: Ledger,
        router: Router,
        dispatcher: Dispatcher,
        signer: AlertSigner | None = None,
    ) -> None:
        self.ledger = ledger
        self.router = router
        self.dispatcher = dispatcher
        self.signer = signer
        self.counts = IntakeCounts()

    async def accept(self, messages: Sequence[RawAlert]) -> EnqueueResult:
        """Record a batch as pending deliveries; returns only once SQLite has it on disk."""
        items: list[Received] = []
        for message in messages:
            self.counts.received += 1
            source = f"{message.topic}/{message.partition}/{message.offset}"
            if self.signer is not None and not self.signer.verify(message.value, message.headers):
                self.counts.unsigned += 1
                log.warning(
                    "alert change refused: not signed by this stack's alert judge (forged, or "
                    "signed with another key); not delivered",
                    extra={
                        "topic": message.topic,
                        "partition": message.partition,
                        "offset": message.offset,
                    },
                )
                continue
            try:
                change = AlertChange.from_bytes(message.value)
            except ValidationError as exc:
                # Our own alert engine wrote it, so this is a bug there: loud, counted, skipped
                # (it can never become deliverable by waiting).
                self.counts.unreadable += 1
                log.error(
                    "unreadable alert change skipped: %s",
                    exc.errors(include_input=False)[0]["msg"],
                    extra={
                        "topic": message.topic,
                        "partition": message.partition,
                        "offset": message.offset,
                    },
                )
                continue
            targets = self.router.plan(change)
            if not targets:
                self.counts.unrouted += 1
            items.append(Received(change, message.value, source, targets))
        result = await self.dispatcher.db(self.ledger.enqueue, items, time.time())
        self.counts.recorded += result.new_changes
        self.counts.redelivered += result.redelivered
        self.counts.deliveries_planned += result.deliveries
        if result.redelivered:
            log.info("redelivered alert changes recognised", extra={"count": result.redelivered})
        for key in result.conflicting:
            self.counts.conflicting += 1
            log.warning(
                "alert change seen again with other content; the first copy stands",
                extra={"idempotency_key": key},
            )
        if result.deliveries:
            self.dispatcher.wake()
        return result

    async def run(self) -> None:
        await self.dispatcher.run()

    def status(self) -> dict[str, Any]:
        return {
            "intake": vars(self.counts),
            "dispatch": self.dispatcher.stats.as_dict(),
            "ledger": str(self.ledger.path),
        }

    def close(self) -> None:
        self.dispatcher.close()
        self.ledger.close()


def build_notifiers(settings: NotifySettings, data_dir: Path) -> dict[str, Notifier]:
    notifiers: dict[str, Notifier] = {}
    if settings.outbox_enabled:
        notifiers["outbox"] = OutboxNotifier(settings.outbox_file(data_dir))
    if settings.webhook_enabled:
        notifiers["webhook"] = WebhookNotifier(settings)
    if settings.email_enabled:
        notifiers["email"] = EmailNotifier(settings)
    return notifiers


def build_router(settings: NotifySettings, data_dir: Path) -> Router:
    defaults: dict[str, tuple[str, ...]] = {}
    if settings.outbox_enabled:
        defaults["outbox"] = (str(settings.outbox_file(data_dir)),)
    if settings.webhook_url is not None:
        defaults["webhook"] = (settings.webhook_url,)
    if settings.email_enabled:
        defaults["email"] = settings.email_to
    communes = load_recipients(settings.recipients_csv) if settings.recipients_csv else {}
    routes = settings.routes if settings.routes is not None else default_routes(settings)
    return Router(routes, defaults, communes)


def build_notify(
    settings: NotifySettings,
    data_dir: Path,
    *,
    clock: Any = time.time,
    signer: AlertSigner | None = None,
) -> NotifyService:
    """Everything from settings, failing fast (``SettingsError``) on what cannot work."""
    try:
        router = build_router(settings, data_dir)
    except (RecipientsError, ValueError) as exc:
        raise SettingsError(f"notifications: {exc}") from exc
    if not reaches_communes(router.routes):
        log.warning(
            "no e-mail or webhook route takes every commune notification: communes are only "
            "told through the outbox (set OSTWATCH_NOTIFY_SMTP_HOST or _WEBHOOK_URL)"
        )
    if settings.email_enabled and not settings.email_to:
        log.warning("OSTWATCH_NOTIFY_EMAIL_TO is empty: only commune contacts get e-mail")
    ledger = Ledger(settings.state_file(data_dir))
    dispatcher = Dispatcher(
        ledger,
        build_notifiers(settings, data_dir),
        RetryPolicy(settings.max_attempts, settings.backoff_base_s, settings.backoff_max_s),
        concurrency=settings.concurrency,
        clock=clock,
    )
    return NotifyService(ledger, router, dispatcher, signer)
