"""Write a province as the registry directory of contract §2, so a run can be loaded as-is."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path

from producers.simulator.province import Province

FACILITIES_HEADER = ("facility_id", "name", "type", "parent_id", "district", "province")
ITEMS_HEADER = ("item", "name", "kind", "unit", "mg_per_unit")
TARGETS_HEADER = (
    "facility_id",
    "year",
    "routine_target",
    "take_home_target",
    "community_detox_target",
)
DEADLINES_HEADER = ("report_type", "frequency", "due_day", "reporter_type", "recipient_id")

Cell = str | int | float | None


def _cell(value: Cell) -> str:
    """Empty for None; whole floats without a trailing ``.0`` (``10`` mg/ml, not ``10.0``)."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _write(path: Path, header: Sequence[str], rows: Iterable[Sequence[Cell]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows([_cell(value) for value in row] for row in rows)


def write_registry(province: Province, out_dir: Path, live_from: date | None = None) -> None:
    """Write facilities.csv, items.csv, targets.csv and deadlines.csv into ``out_dir``.

    targets.csv ends with the seed's printed totals (facility_id ``TOTAL``) when the province
    has them, so a load reports the seed's own take-home mismatch. ``live_from`` (the first
    simulated day) goes in facilities.csv's optional column for every facility: the register
    the generator sends that morning, dated before it, is then history (CONTRACT §2).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = [
        (f.facility_id, f.name, f.type, f.parent_id, f.district, f.province)
        for f in province.facilities
    ]
    if live_from is None:
        _write(out_dir / "facilities.csv", FACILITIES_HEADER, rows)
    else:
        _write(
            out_dir / "facilities.csv",
            (*FACILITIES_HEADER, "live_from"),
            ((*row, live_from.isoformat()) for row in rows),
        )
    _write(
        out_dir / "items.csv",
        ITEMS_HEADER,
        ((i.item, i.name, i.kind, i.unit, i.mg_per_unit) for i in province.items),
    )
    _write(
        out_dir / "targets.csv",
        TARGETS_HEADER,
        (
            (
                t.facility_id,
                t.year,
                t.routine_target,
                t.take_home_target,
                t.community_detox_target,
            )
            for t in (*province.targets, *province.printed_totals)
        ),
    )
    _write(
        out_dir / "deadlines.csv",
        DEADLINES_HEADER,
        (
            (d.report_type, d.frequency, d.due_day, d.reporter_type, d.recipient_id)
            for d in province.deadlines
        ),
    )
