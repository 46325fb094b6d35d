"""Delivery of alert changes to real local receivers: an HTTP server, an SMTP server
(aiosmtpd) and the file outbox, through the real SQLite ledger and dispatcher."""

from __future__ import annotations

import asyncio
import logging
import math
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from infra.cli import main
from ostwatch.settings import NotifySettings
from schemas.alerts import AlertChange
from streams.notify.ledger import delivery_report
from streams.notify.service import NotifyService, RawAlert, build_notify
from tests.support.notify import SmtpReceiver, WebhookReceiver, alert_change

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

TOKEN = "s3cret-webhook-token"  # noqa: S105 - a test value, checked to stay out of logs


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()


@pytest.fixture
def smtp() -> Iterator[SmtpReceiver]:
    receiver = SmtpReceiver()
    yield receiver
    receiver.close()


def settings(**values: Any) -> NotifySettings:
    base: dict[str, Any] = {"backoff_base_s": 0.2, "backoff_max_s": 2.0}
    return NotifySettings(**{**base, **values})


def raw(changes: Sequence[AlertChange], offset: int = 0) -> list[RawAlert]:
    return [RawAlert(c.to_bytes(), "ostwatch.alerts", 0, offset + i) for i, c in enumerate(changes)]


async def deliver_until(
    service: NotifyService, done: Callable[[], bool], timeout: float = 60.0
) -> None:
    """Run the dispatcher until ``done()`` holds, then stop it the way the worker does."""
    task = asyncio.create_task(service.run())
    try:
        async with asyncio.timeout(timeout):
            while not done():
                await asyncio.sleep(0.02)
    finally:
        await service.dispatcher.stop()
        await task


def ledger_statuses(data_dir: Path) -> Counter[str]:
    with sqlite3.connect(data_dir / "notify.sqlite") as db:
        return Counter(dict(db.execute("SELECT status, COUNT(*) FROM deliveries GROUP BY 1")))


def outbox_keys(data_dir: Path) -> list[str]:
    path = data_dir / "outbox" / "alerts.jsonl"
    return [orjson.loads(line)["idempotency_key"] for line in path.read_bytes().splitlines()]


def test_webhook_retries_with_backoff_and_one_idempotency_key(
    tmp_path: Path, webhook: WebhookReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    webhook.fail_first = 2
    service = build_notify(
        settings(webhook_url=webhook.url, webhook_token=TOKEN, outbox_enabled=False), tmp_path
    )
    change = alert_change(1, severity="critical")

    async def scenario() -> None:
        await service.accept(raw([change]))
        await deliver_until(service, lambda: len(webhook.requests) == 3)

    with caplog.at_level(logging.DEBUG):
        asyncio.run(scenario())
    service.close()

    keys = [r.headers["Idempotency-Key"] for r in webhook.requests]
    assert keys == [change.idempotency_key] * 3
    assert all(r.body["idempotency_key"] == change.idempotency_key for r in webhook.requests)
    assert all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r in webhook.requests)
    assert webhook.requests[0].body["alert"]["alert_id"] == change.alert.alert_id
    # Back-off with jitter: attempt n waits in [base·2^(n−1)/2, base·2^(n−1)], base 0.2 s.
    gaps = [b.at - a.at for a, b in zip(webhook.requests, webhook.requests[1:], strict=False)]
    assert 0.1 <= gaps[0] <= 0.2 + 1.0  # upper slack: a loaded 2-core machine
    assert 0.2 <= gaps[1] <= 0.4 + 1.0
    assert ledger_statuses(tmp_path) == Counter({"sent": 1})
    report = delivery_report(tmp_path / "notify.sqlite")
    (delivery,) = report["alerts"][0]["changes"][0]["deliveries"]
    assert delivery["status"] == "sent" and delivery["attempts"] == 3
    assert TOKEN not in caplog.text


