"""``notices``: the month's letters to communes (docs/notices.md), and putting the names
back at the facility (``notices resolve``, offline)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from infra.application.alerts import NoticesRequest
from infra.cli import common
from infra.cli.common import (
    F,
    UserError,
    data_dir_option,
    emit_json,
    format_option,
    friendly_errors,
    ignored_data_dir_option,
    request,
)
from infra.cli.pseudonym import as_kind, identifier_option, pseudonym_keys


def letter_format_option(func: F) -> F:
    return click.option(
        "--format",
        "output_format",
        type=click.Choice(["html", "csv", "json"]),
        default="html",
        show_default=True,
        help="html to print and sign; csv or json for programs and for `notices resolve`.",
    )(func)


def write_private(path: Path, data: bytes) -> None:
    """Write a file only its owner can read (a letter with names is personal data)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    path.chmod(0o600)


@click.group(invoke_without_command=True)
@click.option("--month", metavar="YYYY-MM", help="The local calendar month of the events.")
@click.option(
    "--commune", "communes", multiple=True, metavar="CODE", help="Only this commune (repeatable)."
)
@click.option(
    "--facility",
    "facilities",
    multiple=True,
    metavar="ID",
    help="Only events at this facility (a facility sending its own letters).",
)
@click.option(
    "--communes-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CSV commune_code,commune_name,… (the notification recipients file) to name communes.",
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write here.")
@letter_format_option
@data_dir_option
@click.pass_context
@friendly_errors
def notices(
    ctx: click.Context,
    month: str | None,
    communes: tuple[str, ...],
    facilities: tuple[str, ...],
    communes_file: Path | None,
    out: Path | None,
    output_format: str,
    data_dir: Path,
) -> None:
    """The month's letters to communes: one per commune of residence, every event its
    People's Committee must be told of (enrolment, violation, self-termination, completion,
    positive test) with the facility, local date and pseudonymous reference. The facility
    then adds the names: `ostwatch notices resolve LETTER --export REGISTER.csv`."""
    if ctx.invoked_subcommand is not None:
        return
    from infra.letters import render, with_communes

    if not month:
        raise UserError("--month YYYY-MM is required (e.g. --month 2024-03)")
    names: dict[str, str] = {}
    if communes_file is not None:
        from streams.notify.recipients import RecipientsError, load_recipients

        try:
            names = {code: c.name for code, c in load_recipients(communes_file).items()}
        except RecipientsError as exc:
            raise UserError(str(exc)) from exc
    asked = request(NoticesRequest, month=month, communes=communes, facilities=facilities)
    with common.operations(data_dir) as ops:
        document = ops.notices(asked).root
    document = with_communes(document, communes, names)
    data = render(document, output_format)
    if out is None:
        click.echo(data.decode("utf-8"), nl=False)
        return
    out.write_bytes(data)
    lines = sum(len(letter["lines"]) for letter in document["letters"])
    click.echo(f"{len(document['letters'])} letter(s), {lines} line(s) written to {out}", err=True)


OUT_FORMATS = {".html": "html", ".htm": "html", ".csv": "csv", ".json": "json"}


@notices.command("resolve")
@click.argument("letter", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--export",
    "export",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="The facility's register export (the CSV `ostwatch pseudonymize` reads).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The letter with names, as .html (default: LETTER's name + .names.html), .csv or "
    ".json; readable by its owner only.",
)
@identifier_option
@click.option(
    "--name-column", default="full_name", show_default=True, help="The export's name column."
)
@click.option(
    "--with",
    "extra",
    multiple=True,
    metavar="COLUMN",
    help="Another column of the export to print beside the name, e.g. address (repeatable).",
)
@format_option
@friendly_errors
@ignored_data_dir_option
def notices_resolve(
    letter: Path,
    export: Path,
    out: Path | None,
    identifier: str,
    name_column: str,
    extra: tuple[str, ...],
    output_format: str,
) -> None:
    """At the facility: put the names from its own register beside the references of a
    LETTER written by `ostwatch notices --format csv|json`, with the province's key
    (OSTWATCH_PSEUDONYM_KEY_FILE, as for `pseudonymize`). Runs offline; the result goes to a
    local file only, never to the platform, a topic, a table or a log; what it prints are
    counts."""
    from infra.letters import LetterError, read_letter, render
    from producers.commune_letters import add_names, register_of
    from producers.facility_export import ExportError

    target = out or letter.with_name(f"{letter.stem}.names.html")
    written_as = OUT_FORMATS.get(target.suffix.lower())
    if written_as is None:
        raise UserError(f"--out {target.name}: name it .html, .csv or .json")
    try:
        document = read_letter(letter.read_text(encoding="utf-8-sig"))
    except (LetterError, UnicodeDecodeError) as exc:
        raise UserError(f"{letter}: {exc}") from exc
    key, previous = pseudonym_keys()
    keys = [key] if previous is None else [key, previous]
    columns = [name_column, *(c for c in extra if c != name_column)]
    try:
        text = export.read_text(encoding="utf-8-sig")
        register = register_of(text, keys, as_kind(identifier), columns)
    except (ExportError, UnicodeDecodeError) as exc:
        raise UserError(f"{export}: {exc}") from exc
    resolved, outcome = add_names(document, register)
    write_private(target, render(resolved, written_as))
    summary = {
        "named": outcome.named,
        "not_in_register": outcome.not_in_register,
        "without_reference": outcome.without_reference,
        "unreadable_register_rows": register.unreadable,
        "key_ids": [k.key_id for k in keys],
        "out": str(target),
    }
    if output_format == "json":
        emit_json(summary)
        return
    unreadable = register.unreadable
    click.echo(
        f"{outcome.named} line(s) named from {export.name}; {outcome.not_in_register} of "
        f"patients not in this register; {outcome.without_reference} without a reference"
        + (f"; {unreadable} register row(s) with an unreadable identifier" if unreadable else "")
        + f". Written to {target} (readable by you only)."
    )


COMMANDS = (notices,)
