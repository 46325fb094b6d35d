"""``report …``: the reports of CONTRACT §5 and §6, as JSON, CSV or xlsx for programs and as
bilingual tables for people."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import orjson

from infra.application.alerts import AlertsRequest
from infra.application.common import Rows
from infra.application.reports import MonthlyRequest, NamesRequest, RejectedRequest, ReportRequest
from infra.cli import common
from infra.cli.common import (
    F,
    UserError,
    as_of_option,
    data_dir_option,
    emit_json,
    emit_rows,
    export_format_option,
    friendly_errors,
    request,
    write_output,
)
from schemas.labels import ALERT_KINDS, ALERT_STATUSES, PROGRAMMES, SEVERITIES, label_of

if TYPE_CHECKING:
    from infra.application.operations import Operations


@click.group()
def report() -> None:
    """Reports in event time (CONTRACT §3 and §5)."""


@report.command("rejected")
@data_dir_option
@export_format_option()
@as_of_option
@friendly_errors
def report_rejected(
    data_dir: Path, output_format: str, out: Path | None, as_of: str | None
) -> None:
    """Every rejected event: the line or event_id where known, and the reason."""
    asked = request(RejectedRequest, as_of=as_of)
    with common.operations(data_dir) as ops:
        rows = ops.rejected(asked).root
    if emit_rows(rows, "rejected", output_format, out):
        return
    from infra.tables import print_table

    print_table(
        "Sự kiện bị từ chối / Rejected events",
        ["line", "event_id", "facility_id", "reason"],
        rows,
    )


FACILITY_COLUMNS = [("facility_id", "Mã cơ sở / Facility"), ("facility_name", "Tên / Name")]


@dataclass(frozen=True)
class ReportView:
    """How a report is asked for and shown: its help, filters and table."""

    name: str
    summary: str
    title: str
    columns: list[tuple[str, str]]
    dated: bool = False
    item: bool = False
    # --by choices (the first is the default), and the column each adds to the table.
    by: tuple[tuple[str, tuple[str, str] | None], ...] = ()


REPORT_VIEWS = (
    ReportView(
        "stock",
        "Per facility and item: on hand at T, 14-day average daily use, days of supply.",
        "Tồn kho / Stock on hand",
        [
            *FACILITY_COLUMNS,
            ("item", "Mặt hàng / Item"),
            ("unit", "Đơn vị / Unit"),
            ("on_hand", "Tồn kho / On hand"),
            ("avg_daily_use", "Dùng TB/ngày / Avg daily use"),
            ("days_of_supply", "Đủ dùng (ngày) / Days of supply"),
        ],
        item=True,
    ),
    ReportView(
        "dispensing",
        "Per facility and local day: patients dosed, doses by mode, milligrams.",
        "Cấp phát thuốc / Dispensing",
        [
            *FACILITY_COLUMNS,
            ("date", "Ngày / Date"),
            ("patients_dosed", "Số người bệnh / Patients dosed"),
            ("observed_doses", "Uống tại chỗ / Observed"),
            ("take_home_handouts", "Cấp nhiều ngày / Take-home"),
            ("mg_observed", "mg tại chỗ / mg observed"),
            ("mg_take_home", "mg mang về / mg take-home"),
        ],
        dated=True,
    ),
    ReportView(
        "patients",
        "Per facility and programme: active patients (and those with take-home approval).",
        "Người bệnh đang điều trị / Active patients",
        [
            *FACILITY_COLUMNS,
            ("programme_label", "Chương trình / Programme"),
            ("active", "Đang điều trị / Active"),
            ("take_home_approved", "Được cấp nhiều ngày / Take-home approved"),
        ],
    ),
    ReportView(
        "tests",
        "Per facility and month: drug tests performed and positives per substance.",
        "Xét nghiệm ma túy / Drug tests",
        [
            *FACILITY_COLUMNS,
            ("month", "Tháng / Month"),
            ("tests", "Số test / Tests"),
            ("positive", "Dương tính / Positive"),
        ],
        dated=True,
        by=(("month", None), ("purpose", ("purpose", "Mục đích / Purpose"))),
    ),
    ReportView(
        "targets",
        "Per unit and year: each target beside its actual, rolled up over the units below.",
        "Chỉ tiêu / Targets",
        [
            *FACILITY_COLUMNS,
            ("year", "Năm / Year"),
            ("routine_target", "Thường quy: chỉ tiêu / Routine target"),
            ("routine_actual", "thực hiện / actual"),
            ("routine_pct", "%"),
            ("take_home_target", "Nhiều ngày: chỉ tiêu / Take-home target"),
            ("take_home_actual", "thực hiện / actual"),
            ("take_home_pct", "%"),
            ("community_detox_target", "Cai cộng đồng: chỉ tiêu / Community detox target"),
            ("community_detox_actual", "thực hiện / actual"),
            ("community_detox_pct", "%"),
        ],
    ),
)


ALERT_COLUMNS = [
    ("severity_label", "Mức độ / Severity"),
    ("status_label", "Trạng thái / Status"),
    ("kind_label", "Loại / Kind"),
    ("facility_id", "Mã cơ sở / Facility"),
    ("subject", "Đối tượng / Subject"),
    ("raised_local", "Phát sinh / Raised"),
    ("message_vi", "Nội dung / Message"),
    ("alert_id", "Mã cảnh báo / Alert id"),
]
ALERTS_VIEW = ReportView(
    "alerts",
    "Every alert (CONTRACT §4): open first, by severity. Without --as-of, as the live stream "
    "keeps them, deadlines judged against the current time; with --as-of, judged afresh "
    "from the events up to T.",
    "Cảnh báo / Alerts",
    ALERT_COLUMNS,
)


def scope_options(view: ReportView) -> Callable[[F], F]:
    """The filters every report takes, plus dates or item where they apply."""

    def decorate(func: F) -> F:
        options = [
            click.option(
                "--facility",
                "facilities",
                multiple=True,
                metavar="ID",
                help="Only this facility (repeatable).",
            ),
            click.option(
                "--under",
                multiple=True,
                metavar="ID",
                help="This unit and every facility below it in the registry (repeatable).",
            ),
            click.option(
                "--district", help="Only facilities of this district (as in the registry)."
            ),
            click.option(
                "--province", help="Only facilities of this province (as in the registry)."
            ),
        ]
        if view.dated:
            options += [
                click.option("--from", "date_from", metavar="YYYY-MM-DD", help="First local day."),
                click.option("--to", "date_to", metavar="YYYY-MM-DD", help="Last local day."),
            ]
        if view.item:
            options.append(click.option("--item", help="Only this item code."))
        if view.by:
            choices = [name for name, _ in view.by]
            options.append(
                click.option(
                    "--by",
                    type=click.Choice(choices),
                    default=choices[0],
                    show_default=True,
                    help="Rows per facility and "
                    + ", or per facility, month and ".join(choices)
                    + ".",
                )
            )
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


TARGET_KINDS = ("routine", "take_home", "community_detox")


def with_names(rows: list[dict[str, Any]], names: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows for a table: facility names, programme labels and target shares beside the codes."""
    from sinks.reports import percent

    facilities = names.get("facilities", {})
    shown = []
    for row in rows:
        extra = {
            "facility_name": facilities.get(row.get("facility_id"), ""),
            "programme_label": (
                label_of(PROGRAMMES, row["programme"]).text() if "programme" in row else None
            ),
        }
        if "alert_id" in row:
            extra |= alert_labels(row)
        if "year" in row:
            extra["year"] = str(row["year"])  # a year, not a number to group by thousands
        for kind in TARGET_KINDS:
            if f"{kind}_target" in row:
                extra[f"{kind}_pct"] = percent(row[f"{kind}_actual"], row[f"{kind}_target"])
        shown.append({**row, **extra})
    return shown


