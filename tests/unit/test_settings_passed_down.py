"""Settings are built once, at the entry point, and passed down (issue 16 item 5): the alert
thresholds given to the dashboards are the ones their panels and Grafana's rules use, and no
product module outside the command line builds a settings class for itself."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from dashboards import live, provisioning
from dashboards.alert_rules import rules
from dashboards.catalog import DASHBOARDS, STOCK, TIMELINESS
from dashboards.grafana import dashboard_json
from infra.cli.main import main
from ostwatch.settings import AlertSettings
from sinks.panels import PanelQueries

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("ostwatch", "schemas", "producers", "streams", "sinks", "dashboards", "infra")
# Where a process starts: the command line builds every setting the parts are given.
ENTRY_POINTS = ("infra/cli/",)
# Above the defaults (14, 7, 3 days; 2 % or 1 unit) and written the way the SQL writes them.
CHANGED = AlertSettings(
    stock_warning_days=21,
    stock_critical_days=9.5,
    report_due_soon_days=5,
    count_tolerance_percent=3.5,
    count_tolerance_units=4,
)


def test_the_rules_judge_by_the_thresholds_passed_in() -> None:
    by_uid = {rule.uid: rule for rule in rules(CHANGED)}
    assert by_uid["ostwatch-stock-low-warning"].condition == "$A < 21"
    assert by_uid["ostwatch-stock-low-critical"].condition == "$A < 9.5"
    assert "days_of_supply >= 9.5" in by_uid["ostwatch-stock-low-warning"].sql
    assert "dưới 21 ngày" in by_uid["ostwatch-stock-low-warning"].title
    assert "today >= due_date - 5," in by_uid["ostwatch-report-due-soon"].sql


def test_the_panels_colour_by_the_thresholds_passed_in() -> None:
    stock = STOCK.sql(CHANGED)
    assert "days_of_supply < 9.5, 'critical'" in stock
    assert "days_of_supply < 21, 'warning'" in stock
    assert "days_of_supply < 7," not in stock and "days_of_supply < 14," not in stock
    assert "today >= due_date - 5," in TIMELINESS.sql(CHANGED)
    assert "'warning'" in str(dashboard_json(DASHBOARDS[0], CHANGED))
    exported = "".join(provisioning.files(CHANGED).values())
    assert "greatest(3.5 / 100 * abs(expected), 4)" in exported


def test_a_query_without_thresholds_fails_rather_than_guess() -> None:
    from dashboards.queries import build_sql

    assert "registry_facilities" in build_sql("var_province", None)
    with pytest.raises(ValueError, match=r"no value for \{\{critical_days\}\}"):
        build_sql("stock_position", None)


class RecordingQueries(PanelQueries):
    """The live view's database reads, answered empty, keeping the SQL it was asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def variable_values(self, query: str) -> list[str]:
        self.asked.append(query)
        return []

    def panel_rows(self, query: str) -> list[dict[str, Any]]:
        self.asked.append(query)
        return []


def test_the_live_view_runs_its_panels_with_the_settings_passed_in() -> None:
    source = RecordingQueries()
    doc = live.panel_data(source, CHANGED)
    assert [p["key"] for p in doc["panels"]] == [p.key for p in live.LIVE_PANELS]
    assert any("days_of_supply < 21, 'warning'" in sql for sql in source.asked)


def test_dashboards_export_builds_the_settings_from_the_environment(tmp_path: Path) -> None:
    """The entry point reads OSTWATCH_ALERT_*, once, and what it read is what gets written."""
    result = CliRunner().invoke(
        main,
        ["dashboards", "export", str(tmp_path)],
        env={
            "OSTWATCH_ALERT_STOCK_WARNING_DAYS": "21",
            "OSTWATCH_ALERT_STOCK_CRITICAL_DAYS": "9.5",
        },
    )
    assert result.exit_code == 0, result.output
    alerting = yaml.safe_load((tmp_path / "alerting/ostwatch.yaml").read_text(encoding="utf-8"))
    conditions = [
        step["model"]["expression"]
        for rule in alerting["groups"][0]["rules"]
        for step in rule["data"]
        if step["refId"] == "B"
    ]
    assert conditions[:2] == ["$A < 21", "$A < 9.5"]


def settings_built(path: Path, root: Path = ROOT) -> list[str]:
    """``load(XSettings…)`` and ``XSettings(…)`` calls in a module, by line."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name == "load" and node.args and isinstance(node.args[0], ast.Name):
            name = node.args[0].id
        if name and name.endswith("Settings"):
            found.append(f"{path.relative_to(root)}:{node.lineno} {name}")
    return sorted(found, key=lambda call: int(call.split(":")[1].split()[0]))


def test_only_entry_points_build_settings() -> None:
    built = [
        call
        for package in PRODUCT
        for path in sorted((ROOT / package).rglob("*.py"))
        if path.relative_to(ROOT).as_posix() != "ostwatch/settings.py"
        and not path.relative_to(ROOT).as_posix().startswith(ENTRY_POINTS)
        for call in settings_built(path)
    ]
    assert built == []


def test_the_check_sees_a_module_that_loads_its_own_settings(tmp_path: Path) -> None:
    planted = tmp_path / "notify_cli.py"
    planted.write_text(
        "from ostwatch.settings import AlertSettings, NotifySettings, load\n"
        "def path() -> object:\n    return load(NotifySettings).state_path\n"
        "def alerts() -> object:\n    return AlertSettings()\n",
        encoding="utf-8",
    )
    assert settings_built(planted, tmp_path) == [
        "notify_cli.py:3 NotifySettings",
        "notify_cli.py:5 AlertSettings",
    ]
