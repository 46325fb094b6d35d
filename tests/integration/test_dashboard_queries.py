"""Every panel's and alert rule's query on a simulated province in the real embedded ClickHouse:
it runs, returns the columns its panel expects, and is not empty; the numbers agree with
``ostwatch report``; the alerts panels read an empty alerts table and rows inserted here."""

from __future__ import annotations

import operator
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from dashboards.alert_rules import rules
from dashboards.catalog import DASHBOARDS, OPEN_ALERTS, STOCK, TARGETS, TIMELINESS, all_panels
from dashboards.model import VARIABLES, Panel
from dashboards.render import TimeRange, render
from ostwatch.settings import AlertSettings
from ostwatch.timeutil import LOCAL_TZ
from schemas.alerts import Alert, alert_id_for
from sinks.alert_store import AlertStore
from sinks.reports import Reports, Scope
from tests.support.simulated import SimulatedProvince, load_province

pytestmark = pytest.mark.integration
DEFAULTS = AlertSettings()


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatedProvince]:
    tmp = tmp_path_factory.mktemp("dash")
    province = load_province(tmp / "chdb", tmp)
    yield province
    province.harness.drop()


def variables(sim: SimulatedProvince) -> dict[str, list[str]]:
    """The variable chain as Grafana resolves it with "All" selected at every level."""
    chosen: dict[str, list[str]] = {}
    for variable in VARIABLES:
        sql = render(variable.sql(), chosen, sim.time_range())
        chosen[variable.name] = [str(row[0]) for row in sim.db.query_rows(sql)]
        assert chosen[variable.name], f"variable {variable.name} has no values"
    return chosen


def run(
    sim: SimulatedProvince, panel: Panel, time_range: TimeRange | None = None
) -> list[dict[str, Any]]:
    sql = render(panel.sql(DEFAULTS), variables(sim), time_range or sim.time_range())
    rows: list[dict[str, Any]] = sim.db.query_dicts(sql)
    return rows


def insert_alerts(sim: SimulatedProvince, rows: list[tuple[str, str, str, str]]) -> None:
    """Alerts stored the way the stream's engine stores them (``AlertStore.write``)."""
    now = datetime.now(UTC)
    alerts = [
        Alert(
            alert_id=alert_id_for(kind, facility, "MET10", str(index)),
            kind=kind,
            severity=severity,
            facility_id=facility,
            subject="MET10",
            raised_at=now,
            status=status,
            message=f"{kind} at {facility}",
            message_vi=f"{kind} tại {facility}",
        )
        for index, (kind, severity, facility, status) in enumerate(rows)
    ]
    AlertStore(sim.db).write([(1, alert) for alert in alerts], now)


def test_variable_chain_narrows(sim: SimulatedProvince) -> None:
    chosen = variables(sim)
    assert chosen["province"] == ["Bắc Giang"]
    one = render(
        VARIABLES[2].sql(),
        {"province": ["Bắc Giang"], "district": chosen["district"][:1]},
        sim.time_range(),
    )
    assert 0 < len(sim.db.query_rows(one)) < len(chosen["facility"])


@pytest.mark.parametrize(
    ("dashboard", "panel"), all_panels(), ids=lambda x: getattr(x, "key", getattr(x, "uid", ""))
)
def test_panel_query_runs_with_its_columns_and_is_not_empty(
    sim: SimulatedProvince, dashboard: Any, panel: Panel
) -> None:
    rows = run(sim, panel)
    assert rows, f"{dashboard.uid}/{panel.key} is empty on simulator data"
    assert list(rows[0]) == [c.name for c in panel.columns]


def test_stock_panel_equals_the_stock_report(sim: SimulatedProvince) -> None:
    report = Reports(sim.db, sim.harness.store.registry, "aggregates").stock(None, Scope())
    expected = {(r["facility_id"], r["item"]): r for r in report}
    rows = run(sim, STOCK)
    assert len(rows) == len(expected)
    for row in rows:
        want = expected[(row["facility_id"], row["item"])]
        assert row["on_hand"] == pytest.approx(round(want["on_hand"], 1), abs=0.051)
        assert row["avg_daily_use"] == pytest.approx(want["avg_daily_use"], abs=0.006)
        if want["days_of_supply"] is None:
            assert row["days_of_supply"] is None
        else:
            assert row["days_of_supply"] == pytest.approx(want["days_of_supply"], rel=0.01, abs=0.1)
    planted = [r for r in rows if r["status"] == "critical"]
    assert planted, "the simulator's starved dispensing point shows red"


def test_targets_panel_equals_the_targets_report(sim: SimulatedProvince) -> None:
    report = Reports(sim.db, sim.harness.store.registry, "aggregates").targets(None, Scope())
    rows = {r["facility_id"]: r for r in run(sim, TARGETS)}
    assert rows
    for want in report:
        got = rows[want["facility_id"]]
        for key in ("routine_actual", "take_home_actual", "community_detox_actual"):
            assert got[key] == want[key], (want["facility_id"], key)


