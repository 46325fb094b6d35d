"""Settings fail fast without echoing values; every module imports with no services; the CLI
explains itself."""

from __future__ import annotations

import importlib
import pkgutil

import pytest
from click.testing import CliRunner

from infra.cli import main
from ostwatch.settings import BrokerSettings, ClickHouseSettings, SettingsError, load

PACKAGES = ("ostwatch", "schemas", "producers", "streams", "sinks", "dashboards", "infra")


def test_every_module_imports_without_a_broker_or_database() -> None:
    imported = []
    for package_name in PACKAGES:
        package = importlib.import_module(package_name)
        imported.append(package_name)
        for module in pkgutil.walk_packages(package.__path__, f"{package_name}."):
            importlib.import_module(module.name)
            imported.append(module.name)
    assert "streams.intake.agent" in imported
    assert "infra.worker" in imported


def test_invalid_setting_is_named_and_its_value_not_echoed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OSTWATCH_BROKER_PARTITIONS", "s3cr3t-not-a-number")
    with pytest.raises(SettingsError) as caught:
        load(BrokerSettings)
    assert "OSTWATCH_BROKER_PARTITIONS" in str(caught.value)
    assert "s3cr3t" not in str(caught.value)


def test_sasl_without_credentials_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OSTWATCH_BROKER_BOOTSTRAP_SERVERS", "kafka:9093")
    monkeypatch.setenv("OSTWATCH_BROKER_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("OSTWATCH_BROKER_SASL_MECHANISM", "SCRAM-SHA-512")
    with pytest.raises(SettingsError, match="SASL_USERNAME"):
        load(BrokerSettings)


def test_passwords_never_print(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OSTWATCH_CLICKHOUSE_PASSWORD", "hunter2-secret")
    settings = load(ClickHouseSettings)
    assert "hunter2" not in repr(settings)
    assert settings.password.get_secret_value() == "hunter2-secret"


@pytest.mark.parametrize(
    "command",
    [["up"], ["status"], ["ingest"], ["registry", "load"], ["report", "rejected"], ["simulate"]],
)
def test_help_names_the_data_dir_environment_variable(command: list[str]) -> None:
    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0
    assert "--data-dir" in result.output
    assert "OSTWATCH_DATA_DIR" in result.output
