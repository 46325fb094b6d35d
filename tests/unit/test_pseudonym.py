"""Pseudonymisation at the source: the keyed hash, its key handling, and the CSV export."""

from __future__ import annotations

import base64
import hmac
import re
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from infra.cli import main
from ostwatch.settings import PseudonymSettings, SettingsError
from producers.facility_export import ExportError, convert_export
from producers.pseudonym import (
    IdentifierError,
    PseudonymKey,
    load_keys,
    normalise_identifier,
    rekey_map,
)
from schemas.models import parse_event_dict

SECRET = b"province-key-for-tests-0123456789abcdef"
KEY = PseudonymKey("1", SECRET)
CONTRACT_REF = re.compile(r"[A-Za-z0-9_-]{8,64}")


def test_reference_is_hmac_sha256_of_the_normalised_identifier() -> None:
    # Recomputed here from the standard library alone, as the module docstring states it.
    digest = hmac.new(SECRET, b"ostwatch:patient:v1:national_id:001085012345", "sha256").digest()
    expected = "p1_" + base64.b32encode(digest).decode().lower()[:32]
    assert KEY.patient_ref("national_id", "001085012345") == expected
    assert CONTRACT_REF.fullmatch(expected)


@pytest.mark.parametrize(
    "spelling", ["001085012345", "001 085 012 345", "001.085.012345", "001-085-012345 "]
)
def test_every_spelling_of_an_id_gives_one_reference(spelling: str) -> None:
    assert KEY.patient_ref("national_id", spelling) == KEY.patient_ref(
        "national_id", "001085012345"
    )


def test_clinic_numbers_are_normalised_and_kept_apart_from_ids() -> None:
    assert KEY.patient_ref("clinic_number", "bg-mtd 00123") == KEY.patient_ref(
        "clinic_number", "BG_MTD/00123"
    )
    assert KEY.patient_ref("clinic_number", "123456789") != KEY.patient_ref(
        "national_id", "123456789"
    )


def test_another_key_gives_unrelated_references() -> None:
    other = PseudonymKey("2", b"another-province-key-0123456789abcdef")
    ours, theirs = (
        KEY.patient_ref("national_id", "001085012345"),
        other.patient_ref("national_id", "001085012345"),
    )
    assert ours != theirs and ours.split("_")[1] != theirs.split("_")[1]


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("national_id", "12345"),
        ("national_id", "00108501234X"),
        ("clinic_number", "   "),
        ("clinic_number", "Nguyễn Văn An #5"),
    ],
)
def test_bad_identifiers_are_refused_without_repeating_them(kind: str, value: str) -> None:
    with pytest.raises(IdentifierError) as caught:
        normalise_identifier(kind, value)  # type: ignore[arg-type]
    assert value.strip() not in str(caught.value) or not value.strip()


def test_the_secret_never_shows_in_a_repr() -> None:
    assert SECRET.decode() not in repr(KEY)


# --- keys from settings -----------------------------------------------------------------------


