"""infra/docker-compose.yml, checked statically (no Docker engine runs on these machines)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

COMPOSE = Path(__file__).resolve().parents[2] / "infra" / "docker-compose.yml"
IMAGES = {
    "kafka": "apache/kafka:3.8.0",
    "clickhouse": "clickhouse/clickhouse-server:24.8",
    "grafana": "grafana/grafana:11.2.0",
}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY$", re.IGNORECASE)
REQUIRED_FROM_ENV = re.compile(r"^\$\{[A-Z0-9_]+:\?[^}]+\}$")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a mapping, whichever of the two compose forms it uses."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(entry.split("=", 1) for entry in env)
    return {str(key): str(value) for key, value in env.items()}


def test_services_and_pinned_images(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == {*IMAGES, "ostwatch"}
    for name, image in IMAGES.items():
        assert services[name]["image"] == image
    assert services["ostwatch"]["build"]["context"] == ".."


def test_kafka_runs_kraft_without_zookeeper(services: dict[str, dict[str, Any]]) -> None:
    env = environment(services["kafka"])
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert "KAFKA_ZOOKEEPER_CONNECT" not in env
    assert "INTERNAL://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert "HOST://127.0.0.1:29092" in env["KAFKA_ADVERTISED_LISTENERS"]


def test_every_port_binding_is_on_loopback(services: dict[str, dict[str, Any]]) -> None:
    bindings = [(name, port) for name, svc in services.items() for port in svc.get("ports", [])]
    assert bindings, "expected published ports"
    for name, port in bindings:
        if isinstance(port, dict):
            assert port.get("host_ip") == "127.0.0.1", f"{name}: {port}"
        else:
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


def test_every_service_has_a_healthcheck(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        check = service.get("healthcheck")
        assert check and check.get("test"), f"{name} has no healthcheck"
        assert not check.get("disable"), f"{name} disables its healthcheck"


def test_no_literal_secrets(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for key, value in environment(service).items():
            if SECRET_NAME.search(key):
                assert REQUIRED_FROM_ENV.match(value), f"{name}.{key} must be ${{VAR:?message}}"


def test_worker_configuration(services: dict[str, dict[str, Any]]) -> None:
    worker = services["ostwatch"]
    command = worker["command"]
    assert (command if isinstance(command, str) else " ".join(command)) == "ostwatch worker"
    env = environment(worker)
    assert env["OSTWATCH_BROKER_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert env["OSTWATCH_CLICKHOUSE_URL"] == "http://clickhouse:8123"
    assert "OSTWATCH_CLICKHOUSE_USERNAME" in env
    assert set(worker["depends_on"]) == {"kafka", "clickhouse"}


def test_grafana_installs_the_clickhouse_plugin_and_mounts_provisioning(
    services: dict[str, dict[str, Any]],
) -> None:
    grafana = services["grafana"]
    assert "grafana-clickhouse-datasource" in environment(grafana)["GF_INSTALL_PLUGINS"]
    assert any(
        str(volume).startswith("../dashboards/provisioning:/etc/grafana/provisioning")
        for volume in grafana["volumes"]
    )


def test_clickhouse_keeps_its_data_in_a_volume(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    mounts = [str(v).split(":", 1) for v in services["clickhouse"]["volumes"]]
    assert ["clickhouse-data", "/var/lib/clickhouse"] in mounts
    assert "clickhouse-data" in compose["volumes"]


def test_grafana_reads_clickhouse_as_the_read_only_viewer(
    services: dict[str, dict[str, Any]],
) -> None:
    from dashboards.grafana import DATASOURCE_USER
    from ostwatch.access import GRAFANA_CLICKHOUSE_USER

    provisioned = yaml.safe_load(
        (COMPOSE.parent.parent / "dashboards/provisioning/datasources/ostwatch.yaml").read_text(
            encoding="utf-8"
        )
    )
    (source,) = provisioned["datasources"]
    # the one name the roles DDL, the dashboards and the provisioning agree on
    assert source["jsonData"]["username"] == DATASOURCE_USER == GRAFANA_CLICKHOUSE_USER
    grafana, clickhouse = environment(services["grafana"]), environment(services["clickhouse"])
    assert GRAFANA_CLICKHOUSE_USER not in clickhouse["CLICKHOUSE_USER"]  # not the writer
    variable = source["secureJsonData"]["password"].lstrip("$")
    assert variable in grafana and variable != "CLICKHOUSE_" + "PASSWORD"  # not the writer's
