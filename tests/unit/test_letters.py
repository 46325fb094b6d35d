"""Letters to communes as documents (infra/letters.py) and their names added at the facility
(producers/commune_letters.py, `ostwatch notices resolve`): read back, printed, joined."""

from __future__ import annotations

import csv
import io
import stat
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from infra.cli import main
from infra.letters import (
    CSV_COLUMNS,
    LetterError,
    letters_csv,
    letters_html,
    letters_json,
    read_letter,
    with_communes,
)
from producers.commune_letters import add_names, register_of
from producers.pseudonym import PseudonymKey

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
KEY = PseudonymKey("1", b"test-province-key-Bac-Giang-0123456789-abcdefgh")
OLD_KEY = PseudonymKey("0", b"an-older-province-key-0123456789-abcdefghijkl")
AN = KEY.patient_ref("national_id", "001085012345")  # Nguyễn Văn An in the fixture export


def line(notice: str, ref: str, **fields: Any) -> dict[str, Any]:
    return {
        "commune": "07216",
        "occurred_at": "2024-03-05T00:00:00+00:00",
        "date": "2024-03-05",
        "time": "07:00",
        "facility_id": "TF-01",
        "facility_name": "Cơ sở điều trị Methadone Lục Ngạn",
        "notice": notice,
        "reason": "",
        "purpose": "",
        "positive": [],
        "patient_ref": ref,
        "alert_id": "a1",
        "event_id": "e1",
    } | fields


def letter(*lines: dict[str, Any]) -> dict[str, Any]:
    return {
        "document": "ostwatch.commune_letters",
        "version": 1,
        "month": "2024-03",
        "issuer": "Trung tâm Kiểm soát bệnh tật tỉnh Bắc Giang",
        "letters": [{"commune": "07216", "commune_name": "Xã Tân Sơn", "lines": list(lines)}],
    }


DOCUMENT = letter(
    line("enrolled", AN),
    line("violation", "pother_0000000000000000000000000000", reason="diversion"),
    line("positive_test", "", purpose="screening", positive=["opiates", "mdma"]),
)


def test_a_letter_reads_back_from_csv_and_json() -> None:
    back = read_letter(letters_csv(DOCUMENT))
    assert back["month"] == "2024-03"
    assert back["letters"] == DOCUMENT["letters"]
    again = read_letter(letters_json(DOCUMENT).decode())
    assert [li["notice_vi"] for li in again["letters"][0]["lines"]] == [
        "Bắt đầu điều trị",
        "Vi phạm quy định điều trị",
        "Xét nghiệm dương tính với ma túy",
    ]


@pytest.mark.parametrize(
    "text",
    ["event_type,occurred_at\npatient.enrolled,2024-03-05\n", '{"letters": []}', "{not json"],
)
def test_what_is_not_a_letter_is_refused(text: str) -> None:
    with pytest.raises(LetterError):
        read_letter(text)


def test_the_printed_letter_is_bilingual_escaped_and_says_nothing_happened() -> None:
    hostile = letter(line("enrolled", AN, facility_name="<script>alert(1)</script>"))
    page = letters_html(hostile)
    assert "<script>alert" not in page and "&lt;script&gt;" in page
    assert page.index("Kính gửi") < page.index("To: the People")
    assert "Xã Tân Sơn (mã / code 07216)" in page
    quiet = with_communes({**letter(), "letters": []}, ["07217"], {"07217": "Xã Phượng Sơn"})
    page = letters_html(quiet)
    assert "Trong tháng không có sự việc nào phải thông báo" in page
    assert "Xã Phượng Sơn" in page


