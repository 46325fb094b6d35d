"""The monthly report as the document a CDC officer signs: one printable A4 HTML page per top
unit (Vietnamese headings with English beneath), built from the JSON the ``report_monthly``
operation answers, so what is signed is exactly what programs read.

Self-contained (no scripts, no external files), every value escaped, numbers written the
Vietnamese way (1.234,5), the unit's own row first in bold and the facilities below it
indented, and the signature block of a Vietnamese official report (*người lập biểu, trưởng
phòng/khoa, thủ trưởng đơn vị*).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from html import escape
from typing import Any

from infra.ledger_doc import STYLE as LEDGER_STYLE
from infra.ledger_doc import figure, signature_block
from ostwatch.timeutil import LOCAL_TZ
from schemas.labels import LIST_TITLES, OUTCOMES, PROGRAMMES, PURPOSES

SIGNATURES = (
    ("Người lập biểu", "Prepared by"),
    ("Trưởng phòng / khoa", "Head of department"),
    ("Thủ trưởng đơn vị", "Head of unit"),
)
# (field, Vietnamese header, English header) of each list's table, after the unit.
COLUMNS: Mapping[str, tuple[tuple[str, str, str], ...]] = {
    "patients": (
        ("programme", "Chương trình", "Programme"),
        ("active_start", "Đầu kỳ", "At start"),
        ("enrolled", "Thu dung mới", "Enrolled"),
        ("transferred_in", "Chuyển đến", "Transferred in"),
        ("transferred_out", "Chuyển đi", "Transferred out"),
        ("discharged", "Ra khỏi chương trình", "Discharged"),
        ("active_end", "Cuối kỳ", "At end"),
        ("take_home_end", "Nhiều ngày (cuối kỳ)", "Take-home at end"),
        ("enrolled_year", "Thu dung từ đầu năm", "Started this year"),
        ("completed_year", "Hoàn thành từ đầu năm", "Completed this year"),
    ),
    "dispensing": (
        ("item", "Thuốc", "Item"),
        ("patients_dosed", "Số người bệnh", "Patients dosed"),
        ("observed_doses", "Lượt uống tại chỗ", "Observed doses"),
        ("take_home_handouts", "Lượt cấp nhiều ngày", "Take-home handouts"),
        ("mg_observed", "mg tại chỗ", "mg observed"),
        ("mg_take_home", "mg mang về", "mg take-home"),
    ),
    "stock": (
        ("item", "Mặt hàng (đơn vị)", "Item (unit)"),
        ("opening", "Tồn đầu kỳ", "Opening"),
        ("received", "Nhập", "Received"),
        ("adjusted", "Điều chỉnh (±)", "Adjusted (±)"),
        ("used", "Sử dụng", "Used"),
        ("count_difference", "Chênh lệch kiểm kê (±)", "Count difference (±)"),
        ("closing", "Tồn cuối kỳ", "Closing"),
    ),
    "tests": (
        ("purpose", "Mục đích", "Purpose"),
        ("tests", "Số test", "Tests"),
        ("positive", "Dương tính", "Positive"),
    ),
    "timeliness": (
        ("report_type", "Báo cáo", "Report"),
        ("period", "Kỳ", "Period"),
        ("recipient_id", "Gửi", "To"),
        ("due", "Hạn (trước)", "Due before"),
        ("submitted_at", "Đã nộp", "Submitted"),
        ("on_time", "Đúng hạn", "On time"),
    ),
}
STYLE = (
    LEDGER_STYLE
    + """
