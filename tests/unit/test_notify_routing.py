"""Delivery settings, the commune recipients CSV, routing, messages and the retry schedule:
pure parts of alert delivery, no server needed."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from click.testing import CliRunner

from infra.cli import main
from ostwatch.settings import NotifyRoute, NotifySettings, SettingsError, load
from streams.notify import render
from streams.notify.dispatcher import RetryPolicy
from streams.notify.notifiers import redact_url, webhook_body
from streams.notify.recipients import RecipientsError, load_recipients
from streams.notify.routing import Router, Target, default_routes, reaches_communes
from tests.support.notify import alert_change

HEADER = "commune_code,commune_name,email,webhook_url\n"


def test_routes_and_recipients_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "OSTWATCH_NOTIFY_ROUTES",
        '[{"notifier": "email", "kinds": ["stock_out"], "min_severity": "critical"}]',
    )
    monkeypatch.setenv("OSTWATCH_NOTIFY_EMAIL_TO", "a@example.vn, b@example.vn")
    monkeypatch.setenv("OSTWATCH_NOTIFY_SMTP_PASSWORD", "hunter2-smtp")
    monkeypatch.setenv("OSTWATCH_NOTIFY_WEBHOOK_TOKEN", "hunter2-hook")
    settings = load(NotifySettings)
    assert settings.routes == (
        NotifyRoute(notifier="email", kinds=("stock_out",), min_severity="critical"),
    )
    assert settings.email_to == ("a@example.vn", "b@example.vn")
    assert "hunter2" not in repr(settings)


@pytest.mark.parametrize(
    ("name", "value", "named"),
    [
        ("ROUTES", '[{"notifier": "pager"}]', "OSTWATCH_NOTIFY_ROUTES"),
        ("ROUTES", '[{"notifier": "email", "kinds": ["stock_gone"]}]', "OSTWATCH_NOTIFY_ROUTES"),
        ("EMAIL_TO", "not-an-address", "OSTWATCH_NOTIFY_EMAIL_TO"),
        ("WEBHOOK_URL", "ftp://example.vn/hook", "OSTWATCH_NOTIFY_WEBHOOK_URL"),
    ],
)
def test_a_wrong_setting_fails_fast_by_name(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, named: str
) -> None:
    monkeypatch.setenv(f"OSTWATCH_NOTIFY_{name}", value)
    with pytest.raises(SettingsError, match=named):
        load(NotifySettings)


def test_recipients_csv_is_read_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "communes.csv"
    path.write_text(
        HEADER + "26734,Xã Tân Sơn,a@x.vn; b@x.vn,\n26737,Xã Phượng Sơn,,https://x.vn/h\n",
        encoding="utf-8",
    )
    contacts = load_recipients(path)
    assert contacts["26734"].emails == ("a@x.vn", "b@x.vn")
    assert contacts["26734"].name == "Xã Tân Sơn"
    assert contacts["26737"].webhooks == ("https://x.vn/h",)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("26734,A,a@x.vn,\n26734,B,b@x.vn,\n", ":3: commune 26734 listed twice"),
        ("26734,A,not an address,\n", ":2: not an e-mail address"),
        ("26734,A,,x.vn/hook\n", ":2: webhook_url must start with http"),
        (",A,a@x.vn,\n", ":2: empty commune_code"),
    ],
)
def test_a_bad_recipients_line_is_named(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "communes.csv"
    path.write_text(HEADER + body, encoding="utf-8")
    with pytest.raises(RecipientsError, match=message):
        load_recipients(path)


def test_recipients_csv_without_a_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "communes.csv"
    path.write_text("commune_code,email\n26734,a@x.vn\n", encoding="utf-8")
    with pytest.raises(RecipientsError, match="missing column"):
        load_recipients(path)


def router(**routes: NotifyRoute) -> Router:
    return Router(
        list(routes.values()),
        {"email": ("cdc@x.vn",), "webhook": ("https://hook",), "outbox": ("/o.jsonl",)},
    )


def test_routes_filter_by_kind_severity_and_change() -> None:
    routes = router(
        email=NotifyRoute(notifier="email", kinds=("stock_out",), min_severity="critical"),
        webhook=NotifyRoute(notifier="webhook", changes=("opened",)),
    )
    assert routes.plan(alert_change(1, kind="stock_out", severity="critical")) == [
        Target("email", "cdc@x.vn"),
        Target("webhook", "https://hook"),
    ]
    assert routes.plan(alert_change(1, kind="stock_out", severity="warning")) == [
        Target("webhook", "https://hook")
    ]
    assert routes.plan(alert_change(1, kind="stock_low", change="resolved", sequence=2)) == []


def test_default_routes_cover_configured_notifiers_only() -> None:
    only_outbox = default_routes(NotifySettings())
    assert [r.notifier for r in only_outbox] == ["outbox"]
    everything = default_routes(
        NotifySettings(smtp_host="localhost", webhook_url="http://h/x", outbox_enabled=False)
    )
    assert {(r.notifier, r.kinds, r.min_severity) for r in everything} == {
        ("webhook", ("*",), "info"),
        ("email", ("*",), "warning"),
        ("email", ("commune_notification",), "info"),
    }
    assert reaches_communes(everything) and not reaches_communes(only_outbox)


def test_commune_notifications_are_mailed_by_default_though_raised_as_info() -> None:
    settings = NotifySettings(smtp_host="localhost", email_to="cdc@x.vn", outbox_enabled=False)
    routes = Router(default_routes(settings), {"email": settings.email_to})
    notice = alert_change(1, kind="commune_notification", severity="info")
    assert routes.plan(notice) == [Target("email", "cdc@x.vn", fallback=True)]
    assert routes.plan(alert_change(2, severity="info")) == []


def test_a_route_to_an_unconfigured_notifier_is_refused() -> None:
    with pytest.raises(ValueError, match="not configured: email"):
        Router([NotifyRoute(notifier="email")], {"outbox": ("/o.jsonl",)})


def test_commune_notification_goes_to_the_commune_else_to_the_default(tmp_path: Path) -> None:
    path = tmp_path / "communes.csv"
    path.write_text(HEADER + "26734,Xã Tân Sơn,ubnd@x.vn,\n", encoding="utf-8")
    routes = Router(
        [NotifyRoute(notifier=n) for n in ("outbox", "email", "webhook")],
        {"email": ("cdc@x.vn",), "webhook": ("https://hook",), "outbox": ("/o.jsonl",)},
        load_recipients(path),
    )

    def commune(code: str | None) -> list[Target]:
        details = {"commune": code} if code else {}
        return routes.plan(alert_change(1, kind="commune_notification", details=details))

    assert commune("26734") == [Target("outbox", "/o.jsonl"), Target("email", "ubnd@x.vn")]
    fallback = [
        Target("outbox", "/o.jsonl"),
        Target("email", "cdc@x.vn", fallback=True),
        Target("webhook", "https://hook", fallback=True),
    ]
    assert commune("99999") == fallback
    assert commune(None) == fallback


def test_messages_carry_english_and_vietnamese() -> None:
    change = alert_change(3, kind="stock_out", severity="critical")
    subject = render.subject_line([change])
    assert "CRITICAL / NGHIÊM TRỌNG" in subject and "Stock out / Hết thuốc" in subject
    body = render.body_text([change])
    assert change.alert.message in body and change.alert.message_vi in body
    assert "Mới phát sinh" in body and "giờ Việt Nam" in body
    digest = render.subject_line([change, alert_change(4)])
    assert "2 alert changes / 2 thay đổi cảnh báo" in digest
    assert render.message_id(["a/1", "b/1"], "x.vn") == render.message_id(["b/1", "a/1"], "x.vn")
    assert render.message_id(["a/1"], "x.vn") != render.message_id(["a/2"], "x.vn")


def test_webhook_body_is_the_change_with_its_key() -> None:
    import orjson

    change = alert_change(1)
    doc = orjson.loads(webhook_body(change))
    assert doc["idempotency_key"] == change.idempotency_key
    assert doc["alert"]["alert_id"] == change.alert.alert_id
    assert (doc["kind_en"], doc["kind_vi"]) == ("Stock low", "Tồn kho thấp")


def test_backoff_doubles_within_jitter_and_is_capped() -> None:
    policy = RetryPolicy(max_attempts=20, base_s=2.0, max_s=60.0)
    rng = random.Random(7)
    for attempt, ceiling in [(1, 2.0), (2, 4.0), (3, 8.0), (5, 32.0), (6, 60.0), (12, 60.0)]:
        delays = [policy.delay(attempt, rng) for _ in range(200)]
        assert ceiling / 2 <= min(delays) and max(delays) <= ceiling
        assert max(delays) - min(delays) > ceiling / 4, "no jitter"


def test_urls_are_shown_without_credentials() -> None:
    assert (
        redact_url("https://user:pw@hooks.x.vn:8443/a/b?token=t") == "https://hooks.x.vn:8443/a/b"
    )


def test_deliveries_without_state_fail_in_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["alerts", "deliveries", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output.strip().startswith("ostwatch: no delivery state at")
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("command", [["alerts", "deliveries"], ["alerts", "redeliver"]])
def test_delivery_commands_explain_themselves(command: list[str]) -> None:
    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0
    assert "OSTWATCH_DATA_DIR" in result.output
