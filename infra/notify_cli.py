"""Rows for ``ostwatch alerts deliveries``: the delivery ledger as people read it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ostwatch.settings import NotifySettings, load
from schemas.alerts import KIND_LABELS

STATUS_LABELS = {"pending": "chờ gửi / pending", "sent": "đã gửi / sent", "failed": "lỗi / failed"}


def ledger_path(data_dir: Path) -> Path:
    """Where the worker of this data directory keeps its delivery state."""
    return load(NotifySettings).state_file(data_dir)


def delivery_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One table row per delivery (a change without any delivery gets a row saying so)."""
    from streams.notify.notifiers import redact_url

    rows: list[dict[str, Any]] = []
    for alert in report["alerts"]:
        for change in alert["changes"]:
            base = {
                "alert_id": alert["alert_id"],
                "kind": KIND_LABELS[alert["kind"]][1] + " / " + KIND_LABELS[alert["kind"]][0],
                "severity": alert["severity"],
                "facility_id": alert["facility_id"],
                "change": f"#{change['sequence']} {change['change']}",
            }
            for d in change["deliveries"] or [{}]:
                recipient = d.get("recipient", "—")
                if d.get("notifier") == "webhook":
                    recipient = redact_url(recipient)
                when = d.get("sent_at") or d.get("next_attempt_at") or ""
                rows.append(
                    base
                    | {
                        "notifier": d.get("notifier", "(no route)"),
                        "recipient": recipient + (" (fallback)" if d.get("fallback") else ""),
                        "status": STATUS_LABELS.get(d.get("status", ""), "—"),
                        "attempts": d.get("attempts", 0),
                        "when": when,
                        "last_error": d.get("last_error") or "",
                    }
                )
    return rows
