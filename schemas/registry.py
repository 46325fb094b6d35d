"""What a registry is once read (CONTRACT.md section 2): its rows, one consistent snapshot of
them, the totals a source printed under its targets, and the error that lists every problem of
a registry that cannot be loaded. Reading the files is ``schemas.reference``'s.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from types import MappingProxyType
from typing import Final, Literal, get_args

FacilityType = Literal[
    "treatment_facility",
    "dispensing_point",
    "commune_health_station",
    "district_health_centre",
    "provincial_cdc",
    "psychiatric_hospital",
    "department_of_health",
]
FACILITY_TYPES: Final[tuple[str, ...]] = get_args(FacilityType)
ITEM_KINDS: Final = ("medication", "test_kit")
_MAX_LISTED: Final = 20


class RegistryError(ValueError):
    """A registry that cannot be loaded; ``problems`` lists every ``file:line: column: problem``."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = tuple(problems)
        listed = "\n".join(f"  {problem}" for problem in problems[:_MAX_LISTED])
        more = len(problems) - _MAX_LISTED
        tail = f"\n  … and {more} more" if more > 0 else ""
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        super().__init__(f"registry has {count}:\n{listed}{tail}")


@dataclass(frozen=True)
class FacilityRow:
    """A unit of the health system; ``parent_id`` builds the roll-up hierarchy.

    ``live_from`` is the local day the facility started sending events: what happened there
    before is history, counted in every report but never notified (CONTRACT §2, §4).
    """

    facility_id: str
    name: str
    type: str
    parent_id: str | None
    district: str
    province: str
    live_from: date | None = None


@dataclass(frozen=True)
class ItemRow:
    """A medication (with its concentration) or a test kit."""

    item: str
    name: str
    kind: str
    unit: str
    mg_per_unit: float | None


@dataclass(frozen=True)
class TargetRow:
    """A unit's annual targets; empty cells mean no target was set."""

    facility_id: str
    year: int
    routine_target: int | None
    take_home_target: int | None
    community_detox_target: int | None


@dataclass(frozen=True)
class PrintedTotal:
    """The totals a source printed for one year's targets (a ``TOTAL`` row of targets.csv).

    Empty cells mean nothing was printed for that column; ``line`` is the row's line in the file.
    """

    year: int
    routine_target: int | None
    take_home_target: int | None
    community_detox_target: int | None
    line: int


@dataclass(frozen=True)
class TotalMismatch:
    """A printed total that differs from the total derived from the rows it sums.

    ``difference`` is ``printed - derived`` (None when no row has a value). ``year`` and ``line``
    locate the totals row of targets.csv; they are None for a table checked on its own.
    """

    column: str
    printed: int
    derived: int | None
    year: int | None = None
    line: int | None = None

    @property
    def difference(self) -> int | None:
        return None if self.derived is None else self.printed - self.derived

    @property
    def message(self) -> str:
        """One human-readable line, ``targets.csv:LINE: column: ...`` when the line is known."""
        where = f"targets.csv:{self.line}: " if self.line is not None else ""
        year = f" for {self.year}" if self.year is not None else ""
        if self.derived is None:
            derived = "no row has a value"
        else:
            derived = (
                f"the rows add up to {self.derived} (difference {self.printed - self.derived:+d})"
            )
        return f"{where}{self.column}: printed total{year} is {self.printed}, but {derived}"

    def as_dict(self) -> dict[str, int | str | None]:
        return {
            "year": self.year,
            "column": self.column,
            "printed": self.printed,
            "derived": self.derived,
            "difference": self.difference,
            "line": self.line,
        }


@dataclass(frozen=True)
class DeadlineRow:
    """When a report is due: ``due_day`` of the month after the period, by ``reporter_type``,
    to ``recipient_id`` (the receiving unit's facility id) when the file names one."""

    report_type: str
    frequency: str
    due_day: int
    reporter_type: str
    recipient_id: str | None = None


@dataclass(frozen=True)
class RegistrySnapshot:
    """One consistent version of the reference files."""

    facilities: Mapping[str, FacilityRow]
    items: Mapping[str, ItemRow]
    targets: tuple[TargetRow, ...] = ()
    deadlines: Mapping[str, DeadlineRow] = field(default_factory=lambda: MappingProxyType({}))
    printed_totals: tuple[PrintedTotal, ...] = ()

    @functools.cached_property
    def _children(self) -> Mapping[str, tuple[str, ...]]:
        children: dict[str, list[str]] = {}
        for row in self.facilities.values():
            if row.parent_id is not None:
                children.setdefault(row.parent_id, []).append(row.facility_id)
        return {parent: tuple(ids) for parent, ids in children.items()}

    def children_of(self, facility_id: str) -> tuple[str, ...]:
        """Facilities whose parent is ``facility_id``, in file order."""
        return self._children.get(facility_id, ())

    def descendants_of(self, facility_id: str) -> set[str]:
        """``facility_id`` and every facility below it: the units a target's actuals roll up."""
        found = {facility_id}
        pending = [facility_id]
        while pending:
            for child in self.children_of(pending.pop()):
                if child not in found:
                    found.add(child)
                    pending.append(child)
        return found
