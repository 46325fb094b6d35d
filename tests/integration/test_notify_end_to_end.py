"""Alert changes published on the alerts topic of a real embedded stack reach the file
outbox and a real HTTP server, once each, across a restart that empties the broker; and an
enrolment ingested through the stack reaches its commune by e-mail."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.integration.conftest import FIXTURES, RunningStack
from tests.support.events import contract_event
from tests.support.notify import (
    SmtpReceiver,
    WebhookReceiver,
    alert_change,
    keyed,
    outbox_keys,
    publish,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(fail_first=1)
    yield receiver
    receiver.close()


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


def test_alert_changes_on_the_topic_reach_outbox_and_webhook_once(
    tmp_path: Path, webhook: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OSTWATCH_NOTIFY_WEBHOOK_URL", webhook.url)
    monkeypatch.setenv("OSTWATCH_NOTIFY_BACKOFF_BASE_S", "0.2")
    data_dir = tmp_path / "data"
    stack = RunningStack(data_dir)
    first = [alert_change(i, severity="critical") for i in range(20)]
    resolved = [alert_change(i, sequence=2, change="resolved") for i in range(5)]
    stack.start()
    try:
        # 20 alerts open, one message arrives twice, one is not an AlertChange at all.
        publish(data_dir, [*keyed(first), *keyed(first[:1]), (b"x", b"{not an alert change")])
        wait_for(
            lambda: len(webhook.accepted_keys()) == 20 and len(outbox_keys(data_dir)) == 20,
            120,
            "20 changes at the webhook and in the outbox",
        )
        report = stack.json("alerts", "deliveries")
        assert report["deliveries"] == {"sent": 40, "pending": 0, "failed": 0}
        assert report["redelivered_messages"] == 1
        assert {a["alert_id"] for a in report["alerts"]} == {c.alert.alert_id for c in first}
        table = stack.cli("alerts", "deliveries", "--limit", "1").stdout
        assert "đã gửi/sent 40, chờ gửi/pending 0, lỗi/failed 0" in table
        assert f"webhook  {webhook.url}" in table and "2×" in table

        # The embedded broker keeps nothing across a restart: the engine publishes again
        # what it had, plus what happened meanwhile. Only the new changes may go out.
        assert stack.stop() == 0
        stack.start()
        publish(data_dir, [*keyed(first), *keyed(resolved)])
        wait_for(
            lambda: len(outbox_keys(data_dir)) == 25 and len(webhook.accepted_keys()) == 25,
            120,
            "25 changes at the webhook and in the outbox",
        )
        time.sleep(2.0)  # anything sent twice would arrive now
    finally:
        stack.stop()

    expected = sorted(c.idempotency_key for c in first + resolved)
    accepted = webhook.accepted_keys()
    assert sorted(accepted) == expected
    assert set(accepted.values()) == {1}, "a change reached the webhook twice"
    assert sorted(outbox_keys(data_dir)) == expected
    # Each change was refused once (fail_first=1) and retried with the same key.
    attempts = {r.headers["Idempotency-Key"] for r in webhook.requests}
    assert len(webhook.requests) == 2 * len(expected) and attempts == set(expected)


@pytest.fixture
def smtp() -> Iterator[SmtpReceiver]:
    receiver = SmtpReceiver()
    yield receiver
    receiver.close()


def test_an_enrolment_reaches_its_commune_by_email_and_so_does_the_ack(
    tmp_path: Path, smtp: SmtpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole chain: `ostwatch ingest` → intake → the alert engine → the alerts topic →
    the notify agent → the ledger → SMTP to the commune of residence; then `alerts ack`."""
    communes = tmp_path / "communes.csv"
    communes.write_text(
        "commune_code,commune_name,email,webhook_url\nC-07,Xã Bảy,ubnd.c07@example.vn,\n",
        encoding="utf-8",
    )
    for name, value in {
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp.port),
        "EMAIL_TO": "cdc@example.vn",
        "RECIPIENTS_CSV": str(communes),
        "EMAIL_DIGEST_INTERVAL_S": "0",
    }.items():
        monkeypatch.setenv(f"OSTWATCH_NOTIFY_{name}", value)
    enrolment = contract_event(
        "patient.enrolled", "2024-03-01T07:00:00+07:00", "TF-01",
        patient_ref="pat-notify-01", programme="methadone", residence_commune="C-07",
    )  # fmt: skip
    path = tmp_path / "enrolment.jsonl"
    path.write_bytes(orjson.dumps(enrolment) + b"\n")

    def to_commune() -> list[EmailMessage]:
        return [m for rcpts, m in list(smtp.messages) if "ubnd.c07@example.vn" in rcpts]

    stack = RunningStack(tmp_path / "data")
    stack.start()
    try:
        stack.cli("registry", "load", str(FIXTURES / "registry"))
        started = time.monotonic()
        assert stack.ingest(path)["accepted"] == 1
        wait_for(lambda: len(to_commune()) == 1, 60, "the commune's e-mail")
        latency = time.monotonic() - started
        (notice,) = by_kind(stack.json("report", "alerts"))["commune_notification"]
        body = to_commune()[0].get_content()
        assert notice["alert_id"] in body and "Thông báo UBND xã" in body
        assert "C-07" in body

        stack.json("alerts", "ack", notice["alert_id"], "--note", "đã gửi công văn")
        wait_for(lambda: len(to_commune()) == 2, 60, "the commune's second e-mail")
        assert "Resolved / Đã xử lý xong" in to_commune()[1].get_content()
        report = stack.json("alerts", "deliveries", "--alert", notice["alert_id"])
        changes = report["alerts"][0]["changes"]
        assert [c["change"] for c in changes] == ["resolved", "opened"]
        assert all(
            d["status"] == "sent" and not d["fallback"]
            for c in changes
            for d in c["deliveries"]
            if d["notifier"] == "email"
        )
    finally:
        stack.stop()
    opened = changes[1]
    (mail,) = [d for d in opened["deliveries"] if d["notifier"] == "email"]
    in_ledger = datetime.fromisoformat(mail["sent_at"]) - datetime.fromisoformat(
        opened["received_at"]
    )
    print(
        f"`ostwatch ingest` started → commune e-mail received: {latency:.2f} s; "
        f"recorded → sent: {in_ledger.total_seconds() * 1000:.0f} ms"
    )
    assert latency < 10.0


def by_kind(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        found.setdefault(row["kind"], []).append(row)
    return found