.unit-report { page-break-after: always; }
.unit-report:last-of-type { page-break-after: auto; }
table { font-size: 9pt; margin-bottom: 6px; }
th { font-weight: bold; }
td.own { font-weight: bold; }
td.depth-1 { padding-left: 14px; } td.depth-2 { padding-left: 26px; }
td.depth-3 { padding-left: 38px; } td.depth-4 { padding-left: 50px; }
.identity { font-size: 8pt; color: #333; }
"""
)


def _local(text: str | None, *, with_time: bool = True) -> str:
    if not text:
        return ""
    instant = datetime.fromisoformat(text).astimezone(LOCAL_TZ)
    return instant.strftime("%d/%m/%Y %H:%M" if with_time else "%d/%m/%Y")


def _labelled(labels: Mapping[str, tuple[str, str]], code: str) -> str:
    vi, en = labels.get(code, (code, code))
    return f"{escape(vi)}<br><small>{escape(en)}</small>" if vi != en else escape(vi)


def _counts(values: Mapping[str, int], labels: Mapping[str, tuple[str, str]]) -> str:
    if not values:
        return "0"
    total = sum(values.values())
    parts = "; ".join(f"{escape(labels.get(k, (k, k))[0])} {v}" for k, v in values.items())
    return f"{total}<br><small>{parts}</small>"


def _cell(name: str, row: Mapping[str, Any]) -> str:
    """One table cell's HTML (escaped), numbers right-aligned."""
    value = row.get(name)
    if name == "programme":
        return f"<td>{_labelled(PROGRAMMES, str(value))}</td>"
    if name == "purpose":
        return f"<td>{_labelled(PURPOSES, str(value))}</td>"
    if name == "discharged":
        return f"<td class=num>{_counts(value or {}, OUTCOMES)}</td>"
    if name == "positive":
        return f"<td>{_counts(value or {}, {})}</td>"
    if name == "item" and row.get("unit"):
        return f"<td>{escape(str(value))} ({escape(str(row['unit']))})</td>"
    if name in ("due", "submitted_at"):
        return f"<td>{_local(value)}</td>"
    if name == "on_time":
        shown = {True: "Đúng hạn / on time", False: "Trễ hạn / late", None: "Chưa nộp / not yet"}
        return f"<td>{shown[value]}</td>"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"<td>{escape('' if value is None else str(value))}</td>"
    return f"<td class=num>{figure(value)}</td>"


def _table(
    name: str,
    rows: Sequence[Mapping[str, Any]],
    units: Mapping[str, Mapping[str, Any]],
    top: str,
) -> str:
    vi, en = LIST_TITLES[name]
    head = "".join(
        f"<th>{escape(col_vi)}<br><small>{escape(col_en)}</small></th>"
        for _, col_vi, col_en in COLUMNS[name]
    )
    body = []
    for row in rows:
        unit = units.get(row["facility_id"], {})
        depth = int(unit.get("depth", 0))
        own = " own" if row["facility_id"] == top else ""
        name_html = escape(str(unit.get("name", row["facility_id"])))
        label = f"{name_html}<br><small>{escape(row['facility_id'])}</small>"
        cells = "".join(_cell(field, row) for field, _, _ in COLUMNS[name])
        body.append(f"<tr><td class='depth-{min(depth, 4)}{own}'>{label}</td>{cells}</tr>")
    rows_html = "\n".join(body) or (
        f"<tr><td colspan={len(COLUMNS[name]) + 1}><small>Không có số liệu / no figures"
        "</small></td></tr>"
    )
    return f"""
<h2>{escape(vi)} <small>/ {escape(en)}</small></h2>
<table>
<thead><tr><th>Đơn vị<br><small>Unit</small></th>{head}</tr></thead>
<tbody>
{rows_html}
</tbody></table>"""


def _subtree(document: Mapping[str, Any], top: str) -> set[str]:
    """``top`` and the units listed after it deeper than it (the document is in tree order)."""
    units = document["units"]
    start = next(i for i, u in enumerate(units) if u["facility_id"] == top)
    found = {top}
    for unit in units[start + 1 :]:
        if unit["depth"] <= units[start]["depth"]:
            break
        found.add(unit["facility_id"])
    return found


def _unit_report(document: Mapping[str, Any], top: Mapping[str, Any]) -> str:
    units = {unit["facility_id"]: unit for unit in document["units"]}
    covered = _subtree(document, top["facility_id"])
    month = datetime.fromisoformat(document["from"]).astimezone(LOCAL_TZ)
    tables = "".join(
        _table(
            name,
            [r for r in document[name] if r["facility_id"] in covered],
            units,
            top["facility_id"],
        )
        for name in COLUMNS
    )
    return f"""
<section class=unit-report>
<header>
  <div class=org>{escape(top["name"])}<br><small>{escape(top["facility_id"])}</small></div>
  <h1>BÁO CÁO KẾT QUẢ THÁNG {month:%m/%Y}<br>
    <small>Monthly report, {month:%B %Y}</small></h1>
  <p>Kỳ báo cáo / Period: {_local(document["from"])} – {_local(document["to"])}
     (giờ Việt Nam / Asia/Ho_Chi_Minh). Số liệu tính đến / figures as of:
     {_local(document["as_of"]) or "—"}</p>
</header>
{tables}
<p class=identity>Đầu kỳ + thu dung + chuyển đến − chuyển đi − ra khỏi chương trình = cuối kỳ;
tồn đầu kỳ + nhập + điều chỉnh − sử dụng + chênh lệch kiểm kê = tồn cuối kỳ. /
At start + enrolled + transferred in − transferred out − discharged = at end; opening +
received + adjusted − used + count difference = closing.</p>
{signature_block(SIGNATURES)}
</section>"""


def monthly_html(document: Mapping[str, Any], now: Callable[[], datetime] | None = None) -> str:
    """The printable monthly report: one A4 section per top unit, signature lines in each."""
    tops = [unit for unit in document["units"] if unit["depth"] == 0]
    sections = "".join(_unit_report(document, top) for top in tops) or (
        "<p>Không có đơn vị nào / no unit in the registry.</p>"
    )
    generated = (now or (lambda: datetime.now(LOCAL_TZ)))().isoformat(timespec="seconds")
    title = " · ".join(top["name"] for top in tops[:3]) + (" …" if len(tops) > 3 else "")
    return f"""<!DOCTYPE html>
<html lang="vi"><head><meta charset="utf-8">
<title>Báo cáo tháng {escape(document["period"])} — {escape(title)}</title>
<style>{STYLE}</style></head>
<body>{sections}
<footer>Lập bởi ostwatch lúc / generated by ostwatch at {escape(generated)}.</footer>
</body></html>
"""
