"""Grafana alert rules for stock and deadlines (issue 4 item 7), over the ClickHouse data source.

Each rule's query is a dashboard query with every facility in scope, narrowed to the label
columns (strings: which facility, item or report) and one number, so Grafana raises one alert
instance per row: the same conditions the stream's alert engine raises (CONTRACT §4), seen
natively in Grafana. Deadlines are judged at ``$__toTime``, which is the evaluation time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dashboards.grafana import DATASOURCE_UID, FOLDER_UID, target
from dashboards.queries import BASE_FRAGMENTS, build_sql
from ostwatch.settings import AlertSettings

RULE_GROUP = "ostwatch"
EVALUATE_EVERY = "1m"
EXPR = {"type": "__expr__", "uid": "__expr__"}


@dataclass(frozen=True)
class AlertRule:
    uid: str
    kind: str
    severity: str
    title_vi: str
    title_en: str
    sql: str  # ClickHouse SQL: string label columns and one numeric value column
    labels: tuple[str, ...]
    value: str
    condition: str  # a Grafana math expression over $A
    pending: str = "5m"

    @property
    def title(self) -> str:
        return f"{self.title_vi} · {self.title_en}"


def _stock(alerts: AlertSettings, columns: str, where: str) -> str:
    return (
        f"SELECT facility_id, item, {columns} "  # noqa: S608 - fixed SQL
        f"FROM ({build_sql('stock_position', alerts, 'all')}) WHERE {where}"
    )


# Like the stream's engine, judge only periods that end on or after the first accepted event's
# local day (whatever their frequency), and none that ended before its reporter's live_from
# (history, CONTRACT §2).
FIRST_DAY = "toDate((SELECT min(earliest_occurred_at) FROM archive_bounds), 'Asia/Ho_Chi_Minh')"


def _reports(alerts: AlertSettings, status: str) -> str:
    return (
        "SELECT r.facility_id AS facility_id, r.report_type AS report_type, "  # noqa: S608
        f"toFloat64(1) AS reports FROM ({build_sql('timeliness', alerts, 'all')}) AS r "
        f"INNER JOIN {BASE_FRAGMENTS['facilities']} AS f ON f.facility_id = r.facility_id "
        f"WHERE r.status = '{status}' AND r.period_end >= {FIRST_DAY} "
        "AND (f.live_from IS NULL OR r.period_end >= f.live_from)"
    )


def rules(alerts: AlertSettings) -> tuple[AlertRule, ...]:
    """The rules, with the thresholds of the alert settings the entry point built."""
    warning, critical = alerts.stock_warning_days, alerts.stock_critical_days
    return (
        AlertRule(
            "ostwatch-stock-low-warning",
            "stock_low",
            "warning",
            f"Thuốc sắp hết (dưới {warning:g} ngày)",
            f"Stock low (under {warning:g} days of supply)",
            _stock(
                alerts,
                "toFloat64(days_of_supply) AS days_of_supply",
                f"days_of_supply IS NOT NULL AND days_of_supply >= {critical:g}",
            ),
            ("facility_id", "item"),
            "days_of_supply",
            f"$A < {warning:g}",
        ),
        AlertRule(
            "ostwatch-stock-low-critical",
            "stock_low",
            "critical",
            f"Thuốc sắp hết (dưới {critical:g} ngày)",
            f"Stock low (under {critical:g} days of supply)",
            _stock(
                alerts,
                "toFloat64(days_of_supply) AS days_of_supply",
                "days_of_supply IS NOT NULL AND on_hand > 0",
            ),
            ("facility_id", "item"),
            "days_of_supply",
            f"$A < {critical:g}",
        ),
        AlertRule(
            "ostwatch-stock-out",
            "stock_out",
            "critical",
            "Hết thuốc",
            "Stock out",
            _stock(alerts, "toFloat64(on_hand) AS on_hand", "1"),
            ("facility_id", "item"),
            "on_hand",
            "$A <= 0",
            pending="0s",
        ),
        AlertRule(
            "ostwatch-report-due-soon",
            "report_due_soon",
            "warning",
            "Báo cáo sắp đến hạn",
            "Report due soon",
            _reports(alerts, "due_soon"),
            ("facility_id", "report_type"),
            "reports",
            "$A > 0",
            pending="0s",
        ),
        AlertRule(
            "ostwatch-report-overdue",
            "report_overdue",
            "critical",
            "Báo cáo quá hạn",
            "Report overdue",
            _reports(alerts, "overdue"),
            ("facility_id", "report_type"),
            "reports",
            "$A > 0",
            pending="0s",
        ),
    )


def rule_json(rule: AlertRule) -> dict[str, Any]:
    """The rule as Grafana's alerting provisioning API takes it (POST …/alert-rules)."""
    summary = {
        "stock_low": "{{ $labels.facility_id }} {{ $labels.item }}: {{ $values.A }} ngày · days",
        "stock_out": "{{ $labels.facility_id }} {{ $labels.item }}: hết thuốc · out of stock",
        "report_due_soon": "{{ $labels.facility_id }}: {{ $labels.report_type }}",
        "report_overdue": "{{ $labels.facility_id }}: {{ $labels.report_type }}",
    }[rule.kind]
    return {
        "uid": rule.uid,
        "title": rule.title,
        "orgID": 1,
        "folderUID": FOLDER_UID,
        "ruleGroup": RULE_GROUP,
        "condition": "B",
        "data": [
            {
                "refId": "A",
                "queryType": "table",
                "relativeTimeRange": {"from": 600, "to": 0},
                "datasourceUid": DATASOURCE_UID,
                "model": {**target(rule.sql), "intervalMs": 60000, "maxDataPoints": 43200},
            },
            {
                "refId": "B",
                "queryType": "",
                "relativeTimeRange": {"from": 0, "to": 0},
                "datasourceUid": "__expr__",
                "model": {
                    "refId": "B",
                    "type": "math",
                    "expression": rule.condition,
                    "datasource": EXPR,
                },
            },
        ],
        "noDataState": "OK",
        "execErrState": "Error",
        "for": rule.pending,
        "labels": {"kind": rule.kind, "severity": rule.severity, "source": "grafana"},
        "annotations": {"summary": summary, "description": rule.title},
        "isPaused": False,
    }


def provisioning_json(alerts: AlertSettings) -> dict[str, Any]:
    """The alerting provisioning file (``provisioning/alerting/ostwatch.yaml``)."""
    api_only = ("orgID", "folderUID", "ruleGroup")
    return {
        "apiVersion": 1,
        "groups": [
            {
                "orgId": 1,
                "name": RULE_GROUP,
                "folder": FOLDER_UID,
                "interval": EVALUATE_EVERY,
                "rules": [
                    {k: v for k, v in rule_json(r).items() if k not in api_only}
                    for r in rules(alerts)
                ],
            }
        ],
    }
