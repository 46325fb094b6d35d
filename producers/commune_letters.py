"""Names for a letter to a commune, added at the facility from its own register.

The platform holds only pseudonymous references, so a letter (``ostwatch notices``) lists
references. The facility holds the names: its register export (the file ``ostwatch
pseudonymize`` reads) gives, row by row, the patient's identifier and name. Computing each
identifier's reference with the province's key (the same computation as ``pseudonymize``) and
joining on it puts the names back beside the references — on the facility's machine only. The
result is meant for a local file; nothing here logs, sends or stores a name.

Pure functions (texts and documents in, documents out); the CLI adds the files and the key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from producers.facility_export import ExportError, read_export
from producers.pseudonym import IdentifierError, IdentifierKind, PseudonymKey


@dataclass
class Register:
    """What the export says of each patient, by reference: the chosen columns' values
    (the first non-empty one per column, since an export repeats a patient row by row)."""

    columns: tuple[str, ...]
    by_ref: dict[str, dict[str, str]] = field(default_factory=dict)
    rows: int = 0
    unreadable: int = 0  # rows whose identifier does not normalise (never quoted)


@dataclass(frozen=True)
class Resolution:
    """How a letter was resolved: lines named, lines of patients not in this register
    (another facility's), and lines with no reference at all (a test of nobody known)."""

    named: int
    not_in_register: int
    without_reference: int


def register_of(
    text: str,
    keys: Sequence[PseudonymKey],
    identifier: IdentifierKind,
    columns: Sequence[str],
) -> Register:
    """Every patient of an export by reference under each key given (the current one, and
    the previous one during a key rotation, so older letters resolve too)."""
    header, rows = read_export(text)
    missing = [name for name in (identifier, *columns) if name not in header]
    if missing:
        raise ExportError(f"missing column(s): {', '.join(missing)}")
    register = Register(tuple(columns))
    for _, row in rows:
        register.rows += 1
        raw = (row.get(identifier) or "").strip()
        if not raw:
            continue
        values = {name: (row.get(name) or "").strip() for name in columns}
        try:
            refs = [key.patient_ref(identifier, raw) for key in keys]
        except IdentifierError:
            register.unreadable += 1
            continue
        for ref in refs:
            known = register.by_ref.setdefault(ref, {})
            for name, value in values.items():
                if value and not known.get(name):
                    known[name] = value
    return register


def add_names(document: Mapping[str, Any], register: Register) -> tuple[dict[str, Any], Resolution]:
    """A copy of the letter whose lines carry ``register`` (the export's columns for that
    reference; empty when the patient is not in this register)."""
    named = missing = anonymous = 0
    letters = []
    for letter in document["letters"]:
        lines = []
        for line in letter["lines"]:
            ref = str(line.get("patient_ref") or "")
            found = register.by_ref.get(ref, {}) if ref else {}
            if not ref:
                anonymous += 1
            elif found:
                named += 1
            else:
                missing += 1
            lines.append({**line, "register": dict(found)})
        letters.append({**letter, "lines": lines})
    resolved = {**document, "letters": letters, "register_columns": list(register.columns)}
    return resolved, Resolution(named, missing, anonymous)
