"""Letters to communes as documents people send: printable HTML, CSV, JSON — and read back.

``ostwatch notices`` answers one letter per commune of residence and month (the ``notices``
operation, infra/application/alerts.py): every event the commune's People's Committee must be
told of (seed 001; CONTRACT §4), with the facility, the local date and the patient's pseudonymous
reference. The CSV and JSON forms are self-describing, so the facility's ``notices resolve``
reads them back and adds the names from its own register (``producers.commune_letters``);
the HTML is what is printed, signed and sent. Vietnamese first, English beside.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from html import escape
from typing import Any

import orjson

from infra.ledger_doc import STYLE as LEDGER_STYLE
from ostwatch import csv_safe
from schemas.alerts import LETTER_DOCUMENT, LETTER_VERSION
from schemas.labels import PURPOSES, label_of

NOTICE_LABELS: dict[str, tuple[str, str]] = {
    "enrolled": ("Bắt đầu điều trị", "Started treatment"),
    "violation": ("Vi phạm quy định điều trị", "Violated treatment rules"),
    "self_terminated": ("Tự ý chấm dứt điều trị", "Self-terminated treatment"),
    "completed": ("Hoàn thành điều trị", "Completed treatment"),
    "positive_test": ("Xét nghiệm dương tính với ma túy", "Tested positive for drugs"),
}
REASON_LABELS: dict[str, tuple[str, str]] = {
    "missed_doses": ("Bỏ liều", "missed doses"),
    "positive_test": ("Xét nghiệm dương tính", "positive test"),
    "diversion": ("Chuyển thuốc cho người khác", "diversion"),
    "behaviour": ("Hành vi", "behaviour"),
    "other": ("Lý do khác", "other"),
}
# One row per line of a letter; a resolved letter adds the register's columns after these.
CSV_COLUMNS = (
    "commune",
    "commune_name",
    "month",
    "date",
    "time",
    "facility_id",
    "facility_name",
    "notice",
    "notice_vi",
    "notice_en",
    "reason",
    "purpose",
    "positive",
    "patient_ref",
    "alert_id",
    "event_id",
    "occurred_at",
)
# Read when present: letters written before the issuer was a column still read back.
ISSUER_COLUMN = "issuer"
# The facility register's columns a resolved letter may add, headed for the staff who read it
# (Vietnamese first, like the letter's other columns); any other column keeps its own name.
REGISTER_LABELS: dict[str, tuple[str, str]] = {
    "full_name": ("Họ và tên", "Full name"),
    "address": ("Địa chỉ", "Address"),
    "phone": ("Số điện thoại", "Phone"),
    "date_of_birth": ("Ngày sinh", "Date of birth"),
    "national_id": ("Số định danh cá nhân", "National ID"),
    "clinic_number": ("Mã số điều trị", "Clinic number"),
}
SIGNATURES = (("Người lập", "Prepared by"), ("Thủ trưởng đơn vị", "Head of unit"))


class LetterError(ValueError):
    """A file that is not a letter ``ostwatch notices`` wrote (the message says why)."""


def with_communes(
    document: dict[str, Any], asked: Sequence[str], names: Mapping[str, str]
) -> dict[str, Any]:
    """The letters, one for each commune asked for even with nothing to tell (a commune told
    "nothing this month" knows it was not forgotten), each with its name where known."""
    letters = {letter["commune"]: letter for letter in document["letters"]}
    for commune in asked:
        letters.setdefault(commune, {"commune": commune, "lines": []})
    ordered = [letters[code] for code in sorted(letters)]
    for letter in ordered:
        letter["commune_name"] = names.get(letter["commune"], letter.get("commune_name", ""))
    return {**document, "letters": ordered}


def detail(line: Mapping[str, Any]) -> tuple[str, str]:
    """The line's particulars (Vietnamese, English): a violation's reason, a test's purpose
    and the substances found."""
    if line.get("notice") == "violation" and line.get("reason"):
        reason = str(line["reason"])
        return REASON_LABELS.get(reason, (reason, reason))
    if line.get("notice") == "positive_test":
        purpose = str(line.get("purpose") or "")
        vi, en = label_of(PURPOSES, purpose)
        en = en.lower()  # inside a sentence
        found = ", ".join(line.get("positive") or ())
        return f"{vi}: {found}", f"{en}: {found}"
    return "", ""


def _labelled(line: Mapping[str, Any]) -> dict[str, Any]:
    code = str(line.get("notice") or "")
    vi, en = NOTICE_LABELS.get(code, (code, code))
    return {**line, "notice_vi": vi, "notice_en": en}


def letters_json(document: Mapping[str, Any]) -> bytes:
    """The document as programs read it, each line with its labels."""
    labelled = {
        **document,
        "letters": [
            {**letter, "lines": [_labelled(line) for line in letter["lines"]]}
            for letter in document["letters"]
        ],
    }
    return orjson.dumps(labelled, option=orjson.OPT_INDENT_2) + b"\n"


def register_label(column: str) -> str:
    """A register column's CSV header: Vietnamese / English (the column's own name when it
    is not one of ``REGISTER_LABELS``)."""
    vi, en = REGISTER_LABELS.get(column, (column, ""))
    return f"{vi} / {en}" if en else vi


def _register_head(column: str) -> str:
    """A register column's header in the printed letter, English beneath."""
    vi, en = REGISTER_LABELS.get(column, (column, ""))
    return f"<th>{escape(vi)}" + (f"<br><small>{escape(en)}</small>" if en else "") + "</th>"


