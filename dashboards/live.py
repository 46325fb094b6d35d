"""The live view's data: the province overview's panels and the stock table, from the very
panel definitions and queries Grafana gets, rendered here (``dashboards.render``) with every
facility selected and the last 30 days up to now. Served by the stack (``infra/http/live_view.py``)
to a page drawn with plotly.js, shipped inside the ``plotly`` wheel and served locally.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from dashboards.catalog import (
    ALERTS_BY_SEVERITY,
    DOSING_PROGRESS,
    OVERVIEW,
    STOCK,
    TARGETS,
    TIMELINESS,
)
from dashboards.formatting import vi_date, vi_number
from dashboards.model import STATUS_COLOURS, STATUS_LABELS, VARIABLES, Panel, colour_of
from dashboards.render import TimeRange, render
from ostwatch.settings import AlertSettings
from ostwatch.timeutil import LOCAL_TZ
from sinks.panels import PanelQueries

LIVE_PANELS: tuple[Panel, ...] = (TARGETS, DOSING_PROGRESS, ALERTS_BY_SEVERITY, STOCK, TIMELINESS)
WINDOW = timedelta(days=30)


def _cell(panel: Panel, name: str, value: Any) -> Any:
    """A value as the page shows it: Vietnamese numbers and dates, labelled statuses."""
    column = panel.column(name)
    if column.kind == "status":
        return STATUS_LABELS.get(str(value), str(value))
    if column.kind == "date":
        return vi_date(value)
    if column.kind == "datetime":
        return vi_date(value, with_time=True)
    if column.kind in ("number", "percent") and value is not None and not isinstance(value, str):
        text = vi_number(value, column.decimals or 0)
        return f"{text} %" if column.kind == "percent" else text
    return value


def _raw(value: Any) -> Any:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


def _colour(panel: Panel, row: dict[str, Any]) -> str | None:
    status = row.get("status") or (row.get("severity") if panel is ALERTS_BY_SEVERITY else None)
    if status is not None:
        return colour_of(str(status))
    for name, t in panel.thresholds.items():
        value = row.get(name)
        if value is None:
            return None
        worse = value >= t.critical_at if t.higher_is_worse else value < t.critical_at
        bad = value >= t.warning_at if t.higher_is_worse else value < t.warning_at
        return STATUS_COLOURS["critical" if worse else "warning" if bad else "ok"]
    return None


def panel_data(
    source: PanelQueries, alerts: AlertSettings, now: datetime | None = None
) -> dict[str, Any]:
    """Every live panel's rows (raw for charts, formatted for tables) and its colours, judged
    by the thresholds the worker's own alerts use (``alerts``)."""
    end = now or datetime.now(LOCAL_TZ)
    time_range = TimeRange(end - WINDOW, end)
    chosen: dict[str, list[str]] = {}
    for variable in VARIABLES:
        values = source.variable_values(render(variable.sql(), chosen, time_range))
        chosen[variable.name] = values or [""]
    panels = []
    for panel in LIVE_PANELS:
        records = source.panel_rows(render(panel.sql(alerts), chosen, time_range))
        panels.append(
            {
                "key": panel.key,
                "title": panel.title,
                "kind": panel.kind,
                "label_column": panel.label_column,
                "columns": [
                    {"name": c.name, "label": c.label, "kind": c.kind} for c in panel.columns
                ],
                "rows": [{k: _raw(v) for k, v in row.items()} for row in records],
                "cells": [{k: _cell(panel, k, v) for k, v in row.items()} for row in records],
                "colours": [_colour(panel, row) for row in records],
            }
        )
    return {
        "title": OVERVIEW.title,
        "updated": vi_date(end, with_time=True),
        "colours": STATUS_COLOURS,
        "panels": panels,
    }


@cache
def static_file(name: str) -> bytes:
    """The page and its script (package data)."""
    return resources.files("dashboards").joinpath("static", name).read_bytes()


@cache
def plotly_js() -> bytes:
    """plotly.js as shipped inside the plotly wheel: served by the stack, no CDN."""
    import plotly

    return (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_bytes()
