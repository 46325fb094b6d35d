"""``export …``: files for other systems, from the monthly report (docs/reports-monthly.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import orjson

from infra.application.reports import MonthlyRequest
from infra.cli import common
from infra.cli.common import (
    UserError,
    as_of_option,
    data_dir_option,
    friendly_errors,
    output_format_option,
    request,
    write_output,
)


@click.group("export")
def export_group() -> None:
    """Files for other systems, from the monthly report (docs/reports-monthly.md)."""


@export_group.command("dhis2")
@data_dir_option
@click.option("--period", required=True, metavar="YYYY-MM", help="The local month.")
@click.option(
    "--mapping",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CSV kind,code,uid,category_option_combo: facilities → org units, figures → data "
    "elements (sample: producers/simulator/data/dhis2_mapping_bac_giang.csv).",
)
@click.option("--unit", metavar="ID", help="Only this unit and the facilities below it.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the dataValueSet JSON here instead of stdout.",
)
@click.option(
    "--unmapped",
    "unmapped_out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write what the mapping left out (figures, facilities) to this JSON file.",
)
@output_format_option(default="json")  # DHIS2 reads the JSON document; no other form
@as_of_option
@friendly_errors
def export_dhis2(
    data_dir: Path,
    output_format: str,
    period: str,
    mapping: Path,
    unit: str | None,
    out: Path | None,
    unmapped_out: Path | None,
    as_of: str | None,
) -> None:
    """DHIS2 dataValueSets JSON of the month's report, through a mapping file.

    Nothing is guessed: figures and facilities the mapping does not name are left out and
    listed on stderr (and in --unmapped FILE); DHIS2's period is written YYYYMM.
    """
    from infra.dhis2 import Dhis2Error, data_value_set, parse_mapping

    try:
        table = parse_mapping(mapping.read_text(encoding="utf-8"), str(mapping))
    except Dhis2Error as exc:
        raise UserError(f"{len(str(exc).splitlines())} problem(s) in the mapping: {exc}") from exc
    asked = request(MonthlyRequest, period=period, unit=unit, as_of=as_of)
    with common.operations(data_dir) as ops:
        document = ops.report_monthly(asked).root
    try:
        value_set, unmapped = data_value_set(document, table)
    except Dhis2Error as exc:
        raise UserError(f"the mapping sends two figures to one value: {exc}") from exc
    text = orjson.dumps(value_set, option=orjson.OPT_INDENT_2).decode() + "\n"
    write_output(text, out, f"{len(value_set['dataValues'])} DHIS2 data values")
    if unmapped_out is not None:
        unmapped_out.write_text(
            orjson.dumps(unmapped.as_dict(), option=orjson.OPT_INDENT_2).decode() + "\n",
            encoding="utf-8",
        )
    for line in _unmapped_lines(unmapped.as_dict()):
        click.echo(f"ostwatch: {line}", err=True)


def _unmapped_lines(unmapped: dict[str, Any], most: int = 40) -> list[str]:
    """What the export left out, for stderr (every item in --unmapped FILE)."""
    lines = [
        f"not exported (no data element): {f['figure']} ({f['rows']} row(s))"
        for f in unmapped["figures"]
    ]
    for facility in unmapped["facilities"]:
        via = ", ".join(facility["mapped_below"])
        note = f"; its facilities {via} are exported" if via else ""
        lines.append(f"not exported (no org unit): {facility['facility_id']}{note}")
    if len(lines) > most:
        lines = [*lines[:most], f"… and {len(lines) - most} more (--unmapped FILE lists all)"]
    return lines


COMMANDS = (export_group,)
