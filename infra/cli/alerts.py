"""``alerts``: the alerts people act on, acknowledging them (through the one writer of
alerts: infra/application/alerts.py), and the state of their deliveries."""

from __future__ import annotations

import time
from pathlib import Path

import click

from infra.application.alerts import AckRequest, AlertsRequest
from infra.cli import common
from infra.cli.common import (
    UserError,
    data_dir_option,
    emit,
    emit_json,
    format_option,
    friendly_errors,
    request,
)
from infra.cli.report import ALERT_COLUMNS, show_rows
from ostwatch.settings import NotifySettings, load


@click.group(invoke_without_command=True)
@data_dir_option
@format_option
@click.option("--all", "show_all", is_flag=True, help="Resolved alerts too (default: open only).")
@click.option("--kind", "kinds", multiple=True, metavar="KIND", help="Only this kind (repeatable).")
@click.option("--facility", "facilities", multiple=True, metavar="ID", help="Only this facility.")
@click.pass_context
@friendly_errors
def alerts(
    ctx: click.Context,
    data_dir: Path,
    output_format: str,
    show_all: bool,
    kinds: tuple[str, ...],
    facilities: tuple[str, ...],
) -> None:
    """The alerts people act on: open ones first, by severity (`alerts ack ID` to acknowledge)."""
    if ctx.invoked_subcommand is not None:
        return
    asked = request(
        AlertsRequest,
        status=None if show_all else "open",
        kinds=kinds,
        facilities=facilities,
    )
    show_rows(
        data_dir,
        output_format,
        "alerts",
        lambda ops: ops.report_alerts(asked),
        "Cảnh báo / Alerts" + ("" if show_all else " — đang mở / open"),
        ALERT_COLUMNS,
    )


@alerts.command("ack")
@click.argument("alert_ids", nargs=-1, metavar="[ALERT_ID]...")
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    metavar="KIND",
    help="Every open alert of this kind, e.g. commune_notification (repeatable).",
)
@click.option(
    "--commune", "communes", multiple=True, metavar="CODE", help="Notices for this commune."
)
@click.option(
    "--facility", "facilities", multiple=True, metavar="ID", help="Alerts of this facility."
)
@click.option(
    "--before",
    metavar="DATE|TIME",
    help="Alerts raised before this local day (YYYY-MM-DD) or instant (RFC 3339).",
)
@click.option("--note", default="", help="Why, or what was done (kept with the acknowledgement).")
@data_dir_option
@format_option
@friendly_errors
def alerts_ack(
    alert_ids: tuple[str, ...],
    kinds: tuple[str, ...],
    communes: tuple[str, ...],
    facilities: tuple[str, ...],
    before: str | None,
    note: str,
    data_dir: Path,
    output_format: str,
) -> None:
    """Acknowledge alerts: those named by ALERT_ID, or every open, unacknowledged alert that
    matches all the filters given (one note for all). A commune notification or an incident
    is then resolved; a stock or deadline alert stays open until its condition clears, marked
    as acknowledged. E.g. after sending a commune its month's letter:
    `ostwatch alerts ack --kind commune_notification --commune 07216 --before 2024-04-01`.
    """
    asked = request(
        AckRequest,
        alert_ids=alert_ids,
        kinds=kinds,
        communes=communes,
        facilities=facilities,
        before=before,
        note=note,
    )
    with common.operations(data_dir) as ops:
        outcome = ops.alerts_ack(asked)
    if output_format == "json":
        emit_json(outcome.model_dump(mode="json"))
        return
    for change in outcome.changes[:20]:
        alert = change["alert"]
        click.echo(f"{alert['alert_id']}: {alert['status']} ({alert['kind']}, {alert['subject']})")
    count, already = outcome.acknowledged, outcome.already_acknowledged
    more = f" (and {already} acknowledged before)" if already else ""
    click.echo(f"Đã xác nhận {count} cảnh báo / {count} alert(s) acknowledged{more}")


@alerts.command("deliveries")
@data_dir_option
@format_option
@click.option(
    "--status",
    type=click.Choice(["pending", "sent", "failed"]),
    help="Only alerts with a delivery in this state.",
)
@click.option("--alert", "alert_id", metavar="ID", help="Only this alert.")
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True)
@friendly_errors
def alerts_deliveries(
    data_dir: Path, output_format: str, status: str | None, alert_id: str | None, limit: int
) -> None:
    """Delivery state per alert: each change, to whom, sent / pending / failed, attempts.

    Newest alerts first. Reads the delivery ledger (OSTWATCH_NOTIFY_STATE_PATH, default
    DATA_DIR/notify.sqlite) directly, with or without a running stack.
    """
    from infra.notify_cli import delivery_lines
    from streams.notify.ledger import delivery_report

    ledger = load(NotifySettings).state_file(data_dir)
    report = delivery_report(ledger, status=status, alert_id=alert_id, limit=limit)
    emit(report, output_format, "\n".join(delivery_lines(report)))


@alerts.command("redeliver")
@data_dir_option
@click.option("--alert", "alert_id", metavar="ID", help="Only this alert's deliveries.")
@format_option
@friendly_errors
def alerts_redeliver(data_dir: Path, alert_id: str | None, output_format: str) -> None:
    """Try failed deliveries again, after fixing their cause (a wrong address, a dead hook).

    A running worker picks them up within seconds, otherwise the next one to start.
    """
    from streams.notify.ledger import Ledger

    path = load(NotifySettings).state_file(data_dir)
    if not path.exists():
        raise UserError(f"no delivery state at {path} (has a worker delivered alerts here?)")
    ledger = Ledger(path)
    try:
        count = ledger.retry_failed(time.time(), alert_id)
    finally:
        ledger.close()
    emit(
        {"queued": count},
        output_format,
        f"{count} failed deliver{'y' if count == 1 else 'ies'} queued again",
    )


COMMANDS = (alerts,)
