"""A facility's CSV export (raw identifiers, names …) turned into contract events, at the source.

One row is one event. The columns are the contract's field names (CONTRACT §1) plus the
patient's own identifier; every other column — full name, phone, address, date of birth,
whatever the facility's system exports — is dropped unread, so no personal data can reach an
event by a column being mapped by mistake. See docs/operations.md, "Pseudonymisation", for
the columns.

Pure functions (rows in, events and refusals out); the CLI adds files and the key.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from ostwatch.timeutil import LOCAL_TZ
from producers.pseudonym import IdentifierError, IdentifierKind, PseudonymKey
from schemas.models import (
    CONTRACT_FIELDS,
    MODEL_BY_TYPE,
    EventRejected,
    PatientEvent,
    parse_event_dict,
)

REQUIRED_COLUMNS: Final = ("event_type", "occurred_at", "facility_id")
IDENTIFIER_COLUMNS: Final = ("national_id", "clinic_number")
NUMBER_COLUMNS: Final = frozenset({"dose_mg", "quantity", "quantity_delta", "quantity_on_hand"})
INTEGER_COLUMNS: Final = frozenset({"take_home_days", "max_days"})
# Contract fields a row may fill (patient_ref is computed, schema_version is always 1).
EVENT_COLUMNS: Final = frozenset(CONTRACT_FIELDS - {"patient_ref", "schema_version"})
# event_ids made for rows without one: a UUIDv5 of the event's content in this namespace, so
# exporting the same row again gives the same event_id and the platform counts it once.
EVENT_ID_NAMESPACE: Final = uuid.UUID("6f1c7a56-2c1e-4d0e-9a43-2f0b8a9c1d57")
_LOCAL_TIME_RE = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2})?")
_PATIENT_TYPES: Final = frozenset(
    name for name, model in MODEL_BY_TYPE.items() if issubclass(model, PatientEvent)
)


class ExportError(ValueError):
    """The export as a whole cannot be read (a missing column, not CSV)."""


@dataclass
class Conversion:
    """What came out of one export: events, refused rows (line, reason), dropped columns."""

    events: list[dict[str, Any]] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)
    dropped_columns: list[str] = field(default_factory=list)
    rows: int = 0


def _occurred_at(text: str) -> str:
    """RFC 3339 passes through; a local 'YYYY-MM-DD HH:MM[:SS]' gets the Vietnam offset."""
    if _LOCAL_TIME_RE.fullmatch(text):
        local = datetime.fromisoformat(text.replace(" ", "T")).replace(tzinfo=LOCAL_TZ)
        return local.isoformat()
    return text


def _results(text: str) -> dict[str, str]:
    """'opiates=positive; mdma=negative' → {'opiates': 'positive', 'mdma': 'negative'}."""
    results: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        substance, sep, result = part.partition("=")
        if not sep:
            raise ValueError("results: write substance=result pairs separated by ';'")
        results[substance.strip()] = result.strip()
    return results


def _cell(name: str, text: str) -> Any:
    if name in NUMBER_COLUMNS:
        try:
            return float(text) if any(c in text for c in ".eE") else int(text)
        except ValueError:
            raise ValueError(f"{name}: must be a number") from None
    if name in INTEGER_COLUMNS:
        if not text.isdigit():
            raise ValueError(f"{name}: must be a whole number")
        return int(text)
    if name == "results":
        return _results(text)
    if name == "occurred_at":
        return _occurred_at(text)
    return text


def convert_row(
    row: dict[str, str], key: PseudonymKey, identifier: IdentifierKind
) -> dict[str, Any]:
    """One export row as a contract event; ValueError with a reason that quotes no value."""
    doc: dict[str, Any] = {"schema_version": 1}
    for name in EVENT_COLUMNS:
        text = (row.get(name) or "").strip()
        if text:
            doc[name] = _cell(name, text)
    event_type = doc.get("event_type")
    raw_id = (row.get(identifier) or "").strip()
    if raw_id:
        doc["patient_ref"] = key.patient_ref(identifier, raw_id)
    elif event_type in _PATIENT_TYPES or event_type == "dose.dispensed":
        raise ValueError(f"{identifier}: required for {event_type} (the patient's identifier)")
    if "event_id" not in doc:
        content = "\x1f".join(f"{k}={doc[k]}" for k in sorted(doc))
        doc["event_id"] = str(uuid.uuid5(EVENT_ID_NAMESPACE, content))
    # The contract's own checks, with its reasons; its canonical field order and types.
    return parse_event_dict(doc).to_contract_dict()


def read_export(text: str) -> tuple[list[str], Iterator[tuple[int, dict[str, str]]]]:
    """(header, (line number, row) …) of a CSV export; ExportError if it has no header."""
    reader = csv.DictReader(io.StringIO(text))
    header = [name.strip() for name in reader.fieldnames or []]
    if not header:
        raise ExportError("empty export: the first line must name the columns")
    reader.fieldnames = header

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        for row in reader:
            yield reader.line_num, {k: v for k, v in row.items() if isinstance(v, str)}

    return header, rows()


def convert_export(text: str, key: PseudonymKey, identifier: IdentifierKind) -> Conversion:
    """Every row of an export as an event or a refusal; unknown columns are dropped unread."""
    header, rows = read_export(text)
    missing = [name for name in (*REQUIRED_COLUMNS, identifier) if name not in header]
    if missing:
        raise ExportError(f"missing column(s): {', '.join(missing)}")
    result = Conversion(
        dropped_columns=[
            name for name in header if name not in EVENT_COLUMNS and name not in IDENTIFIER_COLUMNS
        ]
    )
    for line, row in rows:
        result.rows += 1
        try:
            result.events.append(convert_row(row, key, identifier))
        except EventRejected as exc:
            result.refused.append((line, exc.reason))
        except (ValueError, IdentifierError) as exc:
            result.refused.append((line, str(exc)))
    return result


def identifiers_of(text: str, identifier: IdentifierKind) -> Iterable[tuple[IdentifierKind, str]]:
    """Every non-empty identifier of an export, for a re-keying map."""
    header, rows = read_export(text)
    if identifier not in header:
        raise ExportError(f"missing column: {identifier}")
    for _, row in rows:
        value = (row.get(identifier) or "").strip()
        if value:
            yield identifier, value
