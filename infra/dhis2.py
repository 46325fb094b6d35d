"""The monthly report as a DHIS2 ``dataValueSets`` document, through a mapping file.

DHIS2 (the national health information software many provinces report into) imports
aggregate figures as ``{"dataValues": [{"dataElement", "period", "orgUnit",
"categoryOptionCombo", "value"}]}`` with 11-character uids and monthly periods written
``YYYYMM``. Nothing here guesses a uid: a figure or a facility the mapping does not name is
left out and listed (``Unmapped``), so the officer sees what the file does not carry.

The mapping is a CSV with a header ``kind,code,uid,category_option_combo``:

* ``org_unit,<facility_id>,<orgUnit uid>,`` — whose rows go to DHIS2, under which org unit;
* ``data_element,<figure>,<dataElement uid>,<categoryOptionCombo uid or empty>`` — a figure of
  the monthly report: ``<list>.<key>.<field>``, e.g. ``patients.methadone.active_end``,
  ``stock.MET10.closing``, ``dispensing.MET10.mg_observed``, ``tests.screening.tests``, and
  for the counts inside an object one more part: ``patients.methadone.discharged.completed``,
  ``tests.screening.positive.opiates``.

Timeliness is not exported (it holds dates, not figures). Two figures mapped onto the same
data element and combination for one org unit would overwrite each other in DHIS2: that is
refused as a mapping error.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = [
    "UID",
    "Dhis2Error",
    "Dhis2Mapping",
    "Unmapped",
    "data_value_set",
    "figure_keys",
    "parse_mapping",
]

UID: Final = re.compile(r"^[A-Za-z][A-Za-z0-9]{10}$")
HEADER: Final = ("kind", "code", "uid", "category_option_combo")
KINDS: Final = ("org_unit", "data_element")
# The lists exported, and the field naming a row within its unit.
EXPORTED: Final[Mapping[str, str]] = {
    "patients": "programme",
    "dispensing": "item",
    "stock": "item",
    "tests": "purpose",
}
NOT_FIGURES: Final = frozenset({"facility_id", "unit"})


class Dhis2Error(ValueError):
    """A mapping file that cannot be used (every problem listed, one per line)."""


@dataclass(frozen=True)
class Dhis2Mapping:
    """Facility id → orgUnit uid, and figure → (dataElement uid, categoryOptionCombo uid)."""

    org_units: Mapping[str, str]
    data_elements: Mapping[str, tuple[str, str | None]]


@dataclass
class Unmapped:
    """What the export left out: figures with no data element (and how many rows had them),
    and facilities with figures but no org unit (with the mapped units above and below)."""

    figures: dict[str, int] = field(default_factory=dict)
    facilities: list[dict[str, Any]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.figures or self.facilities)

    def as_dict(self) -> dict[str, Any]:
        return {
            "figures": [{"figure": k, "rows": v} for k, v in sorted(self.figures.items())],
            "facilities": self.facilities,
        }


def parse_mapping(text: str, source: str = "mapping") -> Dhis2Mapping:
    """Read a mapping CSV; Dhis2Error naming ``source:line: problem`` for every bad line."""
    problems: list[str] = []
    org_units: dict[str, str] = {}
    data_elements: dict[str, tuple[str, str | None]] = {}
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    header = next(reader, None)
    if header is None or tuple(cell.strip() for cell in header) != HEADER:
        raise Dhis2Error(f"{source}:1: header must be {','.join(HEADER)} (got {header!r})")
    for cells in reader:
        line = reader.line_num
        cells = [cell.strip() for cell in cells]
        if not any(cells):
            continue
        if len(cells) != len(HEADER):
            problems.append(f"{source}:{line}: {len(cells)} cells, the header has {len(HEADER)}")
            continue
        kind, code, uid, combo = cells
        if kind not in KINDS:
            problems.append(f"{source}:{line}: kind must be org_unit or data_element, not {kind!r}")
            continue
        bad = [u for u in (uid, combo) if u and not UID.match(u)]
        if not uid or bad:
            problems.append(
                f"{source}:{line}: {bad[0] if bad else '(empty)'!r} is not a DHIS2 uid "
                "(a letter, then 10 letters or digits)"
            )
            continue
        if kind == "org_unit":
            if combo:
                problems.append(f"{source}:{line}: an org_unit takes no category_option_combo")
            elif code in org_units:
                problems.append(f"{source}:{line}: org_unit {code!r} mapped twice")
            else:
                org_units[code] = uid
        elif code in data_elements:
            problems.append(f"{source}:{line}: figure {code!r} mapped twice")
        else:
            data_elements[code] = (uid, combo or None)
    if problems:
        raise Dhis2Error("\n".join(problems))
    return Dhis2Mapping(org_units, data_elements)


def figure_keys(name: str, row: Mapping[str, Any]) -> dict[str, float | int]:
    """Every figure of one report row, by its mapping key, counts inside objects included."""
    prefix = f"{name}.{row[EXPORTED[name]]}"
    found: dict[str, float | int] = {}
    for field_name, value in row.items():
        if field_name in NOT_FIGURES or field_name == EXPORTED[name]:
            continue
        if isinstance(value, Mapping):
            for inner, count in value.items():
                found[f"{prefix}.{field_name}.{inner}"] = count
        elif isinstance(value, int | float) and not isinstance(value, bool):
            found[f"{prefix}.{field_name}"] = value
    return found


def _value(number: float | int) -> str:
    """A figure as DHIS2 stores values: a string of a number, no exponent, no -0."""
    if isinstance(number, int):
        return str(number)
    text = f"{number:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _zero_counts(name: str, row: Mapping[str, Any], mapping: Dhis2Mapping) -> dict[str, int]:
    """Mapped counts inside an object that the row's object lacks: 0, since an object lists
    only counts of at least 1 (``discharged``, ``positive``)."""
    prefix = f"{name}.{row[EXPORTED[name]]}."
    found = {}
    for code in mapping.data_elements:
        if not code.startswith(prefix):
            continue
        field_name, _, inner = code[len(prefix) :].partition(".")
        counts = row.get(field_name)
        if inner and isinstance(counts, Mapping) and inner not in counts:
            found[code] = 0
    return found


def data_value_set(
    document: Mapping[str, Any], mapping: Dhis2Mapping
) -> tuple[dict[str, Any], Unmapped]:
    """The dataValueSet of a monthly report document, and what it left out."""
    period = str(document["period"]).replace("-", "")
    units = {unit["facility_id"]: unit for unit in document.get("units", ())}
    values: dict[tuple[str, str, str | None], tuple[str, str]] = {}
    unmapped = Unmapped()
    unmapped_facilities: set[str] = set()
    conflicts: list[str] = []
    for name in EXPORTED:
        for row in document.get(name, ()):
            facility = row["facility_id"]
            org_unit = mapping.org_units.get(facility)
            if org_unit is None:
                unmapped_facilities.add(facility)
                continue
            figures = figure_keys(name, row) | _zero_counts(name, row, mapping)
            for code, number in figures.items():
                target = mapping.data_elements.get(code)
                if target is None:
                    unmapped.figures[code] = unmapped.figures.get(code, 0) + 1
                    continue
                key = (org_unit, target[0], target[1])
                if key in values and values[key][0] != code:
                    conflicts.append(
                        f"{values[key][0]} and {code} both map to data element {target[0]} "
                        f"/ {target[1] or 'default'} for {facility}"
                    )
                values[key] = (code, _value(number))
    if conflicts:
        raise Dhis2Error("\n".join(sorted(set(conflicts))))
    unmapped.facilities = [_where(f, units, mapping) for f in sorted(unmapped_facilities)]
    data_values = []
    for (org_unit, element, combo), (_, text) in sorted(
        values.items(), key=lambda item: (item[0][0], item[0][1], item[0][2] or "")
    ):
        entry: dict[str, str] = {"dataElement": element, "period": period, "orgUnit": org_unit}
        if combo:
            entry["categoryOptionCombo"] = combo
        entry["value"] = text
        data_values.append(entry)
    return {"dataValues": data_values}, unmapped


def _where(
    facility: str, units: Mapping[str, Mapping[str, Any]], mapping: Dhis2Mapping
) -> dict[str, Any]:
    """An unmapped facility, with the nearest mapped unit above it and the mapped ones below
    (its figures may reach DHIS2 through them, which DHIS2 adds up itself)."""
    above = None
    parent = units.get(facility, {}).get("parent_id")
    while parent is not None:
        if parent in mapping.org_units:
            above = parent
            break
        parent = units.get(parent, {}).get("parent_id")
    below = sorted(
        unit_id
        for unit_id in _descendants(facility, units)
        if unit_id in mapping.org_units and unit_id != facility
    )
    return {"facility_id": facility, "mapped_above": above, "mapped_below": below}


def _descendants(facility: str, units: Mapping[str, Mapping[str, Any]]) -> Sequence[str]:
    children: dict[str, list[str]] = {}
    for unit_id, unit in units.items():
        if unit.get("parent_id"):
            children.setdefault(unit["parent_id"], []).append(unit_id)
    found, pending = [], [facility]
    while pending:
        current = pending.pop()
        found.append(current)
        pending.extend(children.get(current, ()))
    return found
