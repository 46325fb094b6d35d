"""The layout of the monthly report's documents (xlsx sheets, csv files, the printable
report): which fields each list shows, in order, and the known keys of its nested fields.
The words for them are in schemas/labels.py, shared with everything else people read."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, get_args

from schemas.models import DischargeOutcome

# The fields of each list of the monthly report, in document order.
MONTHLY_COLUMNS: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "patients": (
            "programme",
            "active_start",
            "enrolled",
            "transferred_in",
            "transferred_out",
            "discharged",
            "active_end",
            "take_home_end",
            "enrolled_year",
            "completed_year",
        ),
        "dispensing": (
            "item",
            "patients_dosed",
            "observed_doses",
            "take_home_handouts",
            "mg_observed",
            "mg_take_home",
        ),
        "stock": (
            "item",
            "unit",
            "opening",
            "received",
            "adjusted",
            "used",
            "count_difference",
            "closing",
        ),
        "tests": ("purpose", "tests", "positive"),
        "timeliness": (
            "report_type",
            "period",
            "recipient_id",
            "due",
            "submitted_at",
            "on_time",
        ),
    }
)

# Known keys of nested fields, in the order their columns appear (others follow, sorted).
NESTED_KEYS: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "discharged": (*get_args(DischargeOutcome), "programme_changed"),
        "positive": (),
    }
)
