"""Notifiers: one small protocol, three ways to reach people.

Each delivers a *batch* of changes to one recipient, all or nothing, and raises
``DeliveryError`` saying whether trying again can help. How many changes a batch may hold
and how often one recipient may be contacted are the notifier's own flood controls:

- webhook: one change per POST (the idempotency key is per change), at most
  ``webhook_rate_per_s`` POSTs per second to one endpoint;
- email: a digest of up to ``email_digest_max`` changes, at most one message per recipient
  per ``email_digest_interval_s`` (an alert storm is one e-mail, not hundreds);
- outbox: up to 1000 lines per write and one fsync, no pause (a local file).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import os
import smtplib
import ssl
from collections.abc import Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import orjson

from ostwatch.settings import NotifySettings
from schemas.alerts import AlertChange
from schemas.labels import ALERT_KINDS
from streams.notify import render

log = logging.getLogger(__name__)

RETRIABLE_HTTP = frozenset({408, 425, 429, 500, 502, 503, 504})
USER_AGENT = "ostwatch-notify/1"


class DeliveryError(Exception):
    """A delivery did not happen. ``retriable`` False means trying again cannot help."""

    def __init__(self, reason: str, retriable: bool, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.retriable = retriable
        self.retry_after_s = retry_after_s


class Notifier(Protocol):
    name: str
    max_batch: int
    min_interval_s: float

    async def deliver(self, recipient: str, changes: Sequence[AlertChange]) -> None: ...

    async def close(self) -> None: ...


def redact_url(url: str) -> str:
    """An endpoint fit for logs and the CLI: no user:password, no query string."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def webhook_body(change: AlertChange) -> bytes:
    doc: dict[str, Any] = change.model_dump(mode="json")
    label = ALERT_KINDS[change.alert.kind]
    doc.update(idempotency_key=change.idempotency_key, kind_en=label.en, kind_vi=label.vi)
    return orjson.dumps(doc)


class WebhookNotifier:
    """HTTP POST of one change as JSON; retried by the dispatcher with the same key."""

    name = "webhook"
    max_batch = 1

    def __init__(self, settings: NotifySettings) -> None:
        self.timeout = aiohttp.ClientTimeout(total=settings.webhook_timeout_s)
        self.token = settings.webhook_token
        self.min_interval_s = 1.0 / settings.webhook_rate_per_s
        self._session: aiohttp.ClientSession | None = None

    def _headers(self, change: AlertChange) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": change.idempotency_key,
            "User-Agent": USER_AGENT,
        }
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token.get_secret_value()}"
        return headers

    async def deliver(self, recipient: str, changes: Sequence[AlertChange]) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        for change in changes:
            try:
                async with self._session.post(
                    recipient, data=webhook_body(change), headers=self._headers(change)
                ) as response:
                    await response.read()
                    status = response.status
                    retry_after = response.headers.get("Retry-After")
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                raise DeliveryError(f"{type(exc).__name__}: {exc}", retriable=True) from exc
            if 200 <= status < 300:
                continue
            raise DeliveryError(
                f"HTTP {status} from {redact_url(recipient)}",
                retriable=status in RETRIABLE_HTTP,
                retry_after_s=_seconds(retry_after),
            )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP date; the back-off schedule applies


class EmailNotifier:
    """A plain-text e-mail per recipient: one change, or a digest of many (alert storms)."""

    name = "email"

    def __init__(self, settings: NotifySettings) -> None:
        if settings.smtp_host is None:
            raise ValueError("EmailNotifier needs OSTWATCH_NOTIFY_SMTP_HOST")
        self.host = settings.smtp_host
        self.port = settings.smtp_port
        self.starttls = settings.smtp_starttls
        self.username = settings.smtp_username
        self.password = settings.smtp_password
        self.timeout = settings.smtp_timeout_s
        self.sender = settings.email_from
        self.max_batch = settings.email_digest_max
        self.min_interval_s = settings.email_digest_interval_s

    def build(self, recipient: str, changes: Sequence[AlertChange]) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = recipient
        message["Subject"] = render.subject_line(changes)
        message["Date"] = email.utils.formatdate(usegmt=True)
        domain = self.sender.rsplit("@", 1)[1]
        message["Message-ID"] = render.message_id([c.idempotency_key for c in changes], domain)
        message["X-Ostwatch-Changes"] = str(len(changes))
        message.set_content(render.body_text(changes), charset="utf-8")
        return message

    def _send(self, message: EmailMessage) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            smtp.ehlo()
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if self.username:
                password = self.password.get_secret_value() if self.password else ""
                smtp.login(self.username, password)
            smtp.send_message(message)

    async def deliver(self, recipient: str, changes: Sequence[AlertChange]) -> None:
        message = self.build(recipient, changes)
        try:
            await asyncio.to_thread(self._send, message)
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(f"recipient refused: {exc.recipients}", retriable=False) from exc
        except smtplib.SMTPResponseException as exc:
            # 4xx is a temporary condition by definition (RFC 5321); 5xx is permanent.
            raise DeliveryError(
                f"SMTP {exc.smtp_code}: {exc.smtp_error!r}", retriable=exc.smtp_code < 500
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}", retriable=True) from exc

    async def close(self) -> None:
        return None


class OutboxNotifier:
    """One JSON line per delivered change, fsync'd; a change already in the file is skipped,
    so even a crash between writing and marking it sent leaves exactly one line."""

    name = "outbox"
    max_batch = 1000
    min_interval_s = 0.0

    def __init__(self, path: Path) -> None:
        self.path = path
        self._written: set[str] | None = None

    def _load(self) -> set[str]:
        keys: set[str] = set()
        if self.path.exists():
            with self.path.open("rb") as handle:
                for raw in handle:
                    with contextlib.suppress(orjson.JSONDecodeError):
                        keys.add(str(orjson.loads(raw).get("idempotency_key")))
        return keys

    def _append(self, changes: Sequence[AlertChange]) -> None:
        if self._written is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._written = self._load()
        fresh = [c for c in changes if c.idempotency_key not in self._written]
        if not fresh:
            return
        lines = b"".join(
            orjson.dumps(
                {
                    "idempotency_key": c.idempotency_key,
                    "delivered_at": datetime.now(UTC).isoformat(),
                    **c.model_dump(mode="json"),
                }
            )
            + b"\n"
            for c in fresh
        )
        created = not self.path.exists()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            view = memoryview(lines)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        self._written.update(c.idempotency_key for c in fresh)

    async def deliver(self, recipient: str, changes: Sequence[AlertChange]) -> None:
        try:
            await asyncio.to_thread(self._append, changes)
        except OSError as exc:
            raise DeliveryError(f"outbox {self.path}: {exc.strerror}", retriable=True) from exc

    async def close(self) -> None:
        return None
