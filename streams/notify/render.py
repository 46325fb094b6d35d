"""Plain-text messages for people, English with Vietnamese beside it."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime

from ostwatch.timeutil import LOCAL_TZ
from schemas.alerts import AlertChange
from schemas.labels import ALERT_CHANGES, ALERT_KINDS, SEVERITIES, Label


def both(label: Label) -> str:
    """English first in a message (schemas/labels.py has every label)."""
    return label.english_first()


def severity(code: str) -> str:
    """A critical alert shouts in both languages; the others read as words."""
    label = SEVERITIES[code]
    if code == "critical":
        return both(Label(label.vi.upper(), label.en.upper()))
    return both(Label(label.vi, label.en.capitalize()))


def local_time(instant: datetime) -> str:
    return instant.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M (giờ Việt Nam, UTC+7)")


def subject_line(changes: Sequence[AlertChange]) -> str:
    if len(changes) == 1:
        alert = changes[0].alert
        return (
            f"[ostwatch] {severity(alert.severity)}: "
            f"{both(ALERT_KINDS[alert.kind])} — {alert.facility_id} "
            f"({both(ALERT_CHANGES[changes[0].change])})"
        )
    critical = sum(c.alert.severity == "critical" for c in changes)
    return (
        f"[ostwatch] {len(changes)} alert changes / {len(changes)} thay đổi cảnh báo"
        f" ({critical} critical / nghiêm trọng)"
    )


def change_block(change: AlertChange) -> str:
    alert = change.alert
    lines = [
        f"{both(ALERT_CHANGES[change.change])} — {both(ALERT_KINDS[alert.kind])}"
        f" — {severity(alert.severity)}",
        f"  Facility / Cơ sở: {alert.facility_id}",
        f"  Subject / Đối tượng: {alert.subject}",
        f"  Since / Từ: {local_time(alert.raised_at)}",
    ]
    if alert.resolved_at is not None:
        lines.append(f"  Resolved / Đã xử lý: {local_time(alert.resolved_at)}")
    if "commune" in alert.details:
        lines.append(f"  Commune / Xã: {alert.details['commune']}")
    lines += [
        f"  EN: {alert.message}",
        f"  VI: {alert.message_vi}",
        f"  Alert / Mã cảnh báo: {alert.alert_id} (#{change.sequence})",
    ]
    return "\n".join(lines)


def body_text(changes: Sequence[AlertChange]) -> str:
    header = (
        "ostwatch — alert changes / thay đổi cảnh báo\n"
        "Acknowledge / Xác nhận: ostwatch alerts ack ALERT_ID\n"
    )
    return header + "\n" + "\n\n".join(change_block(c) for c in changes) + "\n"


def message_id(keys: Sequence[str], domain: str) -> str:
    """The same set of changes always gets the same Message-ID, so a repeat is recognisable."""
    digest = hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()[:32]
    return f"<{digest}@{domain}>"