def alert_labels(row: dict[str, Any]) -> dict[str, str]:
    """Bilingual labels and a local time for one alert row."""
    from ostwatch.timeutil import LOCAL_TZ

    raised = datetime.fromisoformat(row["raised_at"]).astimezone(LOCAL_TZ)
    status = label_of(ALERT_STATUSES, row["status"]).text()
    if row.get("escalated"):
        status += " ↑"
    return {
        "severity_label": label_of(SEVERITIES, row["severity"]).text(),
        "status_label": status,
        "kind_label": label_of(ALERT_KINDS, row["kind"]).text(),
        "raised_local": raised.strftime("%d/%m/%Y %H:%M"),
    }


def add_report_command(view: ReportView) -> None:
    """Declare `ostwatch report <name>`: JSON for programs, a bilingual table for people."""

    @report.command(
        view.name,
        help=f"{view.summary}\n\nWithout --as-of, T is the latest "
        "occurred_at of any accepted event.",
    )
    @data_dir_option
    @export_format_option()
    @as_of_option
    @scope_options(view)
    @friendly_errors
    def command(
        data_dir: Path, output_format: str, out: Path | None, as_of: str | None, **filters: Any
    ) -> None:
        extra = dict(view.by).get(filters.get("by") or "")
        columns = view.columns if extra is None else [*view.columns[:3], extra, *view.columns[3:]]
        model = AlertsRequest if view.name == "alerts" else ReportRequest
        asked = request(model, as_of=as_of, **filters)
        show_rows(
            data_dir,
            output_format,
            view.name,
            lambda ops: getattr(ops, f"report_{view.name}")(asked),
            view.title + (f" — tính đến / as of {as_of}" if as_of else ""),
            columns,
            out=out,
        )