def test_webhook_gives_up_after_max_attempts_and_is_shown_failed(
    tmp_path: Path, webhook: WebhookReceiver
) -> None:
    webhook.fail_first = 100
    service = build_notify(
        settings(webhook_url=webhook.url, outbox_enabled=False, max_attempts=3), tmp_path
    )

    async def scenario() -> None:
        await service.accept(raw([alert_change(1)]))
        await deliver_until(service, lambda: ledger_statuses(tmp_path)["failed"] == 1)

    asyncio.run(scenario())
    service.close()
    assert len(webhook.requests) == 3
    report = delivery_report(tmp_path / "notify.sqlite", status="failed")
    (delivery,) = report["alerts"][0]["changes"][0]["deliveries"]
    assert delivery["attempts"] == 3 and "HTTP 503" in delivery["last_error"]
    table = CliRunner().invoke(main, ["alerts", "deliveries", "--data-dir", str(tmp_path)])
    assert "lỗi/failed 1" in table.output and "HTTP 503" in table.output

    # The endpoint is fixed; an operator queues the failed delivery again.
    webhook.fail_first = 0
    result = CliRunner().invoke(main, ["alerts", "redeliver", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0 and "1 failed delivery queued again" in result.output
    again = build_notify(
        settings(webhook_url=webhook.url, outbox_enabled=False, max_attempts=3), tmp_path
    )
    asyncio.run(deliver_until(again, lambda: ledger_statuses(tmp_path)["sent"] == 1))
    again.close()
    assert [r.status for r in webhook.requests] == [503, 503, 503, 200]


def test_a_dead_endpoint_is_probed_not_flooded_and_alert_order_holds(
    tmp_path: Path, webhook: WebhookReceiver
) -> None:
    """While the endpoint is down, the lane backs off as a whole (a few probes, not one
    request per pending change); afterwards every change arrives, each alert in order."""
    down_s = 2.0
    opened = [alert_change(i) for i in range(50)]
    resolved = [alert_change(i, sequence=2, change="resolved") for i in range(50)]
    service = build_notify(
        settings(webhook_url=webhook.url, outbox_enabled=False, webhook_rate_per_s=1000),
        tmp_path,
    )

    async def scenario() -> None:
        webhook.down_until = time.monotonic() + down_s
        await service.accept(raw(opened + resolved))
        await deliver_until(service, lambda: len(webhook.accepted()) == 100)

    asyncio.run(scenario())
    service.close()
    refused = [r for r in webhook.requests if r.status == 503]
    # base 0.2 s, doubling: about log2(2 s / 0.2 s) + 1 probes, never one per change.
    assert 1 <= len(refused) <= 8, len(refused)
    order = [r.headers["Idempotency-Key"] for r in webhook.accepted()]
    for first, second in zip(opened, resolved, strict=True):
        assert order.index(first.idempotency_key) < order.index(second.idempotency_key)
    assert sorted(webhook.accepted_keys().values()) == [1] * 100


def test_email_through_smtp_in_english_and_vietnamese(tmp_path: Path, smtp: SmtpReceiver) -> None:
    service = build_notify(
        settings(
            smtp_host="127.0.0.1",
            smtp_port=smtp.port,
            email_to="province@example.vn, cdc@example.vn",
            email_from="alerts@ostwatch.example.vn",
            outbox_enabled=False,
        ),
        tmp_path,
    )
    warning, info = alert_change(1, severity="warning"), alert_change(2, severity="info")

    async def scenario() -> None:
        await service.accept(raw([warning, info]))
        await deliver_until(service, lambda: len(smtp.messages) == 2)

    asyncio.run(scenario())
    service.close()
    # Default routes send e-mail from warning up: the info change reached no inbox.
    assert sorted(rcpt for rcpts, _ in smtp.messages for rcpt in rcpts) == [
        "cdc@example.vn",
        "province@example.vn",
    ]
    _, message = smtp.messages[0]
    body = message.get_content()
    assert "Tồn kho thấp" in message["Subject"] and "Stock low" in message["Subject"]
    assert warning.alert.message in body and warning.alert.message_vi in body
    assert "Cơ sở" in body and warning.alert.alert_id in body
    assert message["Message-ID"].endswith("@ostwatch.example.vn>")
    assert ledger_statuses(tmp_path) == Counter({"sent": 2})


def test_commune_notifications_reach_the_commune_or_the_default(
    tmp_path: Path, smtp: SmtpReceiver, webhook: WebhookReceiver
) -> None:
    csv = tmp_path / "communes.csv"
    csv.write_text(
        "commune_code,commune_name,email,webhook_url\n"
        "26734,Xã Tân Sơn,ubnd.tanson@example.vn;vanthu.tanson@example.vn,\n"
        f"26737,Xã Phượng Sơn,,{webhook.url}/26737\n"
        "26740,Xã Không Có,,\n",
        encoding="utf-8",
    )
    service = build_notify(
        settings(
            smtp_host="127.0.0.1",
            smtp_port=smtp.port,
            email_to="province@example.vn",
            webhook_url=webhook.url,
            recipients_csv=csv,
            email_digest_interval_s=0,
        ),
        tmp_path,
    )
    changes = {
        commune: alert_change(
            i, kind="commune_notification", severity="info", details={"commune": commune}
        )
        for i, commune in enumerate(["26734", "26737", "26740", "99999"])
    }

    async def scenario() -> None:
        await service.accept(raw(list(changes.values())))
        await deliver_until(service, lambda: ledger_statuses(tmp_path)["pending"] == 0)

    asyncio.run(scenario())
    service.close()

    def mail_to(address: str) -> set[str]:
        return {
            key
            for rcpts, message in smtp.messages
            if address in rcpts
            for key in [c.alert.alert_id for c in changes.values()]
            if key in message.get_content()
        }

    ids = {commune: c.alert.alert_id for commune, c in changes.items()}
    assert mail_to("ubnd.tanson@example.vn") == {ids["26734"]}
    assert mail_to("vanthu.tanson@example.vn") == {ids["26734"]}
    posts = {(r.path, r.body["alert"]["alert_id"]) for r in webhook.requests}
    # 26737 has only a webhook: it is reached there, and by no default recipient.
    assert ("/hook/26737", ids["26737"]) in posts
    # 26740 (empty row) and 99999 (not listed) fall back to the default recipients.
    assert mail_to("province@example.vn") == {ids["26740"], ids["99999"]}
    assert {a for p, a in posts if p == "/hook"} == {ids["26740"], ids["99999"]}
    assert sorted(outbox_keys(tmp_path)) == sorted(c.idempotency_key for c in changes.values())
    report = delivery_report(tmp_path / "notify.sqlite")
    fallbacks = {
        a["alert_id"]
        for a in report["alerts"]
        for c in a["changes"]
        for d in c["deliveries"]
        if d["fallback"]
    }
    assert fallbacks == {ids["26740"], ids["99999"]}


def test_outbox_writes_each_change_once_and_recognises_redelivery(tmp_path: Path) -> None:
    service = build_notify(settings(), tmp_path)
    changes = [alert_change(i) for i in range(5)] + [alert_change(0, sequence=2, change="resolved")]

    async def scenario() -> None:
        first = await service.accept(raw(changes))
        again = await service.accept(raw(changes[:3], offset=100))  # Kafka redelivered these
        assert (first.new_changes, again.new_changes, again.redelivered) == (6, 0, 3)
        assert again.conflicting == []
        # The same key with other content: recognised, reported, the first copy stands.
        altered = changes[1].model_copy(
            update={"alert": changes[1].alert.model_copy(update={"severity": "critical"})}
        )
        clash = await service.accept(raw([altered], offset=200))
        assert clash.conflicting == [changes[1].idempotency_key]
        await deliver_until(service, lambda: ledger_statuses(tmp_path)["sent"] == 6)

    asyncio.run(scenario())
    service.close()
    assert outbox_keys(tmp_path) == [c.idempotency_key for c in changes]
    lines = (tmp_path / "outbox" / "alerts.jsonl").read_bytes().splitlines()
    assert orjson.loads(lines[-1])["change"] == "resolved"
    assert delivery_report(tmp_path / "notify.sqlite")["redelivered_messages"] == 4
    assert orjson.loads(lines[1])["alert"]["severity"] == "warning"


def test_restart_midway_sends_nothing_twice_and_loses_nothing(
    tmp_path: Path, webhook: WebhookReceiver
) -> None:
    webhook.delay_s = 0.005
    config = settings(webhook_url=webhook.url, webhook_rate_per_s=1000)
    first_half = [alert_change(i) for i in range(150)]
    second_half = [alert_change(i) for i in range(150, 200)]

    async def before_restart() -> None:
        service = build_notify(config, tmp_path)
        await service.accept(raw(first_half))
        await deliver_until(service, lambda: len(webhook.requests) >= 40)
        service.close()

    async def after_restart() -> None:
        service = build_notify(config, tmp_path)
        # The unacknowledged tail of the topic comes again, then new changes.
        await service.accept(raw(first_half[100:], offset=100))
        await service.accept(raw(second_half, offset=150))
        await deliver_until(service, lambda: ledger_statuses(tmp_path)["pending"] == 0)
        service.close()

    asyncio.run(before_restart())
    delivered_before = len(webhook.requests)
    assert 40 <= delivered_before < 150, "the restart must come mid-way"
    asyncio.run(after_restart())

    expected = [c.idempotency_key for c in first_half + second_half]
    accepted = webhook.accepted_keys()
    assert sorted(accepted) == sorted(expected)
    assert set(accepted.values()) == {1}, "a change reached the webhook twice"
    assert sorted(outbox_keys(tmp_path)) == sorted(expected)
    assert len(outbox_keys(tmp_path)) == len(expected)
    assert ledger_statuses(tmp_path) == Counter({"sent": 2 * len(expected)})


def test_a_killed_dispatcher_loses_nothing_and_repeats_only_with_the_same_key(
    tmp_path: Path, webhook: WebhookReceiver
) -> None:
    """kill -9 mid-delivery: nothing is lost; the outbox has each change once; the webhook
    may see the one request in flight at the kill again, with the same Idempotency-Key."""
    webhook.delay_s = 0.01
    count = 200

    def start() -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.support.notify_worker",
                str(tmp_path),
                webhook.url,
                str(count),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        return process

    first = start()
    try:
        deadline = time.monotonic() + 60
        while len(webhook.requests) < 60 and time.monotonic() < deadline:
            time.sleep(0.005)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    killed_at = len(webhook.requests)
    assert 60 <= killed_at < count, "the kill must come mid-way"

    second = start()
    try:
        deadline = time.monotonic() + 60
        while ledger_statuses(tmp_path)["pending"] and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        second.terminate()
        second.wait(30)

    expected = sorted(alert_change(i).idempotency_key for i in range(count))
    accepted = webhook.accepted_keys()
    assert sorted(accepted) == expected
    repeats = [key for key, n in accepted.items() if n > 1]
    assert len(repeats) <= 1, repeats  # the lane sends one at a time: at most one in flight
    assert sorted(outbox_keys(tmp_path)) == expected
    assert ledger_statuses(tmp_path) == Counter({"sent": 2 * count})


def test_alert_storm_is_digested_for_email_and_paced_for_the_webhook(
    tmp_path: Path, smtp: SmtpReceiver, webhook: WebhookReceiver
) -> None:
    storm = [alert_change(i, severity="critical", facility_id=f"TF-{i:03d}") for i in range(500)]
    interval, digest_max, rate = 1.0, 200, 250.0
    service = build_notify(
        settings(
            smtp_host="127.0.0.1",
            smtp_port=smtp.port,
            email_to="province@example.vn",
            email_digest_interval_s=interval,
            email_digest_max=digest_max,
            webhook_url=webhook.url,
            webhook_rate_per_s=rate,
        ),
        tmp_path,
    )

    async def scenario() -> None:
        await service.accept(raw(storm))
        await deliver_until(service, lambda: ledger_statuses(tmp_path)["pending"] == 0)

    asyncio.run(scenario())
    service.close()

    # E-mail: ceil(500 / 200) digests, not 500 messages, at least `interval` apart.
    assert len(smtp.messages) == math.ceil(len(storm) / digest_max)
    sizes = [int(m["X-Ostwatch-Changes"]) for _, m in smtp.messages]
    assert sizes == [200, 200, 100]
    gaps = [b - a for a, b in zip(smtp.times, smtp.times[1:], strict=False)]
    assert min(gaps) >= interval * 0.95
    mailed = {
        c.alert.alert_id
        for c in storm
        for _, m in smtp.messages
        if c.alert.alert_id in m.get_content()
    }
    assert len(mailed) == len(storm)
    # Webhook: one POST per change, one at a time, no faster than the rate allows.
    assert sorted(webhook.accepted_keys()) == sorted(c.idempotency_key for c in storm)
    assert webhook.max_in_flight == 1
    span = webhook.requests[-1].at - webhook.requests[0].at
    assert span >= (len(storm) - 1) / rate * 0.95
    assert len(outbox_keys(tmp_path)) == len(storm)
    # No busy waiting while e-mail rests: the loop ran about once per delivery, not per tick.
    stats = service.dispatcher.stats
    assert stats.wakeups <= 2 * stats.batches + 20, stats.as_dict()
