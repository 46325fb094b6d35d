"""Secrets never reach the repository, an error message or a repr; a bad setting is named
without its value."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from ostwatch.settings import (
    BrokerSettings,
    ClickHouseSettings,
    PseudonymSettings,
    SettingsError,
    StackSettings,
    StreamSettings,
    load,
)
from sinks.clickhouse import ClickHouse, StoreUnavailable

ROOT = Path(__file__).resolve().parents[2]
SECRET = "Pl4nted-s3cret-Value"  # noqa: S105 - must never be echoed


@pytest.mark.parametrize(
    ("cls", "variable"),
    [
        (BrokerSettings, "OSTWATCH_BROKER_PARTITIONS"),
        (ClickHouseSettings, "OSTWATCH_CLICKHOUSE_DATABASE"),
        (StreamSettings, "OSTWATCH_STREAM_FACILITY_BURST"),
        (StackSettings, "OSTWATCH_LOG_LEVEL"),
        (PseudonymSettings, "OSTWATCH_PSEUDONYM_KEY_ID"),
        (PseudonymSettings, "OSTWATCH_PSEUDONYM_PREVIOUS_KEY_ID"),
    ],
)
def test_a_bad_setting_is_named_not_echoed(
    monkeypatch: pytest.MonkeyPatch, cls: type, variable: str
) -> None:
    monkeypatch.setenv(variable, SECRET)
    with pytest.raises(SettingsError) as caught:
        load(cls)
    assert variable in str(caught.value)
    assert SECRET not in str(caught.value) and SECRET.lower() not in str(caught.value).lower()


def test_credentials_never_show_in_a_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OSTWATCH_PSEUDONYM_KEY", SECRET * 3)
    monkeypatch.setenv("OSTWATCH_CLICKHOUSE_PASSWORD", SECRET)
    monkeypatch.setenv("OSTWATCH_BROKER_SASL_PASSWORD", SECRET)
    for settings in (load(PseudonymSettings), load(ClickHouseSettings)):
        assert SECRET not in repr(settings) and SECRET not in str(settings.model_dump())


def test_a_store_that_cannot_be_reached_does_not_print_its_password(tmp_path: Path) -> None:
    settings = ClickHouseSettings(
        url=f"http://ostwatch:{SECRET}@127.0.0.1:9/",
        password=SECRET,  # type: ignore[arg-type]
    )
    with pytest.raises(StoreUnavailable) as caught:
        ClickHouse.connect(settings, tmp_path)
    assert SECRET not in str(caught.value)


def test_no_key_or_credential_file_is_committed() -> None:
    files = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert files, "expected to run inside the repository"
    suspicious = [
        name
        for name in files
        if name.endswith((".key", ".pem", ".p12", ".jks", ".env", "admin.properties"))
    ]
    assert suspicious == []
    markers = [b"-----BEGIN " + kind + b"PRIVATE KEY-----" for kind in (b"", b"RSA ", b"EC ")]
    for name in files:
        path = ROOT / name
        if path.is_file() and path.stat().st_size < 2_000_000:
            text = path.read_bytes()
            assert not any(marker in text for marker in markers), name
