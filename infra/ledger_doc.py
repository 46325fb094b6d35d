"""The ledger as documents people file: CSV for spreadsheets, a printable HTML stock card.

The HTML is one self-contained page (no scripts, no external files), A4 portrait, one card
per item with a page break between, Vietnamese labels beside English, and the signature
block of a paper stock card (*thẻ kho*). It is built from the JSON the ``audit_ledger``
operation answers, so what is printed is exactly what programs read.
"""

from __future__ import annotations

import io
from datetime import datetime
from html import escape
from typing import Any

from ostwatch import csv_safe
from ostwatch.timeutil import LOCAL_TZ
from schemas.labels import LEDGER_LINES
from sinks.ledger import LINES, SUBTRACTED

UNIT_LABELS = {"ml": "ml", "tablet": "viên / tablet", "kit": "test / kit"}
CSV_COLUMNS = (
    "facility_id",
    "facility_name",
    "month",
    "item",
    "item_name",
    "unit",
    "opening_balance",
    *LINES,
    "closing_balance",
    "balanced",
    "stock_report_on_hand",
    "reconciles",
    "doses",
    "dose_mg",
    "tests",
    "counts",
)
SIGNATURES = (
    ("Người lập biểu", "Prepared by"),
    ("Thủ kho", "Storekeeper"),
    ("Thủ trưởng đơn vị", "Head of facility"),
)