def test_timeliness_on_the_due_day_and_after(sim: SimulatedProvince) -> None:
    def statuses(day: int) -> dict[str, int]:
        end = datetime(2024, 3, day, 12, 0, tzinfo=LOCAL_TZ)
        rows = run(sim, TIMELINESS, TimeRange(sim.time_range().start, end))
        assert {r["period"] for r in rows} == {"2024-02"}
        out: dict[str, int] = {}
        for r in rows:
            out[r["status"]] = out.get(r["status"], 0) + 1
        return out

    before = statuses(24)
    after = statuses(27)
    assert before.get("due_soon", 0) + before.get("submitted", 0) == sum(before.values())
    assert after.get("overdue", 0) + after.get("submitted", 0) + after.get(
        "submitted_late", 0
    ) == sum(after.values())
    assert after.get("submitted", 0) > 0


@pytest.mark.parametrize("rule", rules(DEFAULTS), ids=lambda r: r.uid)
def test_alert_rule_query_runs_with_labels_and_one_value(sim: SimulatedProvince, rule: Any) -> None:
    for day in ((2024, 3, 27), (2024, 4, 23), (2024, 4, 26)):
        end = datetime(*day, 12, 0, tzinfo=LOCAL_TZ)
        result = sim.db.query_dicts(render(rule.sql, {}, TimeRange(sim.time_range().start, end)))
        for row in result:
            assert list(row) == [*rule.labels, rule.value]
            assert isinstance(row[rule.value], float)


def rule_rows(sim: SimulatedProvince, uid: str, day: tuple[int, int, int]) -> list[dict[str, Any]]:
    rule = next(r for r in rules(DEFAULTS) if r.uid == uid)
    end = datetime(*day, 12, 0, tzinfo=LOCAL_TZ)
    rows: list[dict[str, Any]] = sim.db.query_dicts(
        render(rule.sql, {}, TimeRange(sim.time_range().start, end))
    )
    return rows


def test_deadline_rules_follow_the_engine(sim: SimulatedProvince) -> None:
    # February's reports precede the first event (March): judged by neither the engine nor Grafana.
    assert rule_rows(sim, "ostwatch-report-overdue", (2024, 3, 27)) == []
    # March's are due before 25 April; nothing for March was submitted by the run's end.
    assert rule_rows(sim, "ostwatch-report-due-soon", (2024, 4, 15)) == []
    soon = rule_rows(sim, "ostwatch-report-due-soon", (2024, 4, 23))
    overdue = rule_rows(sim, "ostwatch-report-overdue", (2024, 4, 25))
    assert soon and {(r["facility_id"], r["report_type"]) for r in soon} == {
        (r["facility_id"], r["report_type"]) for r in overdue
    }
    # The CDC's own report is due before the 27th: due soon on the 25th, when the others are late.
    later = rule_rows(sim, "ostwatch-report-due-soon", (2024, 4, 25))
    assert {r["report_type"] for r in later} == {"cdc_methadone_monthly"}


OPERATORS = {"<": operator.lt, "<=": operator.le, ">": operator.gt}


def fires(rule: Any, row: dict[str, Any]) -> bool:
    """Grafana's math condition (``$A <op> number``) on one row's value."""
    variable, op, number = rule.condition.split()
    assert variable == "$A"
    return bool(OPERATORS[op](row[rule.value], float(number)))


@pytest.mark.parametrize(
    ("uid", "status"),
    [("ostwatch-stock-low-critical", "critical"), ("ostwatch-stock-low-warning", "warning")],
)
def test_stock_rules_fire_where_the_panel_is_red_or_amber(
    sim: SimulatedProvince, uid: str, status: str
) -> None:
    panel = {(r["facility_id"], r["item"]): r for r in run(sim, STOCK)}
    rule = next(r for r in rules(DEFAULTS) if r.uid == uid)
    firing = {
        (r["facility_id"], r["item"]) for r in rule_rows(sim, uid, (2024, 4, 1)) if fires(rule, r)
    }
    coloured = {k for k, r in panel.items() if r["status"] == status and r["on_hand"] > 0}
    assert firing == coloured
    if status == "critical":
        assert firing, "the simulator's starved dispensing point"


# Last in the module: these empty the alerts table the engine filled.


def test_alert_panels_run_on_an_empty_alerts_table(sim: SimulatedProvince) -> None:
    sim.db.command("TRUNCATE TABLE alerts")
    by_severity = run(sim, DASHBOARDS[0].panels[2])
    assert by_severity == [
        {"severity": s, "open_alerts": 0} for s in ("critical", "warning", "info")
    ]
    assert run(sim, OPEN_ALERTS) == []


def test_alert_panels_count_open_alerts_only(sim: SimulatedProvince) -> None:
    sim.db.command("TRUNCATE TABLE alerts")
    insert_alerts(
        sim,
        [
            ("stock_low", "critical", "BG-DP-04-1", "open"),
            ("stock_low", "warning", "BG-TF-01", "open"),
            ("report_overdue", "critical", "BG-DHC-01", "resolved"),
        ],
    )
    counts = {r["severity"]: r["open_alerts"] for r in run(sim, DASHBOARDS[0].panels[2])}
    assert counts == {"critical": 1, "warning": 1, "info": 0}
    assert [r["severity"] for r in run(sim, OPEN_ALERTS)] == ["critical", "warning"]
