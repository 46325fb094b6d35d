"""infra/cluster: the national deployment's files, checked statically (no Docker, no Keeper,
no Kafka cluster can run on these machines). The checks read the committed files themselves."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from infra.cli import main
from infra.cluster_config import (
    CLICKHOUSE_IMAGE,
    GRAFANA_IMAGE,
    KAFKA_IMAGE,
    KEEPER_CLIENT_PORT,
    KEEPER_IMAGE,
    Topology,
    render,
)
from ostwatch.settings import BrokerSettings

ROOT = Path(__file__).resolve().parents[2]
CLUSTER_DIR = ROOT / "infra" / "cluster"
COMPOSE = CLUSTER_DIR / "docker-compose.cluster.yml"
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY$", re.IGNORECASE)
REQUIRED_FROM_ENV = re.compile(r"^\$\{[A-Z0-9_]+:\?[^}]+\}$")


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    found: dict[str, dict[str, Any]] = loaded["services"]
    return found


def env(service: dict[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in (service.get("environment") or {}).items()}


def xml(relative: str) -> ET.Element:
    return ET.parse(CLUSTER_DIR / relative).getroot()  # noqa: S314 - our own committed files


def clickhouse_configs(directory: Path = CLUSTER_DIR) -> dict[str, ET.Element]:
    return {
        path.parent.parent.name: ET.parse(path).getroot()  # noqa: S314 - files we wrote
        for path in sorted(directory.glob("clickhouse/*/config.d/ostwatch.xml"))
    }


def keeper_configs() -> dict[str, ET.Element]:
    return {
        path.stem: ET.parse(path).getroot()  # noqa: S314 - committed files
        for path in sorted(CLUSTER_DIR.glob("keeper/*.xml"))
    }


def test_committed_files_are_what_the_topology_renders() -> None:
    rendered = render(Topology())
    committed = {
        str(path.relative_to(CLUSTER_DIR)): path.read_text(encoding="utf-8")
        for path in CLUSTER_DIR.rglob("*.xml")
    }
    assert committed == rendered, "run `ostwatch cluster config --out infra/cluster`"


def assert_macros_agree_with_remote_servers(configs: dict[str, ET.Element]) -> None:
    for host, root in configs.items():
        macros = {child.tag: child.text for child in root.find("macros")}  # type: ignore[union-attr]
        (cluster,) = list(root.find("remote_servers"))  # type: ignore[arg-type]
        assert macros["cluster"] == cluster.tag
        assert macros["replica"] == host
        placement = {
            replica.findtext("host"): number
            for number, shard in enumerate(cluster.findall("shard"), start=1)
            for replica in shard.findall("replica")
        }
        # This node is listed in remote_servers under the shard its macro names, and the
        # cluster lists exactly the nodes that have a config.
        assert placement[host] == int(macros["shard"] or 0), host
        assert set(placement) == set(configs)
        for shard in cluster.findall("shard"):
            assert shard.findtext("internal_replication") == "true"


def test_macros_agree_with_remote_servers() -> None:
    configs = clickhouse_configs()
    assert len(configs) == 3
    assert_macros_agree_with_remote_servers(configs)


def test_config_command_renders_other_layouts(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["cluster", "config", "--out", str(tmp_path), "--shards", "2", "--replicas", "2"]
    )
    assert result.exit_code == 0, result.output
    configs = clickhouse_configs(tmp_path)
    assert sorted(configs) == ["ch-s1r1", "ch-s1r2", "ch-s2r1", "ch-s2r2"]
    assert_macros_agree_with_remote_servers(configs)
    assert {c.findtext("macros/shard") for c in configs.values()} == {"1", "2"}


def test_replica_names_are_unique_within_each_shard() -> None:
    seen: set[tuple[str, str]] = set()
    for root in clickhouse_configs().values():
        key = (root.findtext("macros/shard") or "", root.findtext("macros/replica") or "")
        assert key not in seen
        seen.add(key)


def test_every_keeper_node_is_in_every_clickhouse_node_and_the_raft_group() -> None:
    keepers = keeper_configs()
    assert len(keepers) == 3  # an odd quorum: one node may fail
    ids = {name: root.findtext("keeper_server/server_id") for name, root in keepers.items()}
    assert len(set(ids.values())) == len(ids)
    rafts = []
    for name, root in keepers.items():
        servers = {
            (s.findtext("id"), s.findtext("hostname"))
            for s in root.iterfind("keeper_server/raft_configuration/server")
        }
        assert (ids[name], name) in servers  # its own id under its own host name
        rafts.append(servers)
    assert all(raft == rafts[0] for raft in rafts)
    for host, root in clickhouse_configs().items():
        listed = {
            (node.findtext("host"), int(node.findtext("port") or 0))
            for node in root.iterfind("zookeeper/node")
        }
        assert listed == {(name, KEEPER_CLIENT_PORT) for name in keepers}, host


def test_profile_makes_distributed_writes_synchronous_and_quorum_acknowledged() -> None:
    profile = xml("clickhouse/users.d/ostwatch.xml").find("profiles/default")
    assert profile is not None
    assert profile.findtext("distributed_foreground_insert") == "1"
    assert int(profile.findtext("insert_quorum") or 0) >= 2


def test_compose_mounts_only_files_that_exist(services: dict[str, dict[str, Any]]) -> None:
    mounted = 0
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            if source.startswith("."):
                assert (COMPOSE.parent / source).exists(), f"{name} mounts missing {source}"
                mounted += 1
        build = service.get("build")
        if build:
            assert (COMPOSE.parent / build["context"] / "Dockerfile").is_file()
    assert mounted >= 3 + 3 * 2 + 1  # keepers, ClickHouse config + profile, Grafana


def test_each_node_mounts_its_own_config(services: dict[str, dict[str, Any]]) -> None:
    for host in clickhouse_configs():
        mounts = " ".join(str(v) for v in services[host]["volumes"])
        assert f"./clickhouse/{host}/config.d/ostwatch.xml:" in mounts
        assert services[host]["image"] == CLICKHOUSE_IMAGE
    for name in keeper_configs():
        mounts = " ".join(str(v) for v in services[name]["volumes"])
        assert f"./keeper/{name}.xml:/etc/clickhouse-keeper/keeper_config.xml" in mounts
        assert services[name]["image"] == KEEPER_IMAGE


def test_kafka_is_three_kraft_nodes_with_one_quorum(services: dict[str, dict[str, Any]]) -> None:
    kafka = {name: env(s) for name, s in services.items() if name.startswith("kafka-")}
    kafka.pop("kafka-topics")
    assert len(kafka) == 3
    assert all(services[name]["image"] == KAFKA_IMAGE for name in kafka)
    ids = {name: e["KAFKA_NODE_ID"] for name, e in kafka.items()}
    assert len(set(ids.values())) == 3
    voters = {e["KAFKA_CONTROLLER_QUORUM_VOTERS"] for e in kafka.values()}
    assert len(voters) == 1
    parsed = {tuple(v.replace("@", ":").split(":")[:2]) for v in voters.pop().split(",")}
    assert parsed == {(node_id, name) for name, node_id in ids.items()}
    for name, e in kafka.items():
        assert set(e["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
        assert "KAFKA_ZOOKEEPER_CONNECT" not in e
        assert e["KAFKA_ADVERTISED_LISTENERS"] == f"INTERNAL://{name}:9092"
        assert e["KAFKA_DEFAULT_REPLICATION_FACTOR"] == "3"
        assert e["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
        assert e["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "3"
        assert e["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
        assert len({e["CLUSTER_ID"] for e in kafka.values()}) == 1


def test_topics_are_ours_with_the_workers_partition_count(
    services: dict[str, dict[str, Any]],
) -> None:
    script = " ".join(services["kafka-topics"]["command"])
    names = re.search(r"for topic in ([^;]+);", script)
    assert names is not None
    broker = BrokerSettings.model_construct()
    assert (
        names.group(1).split()
        == Topology().topics()
        == [
            broker.events_topic,
            broker.dead_letter_topic,
            broker.alerts_topic,
        ]
    )
    workers = {n: env(s) for n, s in services.items() if n.startswith("worker-")}
    assert len(workers) == Topology().workers
    partitions = {e["OSTWATCH_BROKER_PARTITIONS"] for e in workers.values()}
    assert partitions == {str(Topology().partitions)}
    assert f"--partitions {partitions.pop()} --replication-factor 3" in script
    assert "--config min.insync.replicas=2" in script


def test_workers_share_one_group_and_run_in_cluster_mode(
    services: dict[str, dict[str, Any]],
) -> None:
    workers = {n: env(s) for n, s in services.items() if n.startswith("worker-")}
    nodes = set(clickhouse_configs())
    cluster = Topology().cluster
    for name, e in workers.items():
        command = services[name]["command"]
        assert " ".join(command) == "ostwatch worker"
        assert "OSTWATCH_STREAM_GROUP_ID" not in e  # the default group, shared
        assert e["OSTWATCH_CLICKHOUSE_CLUSTER"] == cluster
        assert e["OSTWATCH_BROKER_REPLICATION_FACTOR"] == "3"
        assert e["OSTWATCH_CLICKHOUSE_URL"].removeprefix("http://").split(":")[0] in nodes
        hosts = [h.split(":")[0] for h in e["OSTWATCH_BROKER_BOOTSTRAP_SERVERS"].split(",")]
        assert set(hosts) == {"kafka-1", "kafka-2", "kafka-3"}
    # each worker keeps its own notify state (SQLite) and outbox
    data = [str(services[n]["volumes"][0]).split(":")[0] for n in workers]
    assert len(set(data)) == len(workers)


def test_no_literal_secrets_and_loopback_ports(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for key, value in env(service).items():
            if SECRET_NAME.search(key):
                assert REQUIRED_FROM_ENV.match(value), f"{name}.{key} must be ${{VAR:?message}}"
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port}"
    assert services["grafana"]["image"] == GRAFANA_IMAGE