def key_file(tmp_path: Path, name: str, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / name
    path.write_text(text + "\n", encoding="utf-8")
    path.chmod(mode)
    return path


def test_key_from_a_private_file(tmp_path: Path) -> None:
    path = key_file(tmp_path, "key", SECRET.decode())
    current, previous = load_keys(PseudonymSettings(key_file=path, key_id="1"))
    assert current.patient_ref("national_id", "001085012345") == KEY.patient_ref(
        "national_id", "001085012345"
    )
    assert previous is None


@pytest.mark.parametrize(
    ("settings", "names"),
    [
        ({}, "OSTWATCH_PSEUDONYM_KEY_FILE (or OSTWATCH_PSEUDONYM_KEY) is required"),
        ({"key": "too-short-secret"}, "OSTWATCH_PSEUDONYM_KEY: the key must be at least 32"),
        ({"key": SECRET.decode(), "key_file": "FILE"}, "are both set"),
        ({"key_file": "MISSING"}, "OSTWATCH_PSEUDONYM_KEY_FILE: cannot read"),
        ({"key_file": "OPEN"}, "may be read by others; restrict it (chmod 600)"),
        (
            {"key": SECRET.decode(), "previous_key": SECRET.decode(), "previous_key_id": "0"},
            "OSTWATCH_PSEUDONYM_PREVIOUS_KEY is the same key",
        ),
        ({"key": SECRET.decode(), "previous_key": "x" * 40}, "PREVIOUS_KEY_ID is required"),
    ],
)
def test_key_problems_name_the_setting_and_never_the_secret(
    tmp_path: Path, settings: dict[str, str], names: str
) -> None:
    paths = {
        "FILE": key_file(tmp_path, "f", SECRET.decode()),
        "MISSING": tmp_path / "missing",
        "OPEN": key_file(tmp_path, "open", SECRET.decode(), 0o644),
    }
    values = {k: paths.get(v, v) for k, v in settings.items()}
    with pytest.raises(SettingsError) as caught:
        load_keys(PseudonymSettings(**values))  # type: ignore[arg-type]
    message = str(caught.value)
    assert names in message
    assert SECRET.decode() not in message and "too-short-secret" not in message
    assert "x" * 40 not in message


def test_key_from_the_environment_through_load(monkeypatch: pytest.MonkeyPatch) -> None:
    from ostwatch.settings import load

    monkeypatch.setenv("OSTWATCH_PSEUDONYM_KEY", SECRET.decode())
    monkeypatch.setenv("OSTWATCH_PSEUDONYM_KEY_ID", "Bad Id")
    with pytest.raises(SettingsError) as caught:
        load(PseudonymSettings)
    assert "OSTWATCH_PSEUDONYM_KEY_ID" in str(caught.value)
    assert SECRET.decode() not in str(caught.value) and "Bad Id" not in str(caught.value)


def test_rekey_map_links_old_and_new_references() -> None:
    new = PseudonymKey("2026", b"the-next-province-key-0123456789abcd")
    mapping, refused = rekey_map(
        [("national_id", "001085012345"), ("national_id", "001 085 012345"), ("national_id", "1")],
        KEY,
        new,
    )
    assert mapping == {
        KEY.patient_ref("national_id", "001085012345"): new.patient_ref(
            "national_id", "001085012345"
        )
    }
    assert refused == 1


# --- the facility export ----------------------------------------------------------------------

# A facility's export with names, phones, addresses and ID numbers in it (and bad rows).
EXPORT = (Path(__file__).parent.parent / "fixtures" / "facility_export.csv").read_text("utf-8")
PERSONAL = [
    "Nguyễn",
    "Trần",
    "Lê Văn",
    "0901234567",
    "Lê Lợi",
    "001085012345",
    "079123456789",
    "079123456780",
    "12345",
]


def test_export_becomes_contract_events_without_personal_data() -> None:
    result = convert_export(EXPORT, KEY, "national_id")
    assert result.rows == 8 and len(result.events) == 4
    assert result.dropped_columns == ["full_name", "phone", "address"]
    for event in result.events:
        parse_event_dict(event)
    text = orjson.dumps(result.events).decode()
    for value in PERSONAL:
        assert value not in text
    enrol, dose, other, test = result.events
    assert (
        enrol["patient_ref"]
        == dose["patient_ref"]
        == KEY.patient_ref("national_id", "001085012345")
    )
    assert enrol["occurred_at"] == "2024-03-05T07:00:00+07:00"
    assert other["take_home_days"] == 3 and other["patient_ref"] != dose["patient_ref"]
    assert "patient_ref" not in test and test["results"] == {
        "opiates": "positive",
        "mdma": "negative",
    }


def test_bad_rows_are_refused_by_line_with_reasons_that_quote_nothing() -> None:
    result = convert_export(EXPORT, KEY, "national_id")
    assert [line for line, _ in result.refused] == [6, 7, 8, 9]
    reasons = dict(result.refused)
    assert reasons[6].startswith("national_id: must be 12 digits (CCCD) or 9 digits (CMND)")
    assert reasons[7] == "national_id: required for dose.dispensed (the patient's identifier)"
    assert reasons[8] == "dose_mg: must be a number"
    assert reasons[9].startswith("dose_mg: must be greater than 0 and at most 1000")
    for reason in reasons.values():
        assert not any(value in reason for value in PERSONAL)


def test_exporting_again_gives_the_same_event_ids() -> None:
    first = convert_export(EXPORT, KEY, "national_id").events
    again = convert_export(EXPORT, KEY, "national_id").events
    assert [e["event_id"] for e in first] == [e["event_id"] for e in again]
    assert len({e["event_id"] for e in first}) == len(first)


def test_an_export_without_the_identifier_column_is_refused_whole() -> None:
    with pytest.raises(ExportError, match="missing column"):
        convert_export("event_type,occurred_at,facility_id\n", KEY, "national_id")


def test_pseudonymize_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OSTWATCH_PSEUDONYM_KEY_FILE", str(key_file(tmp_path, "k", SECRET.decode())))
    export = tmp_path / "export.csv"
    export.write_text(EXPORT, encoding="utf-8")
    out = tmp_path / "events.jsonl"
    result = CliRunner().invoke(
        main, ["pseudonymize", str(export), "--out", str(out), "--format", "json"]
    )
    assert result.exit_code == 1  # four rows were refused
    summary = orjson.loads(result.stdout)
    assert summary["events"] == 4 and len(summary["refused"]) == 4
    assert result.stderr.strip().count("\n") == 0 and "4 of 8 rows refused" in result.stderr
    lines = out.read_bytes().splitlines()
    assert len(lines) == 4
    for value in PERSONAL:
        assert value.encode() not in out.read_bytes()
        assert value not in result.output
