"""``ostwatch dashboards push``: dashboards and alert rules into a running Grafana through its
HTTP API (grafana-client): the folder, the ClickHouse data source if it is missing, every
dashboard (overwriting by uid) and every alert rule (created, or updated by uid) through the
alerting provisioning API. Idempotent: pushing twice leaves the same state.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from grafana_client import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException

from dashboards.alert_rules import rule_json, rules
from dashboards.grafana import (
    DATASOURCE_UID,
    FOLDER_TITLE,
    FOLDER_UID,
    all_dashboards,
    datasource_json,
)
from ostwatch.settings import AlertSettings

log = logging.getLogger(__name__)


class PushError(RuntimeError):
    """Grafana refused or could not be reached; the message says which step."""


@dataclass
class PushResult:
    folder: str = "existing"
    datasource: str = "existing"
    dashboards: list[str] = field(default_factory=list)
    rules_created: list[str] = field(default_factory=list)
    rules_updated: list[str] = field(default_factory=list)


def _exists(get: Callable[[], Any]) -> bool:
    try:
        get()
    except GrafanaClientError as exc:
        if exc.status_code == 404:
            return False
        raise
    return True


def push(
    grafana_url: str,
    token: str,
    alerts: AlertSettings,
    *,
    clickhouse_host: str = "clickhouse",
    viewer_password: str | None = None,
    timeout: float = 30.0,
) -> PushResult:
    api = GrafanaApi.from_url(grafana_url, credential=token, timeout=timeout)
    result = PushResult()
    alert_rules = rules(alerts)
    step = "folder"
    try:
        if not _exists(lambda: api.folder.get_folder(FOLDER_UID)):
            api.folder.create_folder(FOLDER_TITLE, uid=FOLDER_UID)
            result.folder = "created"
        step = "data source"
        if not _exists(lambda: api.datasource.get_datasource_by_uid(DATASOURCE_UID)):
            if viewer_password is None:
                raise PushError(
                    f"Grafana has no data source {DATASOURCE_UID!r}: set OSTWATCH_VIEWER_PASSWORD "
                    "(the read-only ClickHouse user's password) to create it"
                )
            source = datasource_json(clickhouse_host)
            source["secureJsonData"] = {"password": viewer_password}
            api.datasource.create_datasource(source)
            result.datasource = "created"
        for uid, dashboard in all_dashboards(alerts).items():
            step = f"dashboard {uid}"
            api.dashboard.update_dashboard(
                {
                    "dashboard": dashboard,
                    "folderUid": FOLDER_UID,
                    "overwrite": True,
                    "message": "ostwatch dashboards push",
                }
            )
            result.dashboards.append(uid)
        for rule in alert_rules:
            step = f"alert rule {rule.uid}"
            body = rule_json(rule)
            if _exists(functools.partial(api.alertingprovisioning.get_alertrule, rule.uid)):
                api.alertingprovisioning.update_alertrule(rule.uid, body)
                result.rules_updated.append(rule.uid)
            else:
                api.alertingprovisioning.create_alertrule(body)
                result.rules_created.append(rule.uid)
    except GrafanaException as exc:
        raise PushError(
            f"Grafana refused the {step}: HTTP {exc.status_code} {exc.message}"
        ) from exc
    except OSError as exc:
        raise PushError(f"cannot reach Grafana at {grafana_url} ({step}): {exc}") from exc
    log.info(
        "pushed to Grafana", extra={"dashboards": len(result.dashboards), "rules": len(alert_rules)}
    )
    return result
