"""``dashboards``: Grafana's dashboards and alert rules as code (export, push)."""

from __future__ import annotations

from pathlib import Path

import click

from infra.cli.common import (
    UserError,
    emit,
    format_option,
    friendly_errors,
    ignored_data_dir_option,
)
from ostwatch.settings import AlertSettings, load


@click.group()
def dashboards() -> None:
    """Grafana dashboards and alert rules as code (docs/operations.md)."""


@dashboards.command("export")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@format_option
@friendly_errors
@ignored_data_dir_option
def dashboards_export(directory: Path, output_format: str) -> None:
    """Write Grafana's provisioning files (data source, dashboards, alert rules) into DIRECTORY."""
    from dashboards.provisioning import export

    written = export(directory, load(AlertSettings))
    emit(
        {"written": [str(p) for p in written]},
        output_format,
        f"wrote {len(written)} provisioning files under {directory}",
    )


@dashboards.command("push")
@click.option(
    "--grafana-url",
    required=True,
    envvar="GRAFANA_URL",
    show_envvar=True,
    help="Grafana's base URL, e.g. https://grafana.example.org",
)
@click.option(
    "--token",
    required=True,
    envvar="GRAFANA_TOKEN",
    show_envvar=True,
    help="A Grafana service-account token with editor rights.",
)
@click.option(
    "--clickhouse-host",
    default="clickhouse",
    show_default=True,
    help="ClickHouse host for the data source, if Grafana does not have it yet.",
)
@click.option(
    "--viewer-password",
    envvar="OSTWATCH_VIEWER_PASSWORD",
    show_envvar=True,
    default=None,
    help="Password of the read-only ClickHouse user (to create the data source).",
)
@format_option
@friendly_errors
@ignored_data_dir_option
def dashboards_push(
    grafana_url: str,
    token: str,
    clickhouse_host: str,
    viewer_password: str | None,
    output_format: str,
) -> None:
    """Push the dashboards and alert rules into a running Grafana through its HTTP API."""
    from dataclasses import asdict

    from dashboards.push import PushError, push

    try:
        result = push(
            grafana_url,
            token,
            load(AlertSettings),
            clickhouse_host=clickhouse_host,
            viewer_password=viewer_password,
        )
    except PushError as exc:
        raise UserError(str(exc)) from exc
    emit(
        asdict(result),
        output_format,
        f"folder {result.folder}, data source {result.datasource}, "
        f"{len(result.dashboards)} dashboards, alert rules: {len(result.rules_created)} created, "
        f"{len(result.rules_updated)} updated",
    )


COMMANDS = (dashboards,)
