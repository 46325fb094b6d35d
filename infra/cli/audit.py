"""``audit``: what an inspector asks for — the narcotics ledger of a month, and proof that
no archived event was altered."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import orjson

from infra.application.audit import ChainVerifyRequest, LedgerRequest
from infra.cli import common
from infra.cli.common import (
    UserError,
    data_dir_option,
    emit,
    format_option,
    friendly_errors,
    request,
)


@click.group()
def audit() -> None:
    """What an inspector asks for: the narcotics ledger, and proof that nothing was altered."""


@audit.command("ledger")
@data_dir_option
@click.option("--facility", required=True, metavar="ID", help="The facility (registry id).")
@click.option("--month", required=True, metavar="YYYY-MM", help="Local month (Asia/Ho_Chi_Minh).")
@click.option("--item", help="Only this item code (default: every item with stock events).")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json", "csv", "html"]),
    default="table",
    show_default=True,
    help="json/csv for programs, html for a printable stock card, table for a quick look.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write the document to this file instead of stdout.",
)
@friendly_errors
def audit_ledger(
    data_dir: Path,
    facility: str,
    month: str,
    item: str | None,
    output_format: str,
    out: Path | None,
) -> None:
    """Stock card per item for a month: opening, received, used, losses by reason,
    transfers, counts and their differences, closing — reconciled with `report stock`.

    opening + received − used by doses − used by tests + adjustments (signed as sent)
    + count differences = closing, exactly; "reconciles" checks the closing against
    `report stock --as-of` the month's last instant.
    """
    from infra.ledger_doc import ledger_csv, ledger_html

    asked = request(LedgerRequest, facility=facility, month=month, item=item)
    with common.operations(data_dir) as ops:
        document = ops.audit_ledger(asked).root
    if output_format == "json":
        text = orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n"
    elif output_format == "csv":
        text = ledger_csv(document)
    elif output_format == "html":
        text = ledger_html(document)
    else:
        _print_ledger(document)
        return
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        click.echo(f"ostwatch: wrote {out}", err=True)
    unreconciled = [card["item"] for card in document["items"] if not card["reconciles"]]
    if unreconciled:
        raise UserError(
            f"ledger does not agree with the stock report for {', '.join(unreconciled)} "
            "(run `ostwatch replay --verify`)"
        )


def _print_ledger(document: dict[str, Any]) -> None:
    """One small table per item: the card's lines top to bottom, as on paper."""
    from infra.tables import print_table
    from schemas.labels import LEDGER_LINES
    from sinks.ledger import LINES, SUBTRACTED

    for card in document["items"]:
        rows = [
            {
                "line": LEDGER_LINES[name].text(),
                "quantity": 0.0 - card[name] if name in SUBTRACTED else card[name],  # never -0
            }
            for name in ("opening_balance", *LINES, "closing_balance")
        ]
        agrees = "khớp / agrees" if card["reconciles"] else "KHÔNG KHỚP / DOES NOT AGREE"
        print_table(
            f"Thẻ kho / Stock card — {document['facility_name']} ({document['facility_id']}), "
            f"{document['month']}: {card['item_name']} ({card['unit']}); "
            f"báo cáo tồn kho / stock report {card['stock_report_on_hand']}: {agrees}",
            [("line", "Nội dung / Line"), ("quantity", "Số lượng / Quantity (±)")],
            rows,
        )


@audit.command("verify")
@data_dir_option
@format_option
@click.option(
    "--facility",
    "facilities",
    multiple=True,
    metavar="ID",
    help="Only this facility's chain (repeatable; default: every facility).",
)
@friendly_errors
def audit_verify(data_dir: Path, output_format: str, facilities: tuple[str, ...]) -> None:
    """Recompute the archive's hash chains; name every changed, deleted or inserted event.

    Exits 1 when anything was altered. The chain heads printed are worth writing down:
    a chain rewritten from scratch would end in another head.
    """
    asked = request(ChainVerifyRequest, facilities=facilities)
    with common.operations(data_dir) as ops:
        result = ops.audit_verify(asked).root
    emit(result, output_format, lambda: _print_verification(result))
    if not result["intact"]:
        findings = result["findings"]
        first = findings[0]
        where = (
            "(not in the chain)"
            if first["position"] is None
            else f"at chain position {first['position']}"
        )
        raise UserError(
            f"archive altered: {len(findings)} finding(s), first {first['problem']} "
            f"event {first['event_id']} of {first['facility_id']} {where}"
        )


def _print_verification(result: dict[str, Any]) -> None:
    from infra.tables import print_table

    rate = result["events_per_s"]
    click.echo(
        f"{result['events']} archived events, {result['chain_rows']} chain links, "
        f"{result['facilities']} facilities, {result['seconds']} s"
        + (f" ({rate:,} events/s)" if rate else "")
    )
    if result["findings"]:
        print_table(
            "Bất thường / Findings",
            [
                ("facility_id", "Mã cơ sở / Facility"),
                ("position", "Vị trí / Position"),
                ("event_id", "Mã sự kiện / Event id"),
                ("problem", "Lỗi / Problem"),
                ("detail", "Chi tiết / Detail"),
            ],
            result["findings"],
        )
    else:
        click.echo("Nguyên vẹn / intact: no archived event was changed, deleted or inserted")
    print_table(
        "Đầu chuỗi / Chain heads",
        [
            ("facility_id", "Mã cơ sở / Facility"),
            ("length", "Số sự kiện / Events"),
            ("head_hash", "Băm đầu chuỗi / Head hash"),
            ("repaired_links", "Nối bù khi khởi động / Chained at start"),
        ],
        result["heads"],
    )


COMMANDS = (audit,)
