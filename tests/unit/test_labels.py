"""One word per code wherever staff read it (schemas/labels.py): the CLI's tables, the
notifications, the dashboards and the live view say the same Vietnamese and English."""

from __future__ import annotations

from typing import get_args

from dashboards.model import STATUS_LABELS
from infra.cli.report import alert_labels
from schemas.alerts import AlertKind, Severity
from schemas.labels import ALERT_KINDS, ALERT_STATUSES, SEVERITIES, Label
from streams.notify.render import severity


def test_every_alert_kind_and_severity_has_both_languages() -> None:
    assert set(get_args(AlertKind)) <= set(ALERT_KINDS)
    assert set(get_args(Severity)) == set(SEVERITIES)
    for label in (*ALERT_KINDS.values(), *SEVERITIES.values()):
        assert label.vi and label.en and label.vi != label.en


def test_a_severity_reads_the_same_in_the_cli_the_notifications_and_the_dashboards() -> None:
    row = {
        "kind": "stock_out",
        "severity": "critical",
        "status": "open",
        "raised_at": "2024-03-05T00:42:10+00:00",
    }
    shown = alert_labels(row)
    critical = SEVERITIES["critical"]
    assert shown["severity_label"] == f"{critical.vi} / {critical.en}"
    assert shown["kind_label"] == f"{ALERT_KINDS['stock_out'].vi} / {ALERT_KINDS['stock_out'].en}"
    assert shown["status_label"] == ALERT_STATUSES["open"].text()
    assert severity("critical") == f"{critical.en.upper()} / {critical.vi.upper()}"
    assert STATUS_LABELS["critical"] == f"{critical.vi} · {critical.en}"  # live view, Grafana


def test_a_code_named_alike_in_both_languages_is_written_once() -> None:
    assert Label("Methadone", "Methadone").text() == "Methadone"
    assert Label("Sàng lọc", "Screening").text() == "Sàng lọc / Screening"