def test_names_come_from_the_facility_register_joined_on_the_reference() -> None:
    export = (FIXTURES / "facility_export.csv").read_text(encoding="utf-8")
    register = register_of(export, [KEY], "national_id", ["full_name", "address"])
    assert register.by_ref[AN] == {"full_name": "Nguyễn Văn An", "address": "12 Lê Lợi"}
    assert register.unreadable == 1  # the fixture's 5-digit id (never quoted)
    resolved, outcome = add_names(DOCUMENT, register)
    assert (outcome.named, outcome.not_in_register, outcome.without_reference) == (1, 1, 1)
    lines = resolved["letters"][0]["lines"]
    assert lines[0]["register"]["full_name"] == "Nguyễn Văn An" and lines[1]["register"] == {}
    page = letters_html(resolved)
    assert "Nguyễn Văn An" in page and "12 Lê Lợi" in page
    assert "not in this facility's register" in page and "MẬT" in page
    # CSV keeps the register's columns; the original letter itself had no name.
    assert "Nguyễn Văn An" in letters_csv(resolved) and "Nguyễn" not in letters_csv(DOCUMENT)


def test_a_letter_made_before_a_key_rotation_still_resolves() -> None:
    export = (FIXTURES / "facility_export.csv").read_text(encoding="utf-8")
    older = letter(line("enrolled", OLD_KEY.patient_ref("national_id", "001085012345")))
    register = register_of(export, [KEY, OLD_KEY], "national_id", ["full_name"])
    _, outcome = add_names(older, register)
    assert outcome.named == 1


def test_resolve_writes_names_to_a_file_only_its_owner_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = tmp_path / "province.key"
    key_file.write_bytes(KEY.secret)
    key_file.chmod(0o600)
    monkeypatch.setenv("OSTWATCH_PSEUDONYM_KEY_FILE", str(key_file))
    letter_path = tmp_path / "letter-07216.json"
    letter_path.write_bytes(orjson.dumps(DOCUMENT))
    args = ["notices", "resolve", str(letter_path), "--export",
            str(FIXTURES / "facility_export.csv"), "--with", "address"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    named = tmp_path / "letter-07216.names.html"
    assert "Nguyễn Văn An" in named.read_text(encoding="utf-8")
    assert stat.S_IMODE(named.stat().st_mode) == 0o600
    assert "1 line(s) named" in result.output and "Nguyễn" not in result.output
    csv_out = tmp_path / "named.csv"
    result = CliRunner().invoke(main, [*args, "--out", str(csv_out), "--format", "json"])
    assert result.exit_code == 0 and "Nguyễn Văn An" in csv_out.read_text(encoding="utf-8")
    summary = orjson.loads(result.stdout)  # --format json: one document, counts only
    assert (summary["named"], summary["not_in_register"], summary["out"]) == (1, 1, str(csv_out))
    refused = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "named.txt")])
    assert refused.exit_code == 1 and "name it .html, .csv or .json" in refused.output
    # A register without the name column is refused in one line, quoting no value.
    result = CliRunner().invoke(main, [*args, "--name-column", "ho_ten"])
    assert result.exit_code == 1 and "missing column(s): ho_ten" in result.output


def test_a_letter_resolved_from_its_csv_keeps_the_issuer_and_heads_names_for_staff() -> None:
    """The CSV carries the issuing CDC, so the letter resolved from it prints the same header
    as the one sent; the register's columns are headed in Vietnamese and English."""
    export = (FIXTURES / "facility_export.csv").read_text(encoding="utf-8")
    back = read_letter(letters_csv(DOCUMENT))
    assert back["issuer"] == DOCUMENT["issuer"]
    register = register_of(export, [KEY], "national_id", ["full_name", "address"])
    resolved, _ = add_names(back, register)
    page = letters_html(resolved)
    assert "<td class=org>Trung tâm Kiểm soát bệnh tật tỉnh Bắc Giang</td>" in page
    assert "Họ và tên<br><small>Full name</small>" in page and ">full_name<" not in page
    assert "Địa chỉ<br><small>Address</small>" in page
    header = letters_csv(resolved).splitlines()[0].split(",")
    assert header[-2:] == ["Họ và tên / Full name", "Địa chỉ / Address"]
    assert "full_name" not in header and "address" not in header
    # A letter written before the issuer was a column still reads back, without one.
    rows = list(csv.reader(io.StringIO(letters_csv(DOCUMENT))))
    older = io.StringIO()
    csv.writer(older).writerows(row[: len(CSV_COLUMNS)] for row in rows)
    assert read_letter(older.getvalue())["issuer"] == ""
