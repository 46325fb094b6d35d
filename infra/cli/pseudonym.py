"""Pseudonymisation at the facility: a register export to contract events with
pseudonymous patient_refs (``pseudonymize``), and a key rotation's map (``rekey-map``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import orjson

from infra.cli.common import (
    F,
    UserError,
    emit,
    emit_json,
    format_option,
    friendly_errors,
    ignored_data_dir_option,
)
from ostwatch.settings import load

if TYPE_CHECKING:
    from producers.pseudonym import IdentifierKind


def identifier_option(func: F) -> F:
    return click.option(
        "--identifier",
        type=click.Choice(["national_id", "clinic_number"]),
        default="national_id",
        show_default=True,
        help="The export's column that identifies the patient (the same one province-wide).",
    )(func)


def as_kind(identifier: str) -> IdentifierKind:
    """The --identifier choice as the library's identifier kind (click checked the choice)."""
    from producers.pseudonym import IDENTIFIER_KINDS

    return next(kind for kind in IDENTIFIER_KINDS if kind == identifier)


def pseudonym_keys() -> Any:
    from ostwatch.settings import PseudonymSettings
    from producers.pseudonym import load_keys

    return load_keys(load(PseudonymSettings))


@click.command()
@click.argument("export", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="JSON Lines file of contract events to write (then: ostwatch ingest OUT).",
)
@identifier_option
@format_option
@friendly_errors
@ignored_data_dir_option
def pseudonymize(export: Path, out: Path, identifier: str, output_format: str) -> None:
    """Turn a facility's CSV EXPORT into contract events with pseudonymous patient_refs.

    Each row is one event: columns named like the contract's fields (event_type,
    occurred_at, facility_id, item, dose_mg, mode, …) plus the patient's national_id or
    clinic_number, which becomes patient_ref = HMAC-SHA256 with the province's key
    (OSTWATCH_PSEUDONYM_KEY_FILE or OSTWATCH_PSEUDONYM_KEY). Every other column (names,
    phones, addresses …) is dropped unread. Rows that break a rule are listed with their
    line and reason (never their values) and left out; the exit status is then 1.
    """
    from producers.facility_export import ExportError, convert_export

    key, _ = pseudonym_keys()
    try:
        result = convert_export(export.read_text(encoding="utf-8-sig"), key, as_kind(identifier))
    except (ExportError, UnicodeDecodeError) as exc:
        raise UserError(f"{export}: {exc}") from exc
    with out.open("wb") as handle:
        for event in result.events:
            handle.write(orjson.dumps(event) + b"\n")
    summary = {
        "rows": result.rows,
        "events": len(result.events),
        "refused": [{"line": line, "reason": reason} for line, reason in result.refused],
        "dropped_columns": result.dropped_columns,
        "key_id": key.key_id,
        "out": str(out),
    }
    if output_format == "json":
        emit_json(summary)
    else:
        for line, reason in result.refused:
            click.echo(f"ostwatch: {export.name}:{line}: {reason}", err=True)
        dropped = ", ".join(result.dropped_columns) or "none"
        click.echo(
            f"{len(result.events)} events from {result.rows} rows written to {out} "
            f"(key {key.key_id}); columns dropped: {dropped}"
        )
    if result.refused:
        raise UserError(
            f"{len(result.refused)} of {result.rows} rows refused (see the reasons above); "
            f"the other rows are in {out}"
        )


@click.command("rekey-map")
@click.argument("export", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="CSV file old_ref,new_ref to write (references only, no identifier).",
)
@identifier_option
@format_option
@friendly_errors
@ignored_data_dir_option
def rekey_map_command(export: Path, out: Path, identifier: str, output_format: str) -> None:
    """Map every patient of EXPORT from the previous key's patient_ref to the current one's.

    Needs both keys: OSTWATCH_PSEUDONYM_PREVIOUS_KEY_FILE/_ID and OSTWATCH_PSEUDONYM_KEY_FILE/
    _ID. The map links a patient's history across a key rotation without any identifier.
    """
    from ostwatch import csv_safe
    from producers.facility_export import ExportError, identifiers_of
    from producers.pseudonym import rekey_map

    key, previous = pseudonym_keys()
    if previous is None:
        raise UserError(
            "a re-keying map needs the previous key too: set OSTWATCH_PSEUDONYM_PREVIOUS_KEY_FILE "
            "and OSTWATCH_PSEUDONYM_PREVIOUS_KEY_ID"
        )
    try:
        text = export.read_text(encoding="utf-8-sig")
        mapping, refused = rekey_map(identifiers_of(text, as_kind(identifier)), previous, key)
    except (ExportError, UnicodeDecodeError) as exc:
        raise UserError(f"{export}: {exc}") from exc
    with out.open("w", encoding="utf-8", newline="") as handle:
        writer = csv_safe.writer(handle)
        writer.writerow(["old_ref", "new_ref"])
        writer.writerows(sorted(mapping.items()))
    summary = {
        "patients": len(mapping),
        "refused": refused,
        "from_key": previous.key_id,
        "to_key": key.key_id,
        "out": str(out),
    }
    emit(
        summary,
        output_format,
        f"{len(mapping)} patients mapped from key {previous.key_id} to {key.key_id} in {out}"
        + (f"; {refused} identifiers refused" if refused else ""),
    )


COMMANDS = (pseudonymize, rekey_map_command)
