"""Grafana JSON from the typed dashboards: dashboards, the ClickHouse data source, alert rules.

The data source is the official ClickHouse plugin (``grafana-clickhouse-datasource``) with a
read-only ClickHouse user whose name is one setting (``DATASOURCE_USER``); its password is
read by Grafana from the environment at provisioning time, never written here.
"""

from __future__ import annotations

from typing import Any

from dashboards.catalog import DASHBOARDS
from dashboards.model import (
    STATUS_COLOURS,
    STATUS_LABELS,
    STATUS_MEANING,
    Column,
    Dashboard,
    Panel,
    Thresholds,
    Variable,
)
from ostwatch.settings import AlertSettings
from ostwatch.timeutil import LOCAL_TZ_NAME

PLUGIN = "grafana-clickhouse-datasource"
DATASOURCE_UID = "ostwatch-clickhouse"
DATASOURCE_NAME = "ostwatch ClickHouse"
FOLDER_UID = "ostwatch"
FOLDER_TITLE = "ostwatch"
# The read-only ClickHouse user Grafana queries as (the ClickHouse roles define its grants).
DATASOURCE_USER = "ostwatch_viewer"
DATASOURCE: dict[str, str] = {"type": PLUGIN, "uid": DATASOURCE_UID}
SQLUTIL_FORMAT = {"time_series": 0, "table": 1}  # grafana-plugin-sdk-go sqlutil.FormatQueryOption
QUERY_TYPE = {"time_series": "timeSeries", "table": "table"}
GRID_WIDTH = 24


def target(sql: str, ref_id: str = "A", fmt: str = "table") -> dict[str, Any]:
    """A ClickHouse plugin SQL query (its CHSqlQuery shape)."""
    return {
        "refId": ref_id,
        "datasource": DATASOURCE,
        "editorType": "sql",
        "queryType": QUERY_TYPE[fmt],
        "format": SQLUTIL_FORMAT[fmt],
        "rawSql": sql,
    }


def _steps(t: Thresholds) -> list[dict[str, Any]]:
    red, amber, green = (STATUS_COLOURS[k] for k in ("critical", "warning", "ok"))
    if t.higher_is_worse:
        return [
            {"color": green, "value": None},
            {"color": amber, "value": t.warning_at},
            {"color": red, "value": t.critical_at},
        ]
    return [
        {"color": red, "value": None},
        {"color": amber, "value": t.critical_at},
        {"color": green, "value": t.warning_at},
    ]


def _status_mappings() -> list[dict[str, Any]]:
    options = {
        status: {"color": STATUS_COLOURS[meaning], "text": STATUS_LABELS[status], "index": index}
        for index, (status, meaning) in enumerate(STATUS_MEANING.items())
    }
    return [{"type": "value", "options": options}]


def _unit(column: Column) -> str | None:
    # Dates as Vietnamese readers write them; numbers in the viewer's locale (Grafana's
    # "locale" unit: 1.234,5 in a vi-VN browser). Grafana has no per-dashboard locale.
    return {
        "date": "time:DD/MM/YYYY",
        "datetime": "time:DD/MM/YYYY HH:mm",
        "percent": "percent",
        "number": "locale",
    }.get(column.kind)


def _override(panel: Panel, column: Column) -> dict[str, Any] | None:
    properties: list[dict[str, Any]] = [{"id": "displayName", "value": column.label}]
    if (unit := _unit(column)) is not None:
        properties.append({"id": "unit", "value": unit})
    if column.decimals is not None:
        properties.append({"id": "decimals", "value": column.decimals})
    cell = None
    if column.kind == "status":
        properties.append({"id": "mappings", "value": _status_mappings()})
        cell = "color-background"
    if column.name in panel.thresholds:
        properties.append(
            {
                "id": "thresholds",
                "value": {"mode": "absolute", "steps": _steps(panel.thresholds[column.name])},
            }
        )
        properties.append({"id": "color", "value": {"mode": "thresholds"}})
        cell = "color-background"
    if cell and panel.kind == "table":
        properties.append({"id": "custom.cellOptions", "value": {"type": cell}})
    return {"matcher": {"id": "byName", "options": column.name}, "properties": properties}


LEGEND = {"showLegend": True, "displayMode": "list", "placement": "bottom", "calcs": []}
TOOLTIP = {"mode": "multi", "sort": "none"}
REDUCE_ALL = {"values": True, "calcs": [], "fields": ""}


