"""Rows for ``ostwatch alerts deliveries``: the delivery ledger as people read it."""

from __future__ import annotations

from typing import Any

from schemas.labels import ALERT_KINDS, DELIVERY_STATUSES


def delivery_lines(report: dict[str, Any]) -> list[str]:
    """A heading per alert, then one aligned line per delivery of each of its changes."""
    from streams.notify.notifiers import redact_url

    counts = report["deliveries"]
    lines = [
        f"Gửi cảnh báo / Alert deliveries: đã gửi/sent {counts['sent']}, "
        f"chờ gửi/pending {counts['pending']}, lỗi/failed {counts['failed']}"
        f" ({report['ledger']})"
    ]
    for alert in report["alerts"]:
        vi, en = ALERT_KINDS[alert["kind"]]
        lines += [
            "",
            f"{alert['alert_id']}  {alert['severity']}  {vi} / {en}  {alert['facility_id']}",
        ]
        for change in alert["changes"]:
            label = f"  #{change['sequence']} {change['change']}"
            if not change["deliveries"]:
                lines.append(f"{label:<14} (no route / không có kênh nhận)")
            for d in change["deliveries"]:
                recipient = d["recipient"]
                if d["notifier"] == "webhook":
                    recipient = redact_url(recipient)
                if d["fallback"]:
                    recipient += " (fallback)"
                when = d["sent_at"] if d["status"] == "sent" else d["next_attempt_at"] or ""
                line = (
                    f"{label:<14} {d['notifier']:<8} {recipient:<36} "
                    f"{DELIVERY_STATUSES[d['status']].text():<18} {d['attempts']:>2}×  {when}"
                )
                if d["last_error"] and d["status"] != "sent":
                    line += f"  {d['last_error']}"
                lines.append(line.rstrip())
    if not report["alerts"]:
        lines.append("(không có dữ liệu / no deliveries)")
    return lines