def show_rows(
    data_dir: Path,
    output_format: str,
    name: str,
    rows_of: Callable[[Operations], Rows],
    title: str,
    columns: list[tuple[str, str]],
    out: Path | None = None,
) -> None:
    """Ask for rows: JSON, CSV or xlsx for programs, a bilingual table (with the registry's
    names beside the codes) for people."""
    with common.operations(data_dir) as ops:
        rows = rows_of(ops).root
        names = ops.names(NamesRequest()).model_dump() if output_format == "table" else {}
    if emit_rows(rows, name, output_format, out):
        return
    from infra.tables import print_table

    print_table(title, columns, with_names(rows, names))


for _view in (*REPORT_VIEWS, ALERTS_VIEW):
    add_report_command(_view)


@report.command("monthly")
@data_dir_option
@click.option(
    "--period", required=True, metavar="YYYY-MM", help="The local month (Asia/Ho_Chi_Minh)."
)
@click.option(
    "--unit",
    metavar="ID",
    help="This unit and every facility below it (default: every top unit of the registry).",
)
@export_format_option("html")
@as_of_option
@friendly_errors
def report_monthly(
    data_dir: Path,
    period: str,
    unit: str | None,
    output_format: str,
    out: Path | None,
    as_of: str | None,
) -> None:
    """The month's figures a unit sends on (CONTRACT §6): patient flows per programme,
    dispensing and the stock ledger per item, tests per purpose, timeliness of the reports
    due that month — for the unit and every facility below it, each unit rolling up its own.

    csv writes one file per list into --out DIR; xlsx one sheet per list; html one
    printable A4 document with signature lines. Guide: docs/reports-monthly.md.
    """
    from infra.exports import monthly_csv_files, monthly_workbook
    from infra.monthly_doc import monthly_html

    asked = request(MonthlyRequest, period=period, unit=unit, as_of=as_of)
    with common.operations(data_dir) as ops:
        document = ops.report_monthly(asked).root
    if output_format == "json":
        if out is None:
            emit_json(document)
        else:
            text = orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n"
            write_output(text, out, "the monthly report")
    elif output_format == "csv":
        if out is None:
            raise UserError("--format csv writes one file per list: give --out DIRECTORY")
        out.mkdir(parents=True, exist_ok=True)
        for name, text in monthly_csv_files(document).items():
            (out / name).write_text(text, encoding="utf-8")
        click.echo(f"ostwatch: wrote one csv file per list to {out}", err=True)
    elif output_format == "xlsx":
        write_output(monthly_workbook(document), out, "the monthly report (xlsx)")
    elif output_format == "html":
        write_output(monthly_html(document), out, "the monthly report (html)")
    else:
        _print_monthly(document)


def _print_monthly(document: dict[str, Any]) -> None:
    """One bilingual table per list, unit names indented under their parents."""
    from infra.monthly_doc import COLUMNS
    from infra.tables import print_table
    from schemas.labels import LIST_TITLES

    names = {u["facility_id"]: "· " * u["depth"] + u["name"] for u in document["units"]}
    for name, fields in COLUMNS.items():
        vi, en = LIST_TITLES[name]
        columns = [("unit_name", "Đơn vị / Unit")] + [(f, f"{v} / {e}") for f, v, e in fields]
        rows = [{**row, "unit_name": names.get(row["facility_id"], "")} for row in document[name]]
        print_table(f"{vi} / {en} — {document['period']}", columns, rows)


COMMANDS = (report,)
