"""Typed builders for the dashboards: what a panel shows, from which query, in which colours.

Plain frozen dataclasses, one definition serving three readers: Grafana (``grafana.py`` turns
them into dashboard JSON), the live view (``live.py`` runs the same queries) and the tests
(which run every query on simulator data and check the columns each panel expects).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from dashboards.queries import Scope, build_sql
from ostwatch.settings import AlertSettings
from schemas.labels import STATES

PanelKind = Literal["table", "stat", "barchart", "bargauge", "timeseries", "piechart"]
Format = Literal["table", "time_series"]

# One meaning, one colour, everywhere (Grafana panels, alert rules' labels, the live view).
STATUS_COLOURS: dict[str, str] = {
    "critical": "#C4162A",  # red
    "warning": "#FF9830",  # amber
    "ok": "#37872D",  # green
    "info": "#1F60C4",  # blue: informational, neither good nor bad
}
STATUS_LABELS: dict[str, str] = {code: label.text(" · ") for code, label in STATES.items()}
# Report states coloured by what they mean for the reader.
STATUS_MEANING: dict[str, str] = {
    "critical": "critical",
    "warning": "warning",
    "ok": "ok",
    "info": "info",
    "submitted": "ok",
    "submitted_late": "warning",
    "pending": "info",
    "due_soon": "warning",
    "overdue": "critical",
}


def colour_of(status: str) -> str:
    return STATUS_COLOURS[STATUS_MEANING[status]]


@dataclass(frozen=True)
class Column:
    """A column a panel's query must return, with how a person reads it."""

    name: str
    label_vi: str
    label_en: str
    kind: Literal["text", "number", "percent", "date", "datetime", "status"] = "number"
    decimals: int | None = None

    @property
    def label(self) -> str:
        return f"{self.label_vi} · {self.label_en}"


@dataclass(frozen=True)
class Thresholds:
    """Colour steps for a number: below ``critical_below`` red, below ``warning_below`` amber,
    else green; ``higher_is_worse`` flips it (e.g. hours silent)."""

    critical_at: float
    warning_at: float
    higher_is_worse: bool = False


@dataclass(frozen=True)
class Panel:
    key: str
    title_vi: str
    title_en: str
    kind: PanelKind
    query: str  # a file in dashboards/sql
    columns: tuple[Column, ...]
    description: str = ""
    width: int = 12
    height: int = 8
    format: Format = "table"
    thresholds: dict[str, Thresholds] = field(default_factory=dict)
    label_column: str | None = None  # bar charts: the category axis

    @property
    def title(self) -> str:
        return f"{self.title_vi} · {self.title_en}"

    def sql(self, alerts: AlertSettings, scope: Scope = "dashboard") -> str:
        """The panel's query, with the thresholds the entry point's stream judges by."""
        return build_sql(self.query, alerts, scope)

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


@dataclass(frozen=True)
class Variable:
    """A query variable of the province → district → facility chain."""

    name: str
    label_vi: str
    label_en: str
    query: str  # a file in dashboards/sql

    @property
    def label(self) -> str:
        return f"{self.label_vi} · {self.label_en}"

    def sql(self) -> str:
        return build_sql(self.query, None)


VARIABLES: tuple[Variable, ...] = (
    Variable("province", "Tỉnh", "Province", "var_province"),
    Variable("district", "Huyện", "District", "var_district"),
    Variable("facility", "Cơ sở", "Facility", "var_facility"),
)


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title_vi: str
    title_en: str
    panels: tuple[Panel, ...]
    description: str
    time_from: str = "now-7d"
    refresh: str = "1m"
    variables: tuple[Variable, ...] = VARIABLES

    @property
    def title(self) -> str:
        return f"{self.title_vi} · {self.title_en}"
