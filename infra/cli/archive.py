"""``replay`` (verify the live aggregates from the archive, or build a snapshot) and
``archive`` (the portable Avro export and its import)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import orjson

from infra.application.archive import (
    ArchiveExportRequest,
    ArchiveImportRequest,
    ReplayVerifyRequest,
    absolute,
    replay_into,
)
from infra.cli import common
from infra.cli.common import (
    as_of_option,
    data_dir_option,
    emit,
    format_option,
    friendly_errors,
    request,
)

EXIT_DIFFERENT = 3  # `replay --verify` found differences (1 = could not verify, 2 = usage)


def show_verification(result: dict[str, Any]) -> None:
    """A person's view of `replay --verify`: the verdict, what was compared, the differences."""
    from infra.tables import print_table

    verdict = "khớp / equal" if result["equal"] else "KHÁC / DIFFERENT"
    click.echo(
        f"Phát lại từ kho lưu trữ / replay from the archive: {verdict} — "
        f"{result['events']} events, {result['difference_count']} differences, "
        f"{result['seconds']} s"
    )
    print_table(
        "Đã so sánh / Compared (rows)",
        [("table", "Bảng / Table"), ("rows", "Số dòng / Rows")],
        [{"table": name, "rows": rows} for name, rows in result["checked"].items()],
    )
    if result["differences"]:
        print_table(
            "Khác biệt / Differences",
            [
                ("table", "Bảng / Table"),
                ("key", "Khóa / Key"),
                ("column", "Cột / Column"),
                ("live", "Hiện tại / Live"),
                ("replayed", "Phát lại / Replayed"),
            ],
            [{**d, "key": orjson.dumps(d["key"]).decode()} for d in result["differences"]],
        )


@click.command("replay")
@data_dir_option
@format_option
@click.option(
    "--verify",
    is_flag=True,
    help="Rebuild every aggregate from the archive into a fresh store and compare it with "
    f"the live one. Exit 0 when equal, {EXIT_DIFFERENT} when they differ.",
)
@click.option(
    "--into",
    type=click.Path(file_okay=False, path_type=Path),
    help="Build a complete snapshot data directory here (new or empty), readable with "
    "`ostwatch report … --data-dir DIR`.",
)
@click.option(
    "--as-of",
    metavar="T",
    help="With --into: only the events with occurred_at at or before T (RFC 3339).",
)
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=100,
    show_default=True,
    help="With --verify: list at most this many differences (all are counted).",
)
@friendly_errors
def replay_command(
    data_dir: Path,
    output_format: str,
    verify: bool,
    into: Path | None,
    as_of: str | None,
    limit: int,
) -> None:
    """Replay the archived events: verify the live aggregates, or build a snapshot store.

    Works from the ClickHouse archive (the system of record), not from Kafka, so it does
    not depend on topic retention.
    """
    if verify == (into is not None):
        raise click.UsageError("give either --verify or --into DIR")
    if verify and as_of:
        raise click.UsageError("--as-of goes with --into (verify compares the whole archive)")
    if into is not None:
        result = replay_into(lambda: common.operations(data_dir), data_dir, into, as_of)
        emit(
            result,
            output_format,
            f"snapshot in {result['into']}: {result['imported']} events"
            + (f" up to {as_of}" if as_of else "")
            + f", {result['registry_versions']} registry versions ({result['seconds']} s)",
        )
        return
    # No repair on opening: verify must see the live rows as they are.
    asked = request(ReplayVerifyRequest, limit=limit)
    with common.operations(data_dir, reconcile=False) as ops:
        result = ops.replay_verify(asked).root
    emit(result, output_format, lambda: show_verification(result))
    if not result["equal"]:
        click.echo(
            f"ostwatch: replay differs from the live store: "
            f"{result['difference_count']} differences",
            err=True,
        )
        sys.exit(EXIT_DIFFERENT)


@click.group()
def archive() -> None:
    """The portable archive: accepted events as Avro files per facility and month."""


@archive.command("export")
@data_dir_option
@format_option
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="New or empty directory to write events/<facility>/<YYYY-MM>.avro, registry.avro "
    "and manifest.json into.",
)
@as_of_option
@click.option("--facility", "facilities", multiple=True, metavar="ID", help="Only this facility.")
@click.option("--from", "date_from", metavar="YYYY-MM-DD", help="First local day.")
@click.option("--to", "date_to", metavar="YYYY-MM-DD", help="Last local day.")
@friendly_errors
def archive_export(
    data_dir: Path,
    output_format: str,
    out: Path,
    as_of: str | None,
    facilities: tuple[str, ...],
    date_from: str | None,
    date_to: str | None,
) -> None:
    """Write archived events as Avro object container files (schema embedded) and the
    registry history; any Avro tool reads them."""
    asked = request(
        ArchiveExportRequest,
        out=absolute(out),
        as_of=as_of,
        facilities=facilities,
        date_from=date_from,
        date_to=date_to,
    )
    with common.operations(data_dir) as ops:
        result = ops.archive_export(asked).root
    emit(
        result,
        output_format,
        f"exported {result['events']} events in {result['files']} files and "
        f"{result['registry_versions']} registry versions to {result['out']} "
        f"({result['seconds']} s)",
    )


@archive.command("import")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@data_dir_option
@format_option
@friendly_errors
def archive_import(directory: Path, data_dir: Path, output_format: str) -> None:
    """Add an exported archive's events to this store (event_ids already there are
    ignored), restore its registry history into a store that has none, and bring the
    aggregates level."""
    asked = request(ArchiveImportRequest, directory=absolute(directory))
    with common.operations(data_dir) as ops:
        result = ops.archive_import(asked).root
    emit(
        result,
        output_format,
        f"imported {result['imported']} events from {result['files']} files "
        f"({result['duplicates']} already present); registry: {result['registry']} "
        f"({result['seconds']} s)",
    )


COMMANDS = (replay_command, archive)