def _options(panel: Panel) -> dict[str, Any]:
    if panel.kind == "table":
        return {"showHeader": True, "cellHeight": "sm"}
    if panel.kind == "stat":
        return {
            "reduceOptions": {"values": False, "calcs": ["lastNotNull"], "fields": ""},
            "colorMode": "value",
            "graphMode": "none",
            "justifyMode": "auto",
            "orientation": "auto",
            "textMode": "value_and_name",
        }
    if panel.kind == "bargauge":
        return {
            "reduceOptions": {**REDUCE_ALL, "fields": "/^progress_pct$/"},
            "orientation": "horizontal",
            "displayMode": "gradient",
            "showUnfilled": True,
            "valueMode": "color",
            "namePlacement": "auto",
        }
    if panel.kind == "barchart":
        return {
            "orientation": "horizontal",
            "xField": panel.label_column,
            "showValue": "auto",
            "stacking": "none",
            "legend": LEGEND,
            "tooltip": TOOLTIP,
        }
    if panel.kind == "piechart":
        return {
            "reduceOptions": {"values": False, "calcs": ["sum"], "fields": ""},
            "pieType": "pie",
            "legend": LEGEND,
            "tooltip": TOOLTIP,
        }
    return {"legend": LEGEND, "tooltip": TOOLTIP}


def panel_json(
    panel: Panel, alerts: AlertSettings, panel_id: int, x: int, y: int
) -> dict[str, Any]:
    overrides = [o for c in panel.columns if (o := _override(panel, c)) is not None]
    defaults: dict[str, Any] = {"color": {"mode": "palette-classic"}}
    if panel.kind == "bargauge":
        defaults = {"unit": "percent", "min": 0, "max": 100}
    return {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "targets": [target(panel.sql(alerts), fmt=panel.format)],
        "options": _options(panel),
        "fieldConfig": {"defaults": defaults, "overrides": overrides},
    }


def variable_json(variable: Variable) -> dict[str, Any]:
    sql = variable.sql()
    return {
        "name": variable.name,
        "label": variable.label,
        "type": "query",
        "datasource": DATASOURCE,
        "query": sql,
        "refresh": 1,
        "multi": True,
        "includeAll": True,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
        "hide": 0,
        "options": [],
        "regex": "",
        "skipUrlSync": False,
    }


def dashboard_json(dashboard: Dashboard, alerts: AlertSettings) -> dict[str, Any]:
    """The dashboard as Grafana stores it (schema of Grafana 11.2), coloured and filtered by
    the thresholds in ``alerts``."""
    panels, x, y, row_height = [], 0, 0, 0
    for index, panel in enumerate(dashboard.panels, start=1):
        if x + panel.width > GRID_WIDTH:
            x, y, row_height = 0, y + row_height, 0
        panels.append(panel_json(panel, alerts, index, x, y))
        x += panel.width
        row_height = max(row_height, panel.height)
    return {
        "uid": dashboard.uid,
        "title": dashboard.title,
        "description": dashboard.description,
        "tags": ["ostwatch"],
        "timezone": LOCAL_TZ_NAME,
        "weekStart": "monday",
        "editable": False,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": dashboard.refresh,
        "time": {"from": dashboard.time_from, "to": "now"},
        "templating": {"list": [variable_json(v) for v in dashboard.variables]},
        "annotations": {"list": []},
        "links": [
            {
                "title": "ostwatch",
                "type": "dashboards",
                "tags": ["ostwatch"],
                "asDropdown": True,
                "includeVars": True,
                "keepTime": True,
            }
        ],
        "panels": panels,
    }


def all_dashboards(alerts: AlertSettings) -> dict[str, dict[str, Any]]:
    return {d.uid: dashboard_json(d, alerts) for d in DASHBOARDS}


def datasource_json(url: str = "clickhouse", port: int = 8123) -> dict[str, Any]:
    """The data source entry of a provisioning file (password from the environment)."""
    return {
        "name": DATASOURCE_NAME,
        "uid": DATASOURCE_UID,
        "type": PLUGIN,
        "access": "proxy",
        "isDefault": True,
        "editable": False,
        "jsonData": {
            "host": url,
            "port": port,
            "protocol": "http",
            "username": DATASOURCE_USER,
            "defaultDatabase": "ostwatch",
        },
        "secureJsonData": {"password": "$OSTWATCH_VIEWER_PASSWORD"},
    }
