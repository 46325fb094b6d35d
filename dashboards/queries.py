"""Panel and alert-rule SQL: the files in ``dashboards/sql`` with their shared fragments filled in.

A query file holds ClickHouse SQL as Grafana's ClickHouse plugin receives it: dashboard
variables (``${facility:singlequote}``) and the plugin's macros (``$__timeFilter(col)``,
``$__dateFilter(col)``, ``$__toTime``) stay in the text, for Grafana — or, in the live view and
the tests, ``dashboards.render`` — to expand. ``{{name}}`` marks a fragment filled in here at
build time, so that the registry's current version, "T" and the report logic are written once:
stock and patient standing reuse ``sinks/sql/report_stock.sql`` and ``report_patients.sql``
themselves, so a dashboard cannot drift from ``ostwatch report``.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import Literal

from ostwatch.settings import AlertSettings
from ostwatch.timeutil import LOCAL_TZ_NAME
from sinks.aggregates import AGGREGATE_BY_TABLE, sql_text

Scope = Literal["dashboard", "all"]


_FRAGMENT = re.compile(r"\{\{(\w+)\}\}")


def _current(table: str, columns: str) -> str:
    """Rows of the newest registry version (every load keeps the earlier ones)."""
    return (
        f"(SELECT {columns} FROM {table} "  # noqa: S608 - fixed names
        "WHERE version = (SELECT max(version) FROM registry_versions))"
    )


T = "(SELECT max(latest_occurred_at) FROM archive_bounds)"
T_DAY = f"toDate({T}, '{LOCAL_TZ_NAME}')"


def _number(value: float) -> str:
    return f"{value:g}"


BASE_FRAGMENTS: dict[str, str] = {
    "facilities": _current(
        "registry_facilities",
        "facility_id, name, type, parent_id, district, province, live_from",
    ),
    "items": _current("registry_items", "item, name, kind, unit, mg_per_unit"),
    "targets": _current(
        "registry_targets",
        "facility_id, year, routine_target, take_home_target, community_detox_target",
    ),
    "deadlines": _current(
        "registry_deadlines", "report_type, frequency, due_day, reporter_type, recipient_id"
    ),
    "t": T,
    "t_day": T_DAY,
}


def facility_scope(scope: Scope) -> str:
    """The facilities a query covers: the dashboard's variable, or all (alert rules)."""
    if scope == "dashboard":
        return "${facility:singlequote}"
    return f"SELECT facility_id FROM {BASE_FRAGMENTS['facilities']}"  # noqa: S608 - fixed SQL


def _stock_report(scope: Scope) -> str:
    """``report_stock.sql`` over every complete stock day up to T, for the scope's facilities."""
    columns = ", ".join(AGGREGATE_BY_TABLE["stock_daily"].columns)
    days = (
        f"SELECT {columns} FROM stock_daily FINAL "  # noqa: S608 - fixed names
        f"WHERE local_date <= {T_DAY} AND facility_id IN ({facility_scope(scope)})"
    )
    medications = (
        f"(SELECT item, assumeNotNull(mg_per_unit) AS mg FROM {BASE_FRAGMENTS['items']} "  # noqa: S608
        "WHERE ifNull(mg_per_unit, 0) > 0 ORDER BY item)"
    )
    items = f"arrayConcat([''], (SELECT groupArray(item) FROM {medications}))"  # noqa: S608
    mg_per_unit = f"arrayConcat([0.], (SELECT groupArray(mg) FROM {medications}))"  # noqa: S608
    return (
        sql_text("report_stock")
        .replace("{days}", days)
        .replace("%(items)s", items)
        .replace("%(mg_per_unit)s", mg_per_unit)
        .replace("%(window_start)s", f"({T_DAY} - 13)")
    )


def _patients() -> str:
    """``report_patients.sql`` at T: active patients per facility and programme."""
    return (
        sql_text("report_patients")
        .replace("{timeline}", "SELECT * FROM patient_timeline")
        .replace("{where}", "1")
    )


def _thresholds(alerts: AlertSettings) -> dict[str, str]:
    """The stream's alert thresholds as SQL literals, so that panels, Grafana's alert rules and
    the stream's alerts agree: the entry point passes the settings it gave the stream."""
    return {
        "warning_days": _number(alerts.stock_warning_days),
        "critical_days": _number(alerts.stock_critical_days),
        "due_soon_days": str(alerts.report_due_soon_days),
        "count_tolerance_percent": _number(alerts.count_tolerance_percent),
        "count_tolerance_units": _number(alerts.count_tolerance_units),
    }


def fragments(scope: Scope, alerts: AlertSettings | None) -> dict[str, str]:
    """Every fragment a query may use; without ``alerts`` (the dashboard variables) no
    threshold, so a query that needs one fails instead of using a default."""
    return {
        **BASE_FRAGMENTS,
        **(_thresholds(alerts) if alerts is not None else {}),
        "facility_scope": facility_scope(scope),
        "stock_report": _stock_report(scope),
        "patients": _patients(),
    }


@cache
def _file(name: str) -> str:
    return resources.files("dashboards").joinpath("sql", f"{name}.sql").read_text("utf-8")


def build_sql(name: str, alerts: AlertSettings | None, scope: Scope = "dashboard") -> str:
    """The query ``name`` with every ``{{fragment}}`` filled in (fragments may nest), its
    thresholds from ``alerts`` (None only for a query that has none)."""
    values = fragments(scope, alerts)

    def fill(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise ValueError(f"{name}.sql: no value for {{{{{key}}}}} (alert settings needed?)")
        return values[key]

    text = _file(name)
    for _ in range(4):
        text, count = _FRAGMENT.subn(fill, text)
        if count == 0:
            return text.strip()
    raise ValueError(f"{name}.sql: fragments nest too deeply")


def query_names() -> list[str]:
    """Every query file shipped (the tests check each one is used and runs)."""
    folder = resources.files("dashboards").joinpath("sql")
    return sorted(e.name.removesuffix(".sql") for e in folder.iterdir() if e.name.endswith(".sql"))
