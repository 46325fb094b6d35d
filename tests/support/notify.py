"""Real local receivers for the notifiers' tests: an HTTP server and an SMTP server, each in
a thread of the test process, recording what reached them; and alert changes to send."""

from __future__ import annotations

import email
import email.policy
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from kafka import KafkaProducer

from infra.broker import free_port
from infra.gateway import StackInfo
from ostwatch.settings import BrokerSettings
from schemas.alerts import Alert, AlertChange, alert_id_for
from streams.alerts.signing import AlertSigner


def alert_change(
    n: int,
    *,
    kind: str = "stock_low",
    severity: str = "warning",
    sequence: int = 1,
    change: str = "opened",
    facility_id: str = "TF-01",
    details: dict[str, Any] | None = None,
) -> AlertChange:
    """Change number ``n`` of a distinct alert (subject ``ITEM-n``)."""
    subject = f"ITEM-{n}"
    alert = Alert(
        alert_id=alert_id_for(kind, facility_id, subject),
        kind=kind,
        severity=severity,
        facility_id=facility_id,
        subject=subject,
        raised_at=datetime(2024, 3, 1, 1, 0, tzinfo=UTC),
        status="resolved" if change == "resolved" else "open",
        message=f"Stock of {subject} is low at {facility_id}",
        message_vi=f"Tồn kho {subject} thấp tại {facility_id}",
        details=details or {},
    )
    return AlertChange(change=change, sequence=sequence, alert=alert)


def publish(
    data_dir: Path, messages: Sequence[tuple[bytes, bytes]], *, signed: bool = True
) -> None:
    """Send (key, value) pairs to a running stack's alerts topic the way its alert judge
    does (signed with the stack's key), or as a forger would (``signed=False``)."""
    info = StackInfo.read(data_dir)
    assert info is not None, "the stack is not running"
    signer = AlertSigner.for_stack(data_dir)
    producer = KafkaProducer(
        bootstrap_servers=info.bootstrap, acks="all", enable_idempotence=False, linger_ms=5
    )
    try:
        for key, value in messages:
            headers = signer.headers(value) if signed else []
            producer.send(BrokerSettings().alerts_topic, key=key, value=value, headers=headers)
        producer.flush(30)
    finally:
        producer.close(10)


def keyed(changes: Sequence[AlertChange]) -> list[tuple[bytes, bytes]]:
    return [(c.alert.alert_id.encode(), c.to_bytes()) for c in changes]


def outbox_keys(data_dir: Path) -> list[str]:
    path = data_dir / "outbox" / "alerts.jsonl"
    if not path.exists():
        return []
    return [orjson.loads(line)["idempotency_key"] for line in path.read_bytes().splitlines()]


@dataclass
class Received:
    at: float
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    status: int


@dataclass
class WebhookReceiver:
    """``ThreadingHTTPServer`` on 127.0.0.1 that answers 503 to the first ``fail_first``
    attempts of each idempotency key, then 200; optionally slow, to hold requests open."""

    fail_first: int = 0
    delay_s: float = 0.0
    down_until: float = 0.0  # time.monotonic() before which every request gets 503
    requests: list[Received] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = orjson.loads(self.rfile.read(length))
                status = receiver.record(self.path, dict(self.headers), body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def record(self, path: str, headers: dict[str, str], body: dict[str, Any]) -> int:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            key = headers.get("Idempotency-Key", "")
            earlier = sum(1 for r in self.requests if r.headers.get("Idempotency-Key") == key)
            down = time.monotonic() < self.down_until
            status = 503 if down or earlier < self.fail_first else 200
            self.requests.append(Received(time.monotonic(), path, headers, body, status))
        time.sleep(self.delay_s)
        with self._lock:
            self.in_flight -= 1
        return status

    def accepted(self) -> list[Received]:
        """The requests answered 200, in arrival order."""
        with self._lock:
            return [r for r in self.requests if r.status == 200]

    def accepted_keys(self) -> Counter[str]:
        """Idempotency keys answered 200, with how often each was."""
        return Counter(r.headers["Idempotency-Key"] for r in self.accepted())

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _Collect:
    def __init__(self, sink: SmtpReceiver) -> None:
        self.sink = sink

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        raw = envelope.original_content or b""
        message = email.message_from_bytes(raw, policy=email.policy.default)
        with self.sink.lock:
            self.sink.messages.append((list(envelope.rcpt_tos), message))
            self.sink.times.append(time.monotonic())
        return "250 OK"


class SmtpReceiver:
    """aiosmtpd's ``Controller``: a real SMTP server on 127.0.0.1 in its own thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.messages: list[tuple[list[str], EmailMessage]] = []
        self.times: list[float] = []
        # aiosmtpd probes its own port after binding, so it needs a concrete one.
        self.port = free_port()
        self.controller = Controller(_Collect(self), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def close(self) -> None:
        self.controller.stop()