def letters_csv(document: Mapping[str, Any]) -> str:
    """One row per line, every letter of the document, with its issuer (a resolved one: the
    register's columns too, under bilingual headers). Read back by ``read_letter``."""
    extra = list(document.get("register_columns", ()))
    columns = (*CSV_COLUMNS, ISSUER_COLUMN)
    out = io.StringIO()
    writer = csv_safe.writer(out, lineterminator="\n")
    writer.writerow([*columns, *(register_label(column) for column in extra)])
    for letter in document["letters"]:
        for line in letter["lines"]:
            row = _labelled(line) | {
                "commune": letter["commune"],
                "commune_name": letter.get("commune_name", ""),
                "month": document["month"],
                "positive": ";".join(line.get("positive") or ()),
                ISSUER_COLUMN: document.get("issuer") or "",
            }
            register = line.get("register") or {}
            writer.writerow(
                [*(row.get(name, "") for name in columns), *(register.get(c, "") for c in extra)]
            )
    return out.getvalue()


def read_letter(text: str) -> dict[str, Any]:
    """A letter written by ``ostwatch notices`` as JSON or CSV, back as its document."""
    if text.lstrip().startswith("{"):
        try:
            document = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise LetterError(f"not JSON: {exc}") from None
        if not isinstance(document, dict) or document.get("document") != LETTER_DOCUMENT:
            raise LetterError(f'not a letter to communes (no "document": "{LETTER_DOCUMENT}")')
        if document.get("version") != LETTER_VERSION:
            raise LetterError(f"letter version {document.get('version')!r} is not {LETTER_VERSION}")
        return document
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff")))
    missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or ())]
    if missing:
        raise LetterError(
            "not a letter to communes: write it with `ostwatch notices --format csv` or json "
            f"(missing column(s) {', '.join(missing)})"
        )
    letters: dict[str, dict[str, Any]] = {}
    months = set()
    issuer = ""
    for quoted in reader:
        row = {name: csv_safe.plain_cell(value or "") for name, value in quoted.items()}
        months.add(row["month"])
        issuer = issuer or row.get(ISSUER_COLUMN, "")
        letter = letters.setdefault(
            row["commune"],
            {"commune": row["commune"], "commune_name": row["commune_name"], "lines": []},
        )
        line: dict[str, Any] = {
            name: row[name] for name in CSV_COLUMNS if name not in _LETTER_LEVEL
        }
        line["positive"] = [s for s in row["positive"].split(";") if s]
        letter["lines"].append(line)
    if len(months) > 1:
        raise LetterError(f"one month per letter file, this one has {', '.join(sorted(months))}")
    return {
        "document": LETTER_DOCUMENT,
        "version": LETTER_VERSION,
        "month": months.pop() if months else "",
        "issuer": issuer,
        "letters": list(letters.values()),
    }


# Columns that belong to the letter (or are labels), not to its lines.
_LETTER_LEVEL = frozenset({"commune_name", "month", "notice_vi", "notice_en"})


def _day(text: str) -> str:
    return date.fromisoformat(text).strftime("%d/%m/%Y") if text else ""


def _month_label(month: str) -> str:
    year, _, number = month.partition("-")
    return f"{number}/{year}" if number else month


