"""Who a commune notification goes to: the commune recipients CSV.

One row per commune of residence (the code ``patient.enrolled`` carries as
``residence_commune``)::

    commune_code,commune_name,email,webhook_url
    26734,Xã Tân Sơn,ubnd.tanson@example.gov.vn;vanthu.tanson@example.gov.vn,
    26737,Xã Phượng Sơn,,https://xa-phuongson.example.gov.vn/hooks/ostwatch

``email`` holds one or more addresses separated by ``;``; either column may be empty, not
both. A commune that is missing, or whose row has neither, falls back to the default
recipients (``OSTWATCH_NOTIFY_EMAIL_TO`` / ``OSTWATCH_NOTIFY_WEBHOOK_URL``).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

COLUMNS = ("commune_code", "commune_name", "email", "webhook_url")


class RecipientsError(ValueError):
    """The recipients CSV is unreadable or wrong; the message names the file and line."""


@dataclass(frozen=True)
class CommuneContact:
    code: str
    name: str
    emails: tuple[str, ...]
    webhooks: tuple[str, ...]


def load_recipients(path: Path) -> dict[str, CommuneContact]:
    """Read and check the whole file, failing on the first bad line (fail fast at start)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise RecipientsError(f"cannot read recipients CSV {path}: {exc.strerror}") from exc
    reader = csv.DictReader(text.splitlines())
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or ())]
    if missing:
        raise RecipientsError(f"{path}: missing column(s) {', '.join(missing)}")
    contacts: dict[str, CommuneContact] = {}
    for line, row in enumerate(reader, start=2):
        code = (row["commune_code"] or "").strip()
        if not code:
            raise RecipientsError(f"{path}:{line}: empty commune_code")
        if code in contacts:
            raise RecipientsError(f"{path}:{line}: commune {code} listed twice")
        emails = tuple(a.strip() for a in (row["email"] or "").split(";") if a.strip())
        for address in emails:
            if "@" not in address or any(ch.isspace() for ch in address):
                raise RecipientsError(f"{path}:{line}: not an e-mail address: {address!r}")
        webhook = (row["webhook_url"] or "").strip()
        if webhook and not webhook.startswith(("http://", "https://")):
            raise RecipientsError(f"{path}:{line}: webhook_url must start with http(s)://")
        contacts[code] = CommuneContact(
            code=code,
            name=(row["commune_name"] or "").strip(),
            emails=emails,
            webhooks=(webhook,) if webhook else (),
        )
    return contacts
