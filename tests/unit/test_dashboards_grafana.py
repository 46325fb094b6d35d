"""The dashboards and alert rules against Grafana's own models (grafana-foundation-sdk, the
Grafana 11.2 build): each document is parsed by the SDK and written back; anything the SDK
does not know (a misspelt key, an option the panel type does not have) or reads differently
is lost on the way and fails the test."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.alerting import Rule
from grafana_foundation_sdk.models.dashboard import Dashboard as SdkDashboard

from dashboards import provisioning
from dashboards.alert_rules import rule_json, rules
from dashboards.catalog import DASHBOARDS, all_panels
from dashboards.grafana import DATASOURCE_USER, all_dashboards, dashboard_json
from dashboards.model import STATUS_COLOURS, STATUS_MEANING
from dashboards.queries import query_names
from dashboards.render import RenderError, TimeRange, render
from ostwatch.settings import AlertSettings

register_default_plugins()
DEFAULTS = AlertSettings()


def lost_in_round_trip(original: Any, parsed: Any, path: str = "") -> list[str]:
    """Paths of ``original`` missing or different in ``parsed`` (which may add defaults)."""
    if isinstance(original, dict):
        if not isinstance(parsed, dict):
            return [f"{path}: {type(parsed).__name__} instead of an object"]
        problems = []
        for key, value in original.items():
            if key not in parsed:
                problems.append(f"{path}/{key}: unknown to Grafana's model")
            else:
                problems += lost_in_round_trip(value, parsed[key], f"{path}/{key}")
        return problems
    if isinstance(original, list):
        if not isinstance(parsed, list) or len(parsed) != len(original):
            return [f"{path}: list changed"]
        return [
            p
            for i, (a, b) in enumerate(zip(original, parsed, strict=True))
            for p in lost_in_round_trip(a, b, f"{path}[{i}]")
        ]
    return [] if original == parsed else [f"{path}: {original!r} read as {parsed!r}"]


def round_trip(model: Any, doc: dict[str, Any]) -> Any:
    return json.loads(json.dumps(model.from_json(doc), cls=JSONEncoder))


@pytest.mark.parametrize("dashboard", DASHBOARDS, ids=lambda d: d.uid)
def test_dashboard_survives_grafanas_model(dashboard: Any) -> None:
    doc = dashboard_json(dashboard, DEFAULTS)
    assert lost_in_round_trip(doc, round_trip(SdkDashboard, doc)) == []


def test_the_check_catches_a_misspelt_option() -> None:
    doc = dashboard_json(DASHBOARDS[0], DEFAULTS)
    doc["panels"][0]["gridPoss"] = doc["panels"][0].pop("gridPos")
    doc["panels"][1]["options"]["orientatoin"] = "horizontal"
    problems = lost_in_round_trip(doc, round_trip(SdkDashboard, doc))
    assert any("gridPoss" in p for p in problems) and any("orientatoin" in p for p in problems)


@pytest.mark.parametrize("rule", rules(DEFAULTS), ids=lambda r: r.uid)
def test_alert_rule_survives_grafanas_model(rule: Any) -> None:
    doc = rule_json(rule)
    assert lost_in_round_trip(doc, round_trip(Rule, doc)) == []


def test_dashboards_have_unique_panel_ids_and_fit_the_grid() -> None:
    for doc in all_dashboards(DEFAULTS).values():
        ids = [p["id"] for p in doc["panels"]]
        assert len(ids) == len(set(ids))
        for panel in doc["panels"]:
            assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
            assert " · " in panel["title"], "Vietnamese title, then English"
        names = [v["name"] for v in doc["templating"]["list"]]
        assert names == ["province", "district", "facility"]


def test_every_query_file_is_used() -> None:
    used = {p.query for _, p in all_panels()} | {
        f"var_{n}" for n in ("province", "district", "facility")
    }
    assert set(query_names()) == used


def test_repository_provisioning_equals_a_fresh_export() -> None:
    for relative, text in provisioning.files(DEFAULTS).items():
        committed = provisioning.REPOSITORY_COPY / relative
        assert committed.read_text(encoding="utf-8") == text, (
            f"{relative} is stale: run `ostwatch dashboards export dashboards/provisioning`"
        )
    datasource = yaml.safe_load(
        (provisioning.REPOSITORY_COPY / "datasources/ostwatch.yaml").read_text(encoding="utf-8")
    )["datasources"][0]
    assert datasource["type"] == "grafana-clickhouse-datasource"
    assert datasource["jsonData"]["username"] == DATASOURCE_USER == "ostwatch_viewer"
    assert datasource["secureJsonData"]["password"].startswith("$"), "from the environment"


def test_status_colours_mean_the_same_everywhere() -> None:
    assert STATUS_COLOURS["critical"].upper() == "#C4162A"
    for doc in all_dashboards(DEFAULTS).values():
        for panel in doc["panels"]:
            for override in panel["fieldConfig"]["overrides"]:
                for prop in override["properties"]:
                    if prop["id"] == "mappings":
                        for status, option in prop["value"][0]["options"].items():
                            assert option["color"] == STATUS_COLOURS[STATUS_MEANING[status]]
                    if prop["id"] == "thresholds":
                        colours = {s["color"] for s in prop["value"]["steps"]}
                        assert colours == {STATUS_COLOURS[k] for k in ("critical", "warning", "ok")}


# -- the renderer, against the plugin's documented expansions (pkg/macros/macros.go) ----------

RANGE = TimeRange(
    datetime(2024, 3, 24, 17, 0, tzinfo=UTC),
    datetime(2024, 3, 25, 17, 0, 30, 250000, tzinfo=UTC),
    timedelta(seconds=90),
)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("$__fromTime", "toDateTime(1711299600)"),
        ("$__toTime", "toDateTime(1711386030)"),
        ("$__toTime_ms", "fromUnixTimestamp64Milli(1711386030250)"),
        ("$__timeFilter(t)", "t >= toDateTime(1711299600) AND t <= toDateTime(1711386030)"),
        (
            "$__timeFilter_ms( t )",
            "t >= fromUnixTimestamp64Milli(1711299600000)"
            " AND t <= fromUnixTimestamp64Milli(1711386030250)",
        ),
        ("$__dateFilter(d)", "d >= toDate('2024-03-24') AND d <= toDate('2024-03-25')"),
        (
            "$__dt(d, t)",
            "(d >= toDate('2024-03-24') AND d <= toDate('2024-03-25'))"
            " AND (t >= toDateTime(1711299600) AND t <= toDateTime(1711386030))",
        ),
        ("$__timeInterval(t)", "toStartOfInterval(toDateTime(t), INTERVAL 90 second)"),
        (
            "$__timeInterval_ms(t)",
            "toStartOfInterval(toDateTime64(t, 3), INTERVAL 90000 millisecond)",
        ),
        ("$__interval_s", "90"),
        ("x IN (${facility:singlequote})", "x IN ('A','O\\'B')"),
        ("x = $province", "x = Bắc Giang"),
    ],
)
def test_macros_expand_as_the_plugin_does(sql: str, expected: str) -> None:
    variables = {"facility": ["A", "O'B"], "province": ["Bắc Giang"]}
    assert render(sql, variables, RANGE) == expected


@pytest.mark.parametrize(
    "sql", ["$__timeFilterr(t)", "${nope:singlequote}", "$__timeFilter(a, b)", "${facility:csv}"]
)
def test_unknown_macros_and_variables_fail(sql: str) -> None:
    with pytest.raises(RenderError):
        render(sql, {"facility": ["A"]}, RANGE)