def _rows(lines: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> str:
    rows = []
    for number, line in enumerate(lines, start=1):
        vi, en = NOTICE_LABELS.get(str(line.get("notice")), (line.get("notice", ""), ""))
        detail_vi, detail_en = detail(line)
        ref = str(line.get("patient_ref") or "")
        shown_ref = (
            f"<span class=mono>{escape(ref)}</span>"
            if ref
            else "<small>(không có mã / no reference)</small>"
        )
        register = line.get("register") or {}
        named = "".join(f"<td>{escape(str(register.get(c, '')))}</td>" for c in columns)
        if columns and ref and not register:
            named = (
                f"<td colspan={len(columns)}><small>không có trong sổ của cơ sở này / "
                "not in this facility's register</small></td>"
            )
        elif columns and not ref:
            named = f"<td colspan={len(columns)}></td>"
        rows.append(
            f"<tr><td class=num>{number}</td><td>{escape(_day(str(line.get('date', ''))))}"
            f" {escape(str(line.get('time', '')))}</td>"
            f"<td>{escape(str(line.get('facility_name') or line.get('facility_id', '')))}<br>"
            f"<small>{escape(str(line.get('facility_id', '')))}</small></td>"
            f"<td>{escape(str(vi))}<br><small>{escape(str(en))}</small></td>"
            f"<td>{escape(detail_vi)}<br><small>{escape(detail_en)}</small></td>"
            f"<td>{shown_ref}</td>{named}</tr>"
        )
    return "\n".join(rows)


def _letter_html(document: Mapping[str, Any], letter: Mapping[str, Any]) -> str:
    columns = list(document.get("register_columns", ()))
    month = _month_label(str(document["month"]))
    code, name = escape(str(letter["commune"])), escape(str(letter.get("commune_name") or ""))
    addressee = f"{name} (mã / code {code})" if name else f"mã / code {code}"
    heads = "".join(_register_head(column) for column in columns)
    lines = letter["lines"]
    body = (
        f"""<table class=lines>
<thead><tr><th>STT<br><small>No.</small></th><th>Ngày<br><small>Date</small></th>
<th>Cơ sở<br><small>Facility</small></th><th>Sự việc<br><small>Event</small></th>
<th>Chi tiết<br><small>Particulars</small></th><th>Mã người bệnh<br><small>Reference</small></th>
{heads}</tr></thead>
<tbody>{_rows(lines, columns)}</tbody></table>"""
        if lines
        else "<p>Trong tháng không có sự việc nào phải thông báo.<br>"
        "<small>Nothing this month that the commune must be told of.</small></p>"
    )
    if columns:
        note = (
            "TÀI LIỆU CÓ THÔNG TIN CÁ NHÂN — MẬT: chỉ gửi UBND xã, không sao chép, không đưa lên "
            "hệ thống.<br><small>Contains personal data — confidential: for the commune only, "
            "not to be copied or entered into any system.</small>"
        )
    else:
        note = (
            "Mã người bệnh là mã ẩn danh; cơ sở điều trị bổ sung họ tên từ sổ của mình "
            "(ostwatch notices resolve) trước khi gửi.<br><small>References are "
            "pseudonymous; the facility adds the names from its own register (ostwatch "
            "notices resolve) before sending.</small>"
        )
    signatures = "".join(
        f"<div><b>{escape(vi)}</b><br><small>{escape(en)}</small><br>"
        "<small>(Ký, ghi rõ họ tên / signature, full name)</small></div>"
        for vi, en in SIGNATURES
    )
    issuer = escape(str(document.get("issuer") or ""))
    return f"""
<section class=letter>
<table class=head><tr><td class=org>{issuer}</td>
<td class=nation>CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM<br>
<u>Độc lập - Tự do - Hạnh phúc</u></td></tr></table>
<p class=sign-date>……………, ngày …… tháng …… năm ……… / date</p>
<h1>THÔNG BÁO<br><small>Notice</small></h1>
<p class=subject>V/v người cư trú tại địa phương điều trị nghiện, cai nghiện hoặc xét
nghiệm dương tính với ma túy — tháng {escape(month)}<br><small>Re: residents in treatment or
detox for drug addiction, or who tested positive for drugs — {escape(month)}</small></p>
<p>Kính gửi: Ủy ban nhân dân xã/phường {addressee}<br>
<small>To: the People's Committee of the commune/ward {addressee}</small></p>
<p>Thực hiện quy định về thông báo cho Ủy ban nhân dân cấp xã nơi người bệnh cư trú, đơn vị
thông báo các sự việc trong tháng {escape(month)} như sau:<br><small>As the commune where
the persons below reside must be told, we notify the following events of {escape(month)}:
</small></p>
{body}
<p>Tổng số / Total: <b>{len(lines)}</b></p>
<p class=note>{note}</p>
<div class=signatures>{signatures}</div>
</section>"""


# The stock card's print style (A4, serif, bordered tables, signature blocks), then what a
# letter adds: the national motto beside the issuer, a centred subject, a wider signature.
STYLE = (
    LEDGER_STYLE
    + """
.letter { page-break-after: always; }
.letter:last-of-type { page-break-after: auto; }
table.head td { border: none; text-align: center; width: 50%; }
.nation { font-weight: bold; }
h1 { font-size: 14pt; }
.subject { text-align: center; font-style: italic; }
.mono { word-break: break-all; }
.note { font-size: 9pt; margin-top: 10px; }
.signatures { justify-content: space-around; margin-top: 14px; }
.signatures div { width: 40%; }
"""
)


def letters_html(document: Mapping[str, Any]) -> str:
    """Every letter of the document, one A4 page (or more) each, ready to print and sign."""
    letters = "".join(_letter_html(document, letter) for letter in document["letters"]) or (
        "<p>Không có sự việc nào phải thông báo cho xã nào trong tháng.<br>"
        "<small>No commune has anything to be told of this month.</small></p>"
    )
    generated = escape(str(document.get("generated_at") or ""))
    return f"""<!DOCTYPE html>
<html lang="vi"><head><meta charset="utf-8">
<title>Thông báo UBND xã {escape(str(document["month"]))}</title>
<style>{STYLE}</style></head>
<body>{letters}
<footer>Lập bởi ostwatch / generated by ostwatch {generated}</footer>
</body></html>
"""


def render(document: Mapping[str, Any], output_format: str) -> bytes:
    """The document in one of the formats ``notices`` writes (html, csv, json)."""
    if output_format == "json":
        return letters_json(document)
    if output_format == "csv":
        return letters_csv(document).encode("utf-8")
    return letters_html(document).encode("utf-8")