def ledger_csv(document: dict[str, Any]) -> str:
    """One row per item; ``counts`` is the number of physical counts in the month."""
    out = io.StringIO()
    writer = csv_safe.dict_writer(out, CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for card in document["items"]:
        row = {
            "facility_id": document["facility_id"],
            "facility_name": document["facility_name"],
            "month": document["month"],
            **{name: card[name] for name in CSV_COLUMNS if name in card},
            "counts": len(card["counts"]),
        }
        writer.writerow(row)
    return out.getvalue()


def figure(value: float | None) -> str:
    """A quantity as printed on the card, the Vietnamese way (1.234,5): up to 6 decimals,
    no trailing zeros, so every figure is the exact one the JSON carries."""
    if value is None:
        return ""
    text = f"{value:,.6f}".rstrip("0").rstrip(".")
    text = "0" if text in ("-0", "") else text
    return text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")


def signature_block(signatures: tuple[tuple[str, str], ...]) -> str:
    """The date line and the signature blocks that close a Vietnamese official document."""
    blocks = "".join(
        f"<div><b>{escape(vi)}</b><br><small>{escape(en)}</small><br>"
        "<small>(Ký, ghi rõ họ tên / signature, full name)</small></div>"
        for vi, en in signatures
    )
    return (
        "<p class=sign-date>……………, ngày …… tháng …… năm ……… / date</p>\n"
        f"<div class=signatures>{blocks}</div>"
    )


def _signed(name: str, value: float) -> str:
    """A line's effect on stock, with its sign (received +, used −, adjustments as sent)."""
    effect = -value if name in SUBTRACTED else value
    if effect == 0:
        return "0"
    return ("+" if effect > 0 else "−") + figure(abs(effect))


def _local(text: str) -> str:
    return datetime.fromisoformat(text).astimezone(LOCAL_TZ).strftime("%d/%m/%Y %H:%M:%S")


def _card_html(document: dict[str, Any], card: dict[str, Any]) -> str:
    unit = UNIT_LABELS.get(card["unit"] or "", card["unit"] or "")
    per_unit = (
        f" · {figure(card['mg_per_unit'])} mg/{escape(card['unit'])}"
        if card.get("mg_per_unit")
        else ""
    )
    details = {
        "used_doses": f"{card['doses']} lượt / doses, {figure(card['dose_mg'])} mg",
        "used_tests": f"{card['tests']} lượt / tests",
        "count_differences": f"{len(card['counts'])} lần kiểm kê / counts",
    }
    lines = "\n".join(
        f"<tr><td>{escape(LEDGER_LINES[name].vi)}<br><small>{escape(LEDGER_LINES[name].en)}</small>"
        f"</td><td class=num>{_signed(name, card[name])}</td>"
        f"<td><small>{escape(details.get(name, ''))}</small></td></tr>"
        for name in LINES
    )
    counts = "\n".join(
        f"<tr><td>{_local(c['occurred_at'])}</td><td class=num>{figure(c['computed_on_hand'])}"
        f"</td><td class=num>{figure(c['counted'])}</td>"
        f"<td class=num>{_signed('count_differences', c['difference'])}</td>"
        f"<td><small class=mono>{escape(c['event_id'])}</small></td></tr>"
        for c in card["counts"]
    ) or (
        "<tr><td colspan=5><small>Không có kiểm kê trong tháng / "
        "No physical count this month</small></td></tr>"
    )
    place = " · ".join(
        part
        for part in (document["facility_id"], document.get("district"), document.get("province"))
        if part
    )
    reconciled = (
        "Khớp với báo cáo tồn kho / Agrees with the stock report"
        if card["reconciles"]
        else "KHÔNG KHỚP với báo cáo tồn kho / DOES NOT agree with the stock report"
    )
    return f"""
<section class=card>
<header>
  <div class=org>{escape(document["facility_name"])}<br>
    <small>{escape(place)}</small></div>
  <h1>THẺ KHO THUỐC GÂY NGHIỆN — BÁO CÁO ĐỐI CHIẾU THÁNG {escape(document["month"])}<br>
    <small>Narcotics stock card — monthly reconciliation, {escape(document["month"])}</small></h1>
  <p>Mặt hàng / Item: <b>{escape(card["item_name"])}</b> ({escape(card["item"])})
     · Đơn vị / Unit: <b>{escape(unit)}</b>{per_unit}<br>
     Kỳ / Period: {_local(document["period_from"])} – {_local(document["period_to"])}
     (giờ Việt Nam / Asia/Ho_Chi_Minh)</p>
</header>
<table>
<thead><tr><th>Nội dung / Line</th><th>Số lượng / Quantity ({escape(unit)})</th>
<th>Ghi chú / Notes</th></tr></thead>
<tbody>
<tr class=total><td>Tồn đầu kỳ<br><small>Opening balance</small></td>
<td class=num>{figure(card["opening_balance"])}</td><td></td></tr>
{lines}
<tr class=total><td>Tồn cuối kỳ<br><small>Closing balance</small></td>
<td class=num>{figure(card["closing_balance"])}</td>
<td><small>{escape(reconciled)}: {figure(card["stock_report_on_hand"])}</small></td></tr>
</tbody></table>
<h2>Kiểm kê thực tế / Physical counts</h2>
<table>
<thead><tr><th>Thời điểm / Time</th><th>Tồn tính toán / Computed</th>
<th>Đếm thực tế / Counted</th><th>Chênh lệch / Difference</th>
<th>Mã sự kiện / Event id</th></tr></thead>
<tbody>{counts}</tbody></table>
{signature_block(SIGNATURES)}
</section>"""


STYLE = """
@page { size: A4 portrait; margin: 14mm; }
body { font-family: "Times New Roman", "DejaVu Serif", serif; font-size: 11pt; color: #000; }
.card { page-break-after: always; }
.card:last-of-type { page-break-after: auto; }
.org { font-weight: bold; text-transform: uppercase; }
h1 { font-size: 13pt; text-align: center; margin: 10px 0; }
h2 { font-size: 11pt; margin: 14px 0 4px; }
table { width: 100%; border-collapse: collapse; }
th, td { border: 1px solid #000; padding: 3px 6px; vertical-align: top; }
th { background: #eee; }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
tr.total td { font-weight: bold; }
small { font-weight: normal; color: #333; }
.mono { font-family: "DejaVu Sans Mono", monospace; font-size: 8pt; }
.sign-date { text-align: right; margin-top: 18px; font-style: italic; }
.signatures { display: flex; justify-content: space-between; text-align: center;
  margin-top: 8px; }
.signatures div { width: 32%; min-height: 90px; }
footer { font-size: 8pt; color: #333; margin-top: 10px; }
"""


def ledger_html(document: dict[str, Any]) -> str:
    """The printable stock card(s) of one facility and month."""
    cards = "".join(_card_html(document, card) for card in document["items"]) or (
        "<p>Không có mặt hàng nào có phát sinh / No stock movements for this facility.</p>"
    )
    head = document.get("chain_head")
    anchor = (
        f"Chuỗi băm lưu trữ / archive hash chain: vị trí / position {head['position']}, "
        f"<span class=mono>{escape(head['hash'])}</span>"
        if head
        else "Chưa có chuỗi băm / no hash chain yet"
    )
    return f"""<!DOCTYPE html>
<html lang="vi"><head><meta charset="utf-8">
<title>Thẻ kho {escape(document["facility_id"])} {escape(document["month"])}</title>
<style>{STYLE}</style></head>
<body>{cards}
<footer>Lập bởi ostwatch lúc / generated by ostwatch at {escape(document["generated_at"])}.
{anchor}. Đối chiếu: tồn đầu kỳ + các dòng = tồn cuối kỳ / opening + lines = closing.</footer>
</body></html>
"""
