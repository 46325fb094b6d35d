"""The national deployment's configuration files, rendered from one description of its shape.

``infra/cluster/`` holds the output for the default shape (3 Kafka KRaft nodes, ClickHouse 1
shard × 3 replicas, 3 ClickHouse Keeper nodes, 3 workers, Grafana); ``ostwatch cluster
config --out DIR`` renders another shape. One description keeps the files consistent with
each other: every node's macros match its place in remote_servers, every ClickHouse node lists
every Keeper node, every Kafka node names the same three voters. tests/unit/
test_cluster_config.py checks those properties on the committed files themselves, and that
they are what this module renders (so nobody edits one node's file and forgets the others).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ostwatch.settings import BrokerSettings

KEEPER_CLIENT_PORT = 9181
KEEPER_RAFT_PORT = 9234
KEEPER_HTTP_PORT = 9182
KAFKA_IMAGE = "apache/kafka:3.8.0"
CLICKHOUSE_IMAGE = "clickhouse/clickhouse-server:24.8"
KEEPER_IMAGE = "clickhouse/clickhouse-keeper:24.8"
GRAFANA_IMAGE = "grafana/grafana:11.2.0"
HEADER = (
    "<!-- Rendered by `ostwatch cluster config` (infra/cluster_config.py); edit that, not this. -->"
)


@dataclass(frozen=True)
class Topology:
    """The shape of a deployment; the defaults are the national one (docs/capacity.md)."""

    cluster: str = "ostwatch"
    shards: int = 1
    replicas: int = 3
    keepers: int = 3
    kafka_nodes: int = 3
    workers: int = 3
    partitions: int = 12
    replication_factor: int = 3
    min_insync_replicas: int = 2

    def clickhouse_nodes(self) -> list[tuple[str, int, int]]:
        """(host, shard, replica) of every ClickHouse node, shard by shard."""
        return [
            (f"ch-s{shard}r{replica}", shard, replica)
            for shard in range(1, self.shards + 1)
            for replica in range(1, self.replicas + 1)
        ]

    def keeper_hosts(self) -> list[str]:
        return [f"keeper-{n}" for n in range(1, self.keepers + 1)]

    def kafka_hosts(self) -> list[str]:
        return [f"kafka-{n}" for n in range(1, self.kafka_nodes + 1)]

    def topics(self) -> list[str]:
        """ostwatch's topics: the ones infra/stack.py creates, from BrokerSettings defaults."""
        broker = BrokerSettings.model_construct()
        return [broker.events_topic, broker.dead_letter_topic, broker.alerts_topic]


def _keeper_servers(topology: Topology) -> str:
    return "\n".join(
        f"""            <server>
                <id>{number}</id>
                <hostname>{host}</hostname>
                <port>{KEEPER_RAFT_PORT}</port>
            </server>"""
        for number, host in enumerate(topology.keeper_hosts(), start=1)
    )


def keeper_config(topology: Topology, number: int) -> str:
    """keeper_config.xml of Keeper node ``number`` (1-based): its id, the same raft group."""
    return f"""{HEADER}
<clickhouse>
    <logger>
        <level>information</level>
        <console>1</console>
    </logger>
    <listen_host>0.0.0.0</listen_host>
    <keeper_server>
        <tcp_port>{KEEPER_CLIENT_PORT}</tcp_port>
        <http_control>
            <port>{KEEPER_HTTP_PORT}</port>
            <readiness>
                <endpoint>/ready</endpoint>
            </readiness>
        </http_control>
        <server_id>{number}</server_id>
        <log_storage_path>/var/lib/clickhouse-keeper/coordination/log</log_storage_path>
        <snapshot_storage_path>/var/lib/clickhouse-keeper/coordination/snapshots</snapshot_storage_path>
        <coordination_settings>
            <operation_timeout_ms>10000</operation_timeout_ms>
            <session_timeout_ms>30000</session_timeout_ms>
            <raft_logs_level>warning</raft_logs_level>
        </coordination_settings>
        <raft_configuration>
{_keeper_servers(topology)}
        </raft_configuration>
    </keeper_server>
</clickhouse>
"""


def _remote_servers(topology: Topology) -> str:
    shards = []
    for shard in range(1, topology.shards + 1):
        replicas = "\n".join(
            f"""                <replica>
                    <host>{host}</host>
                    <port>9000</port>
                </replica>"""
            for host, in_shard, _ in topology.clickhouse_nodes()
            if in_shard == shard
        )
        shards.append(
            f"""            <shard>
                <internal_replication>true</internal_replication>
{replicas}
            </shard>"""
        )
    return "\n".join(shards)


def clickhouse_config(topology: Topology, host: str, shard: int, replica: int) -> str:
    """config.d/ostwatch.xml of one ClickHouse node: the cluster, its macros, the Keepers."""
    keepers = "\n".join(
        f"""        <node>
            <host>{keeper}</host>
            <port>{KEEPER_CLIENT_PORT}</port>
        </node>"""
        for keeper in topology.keeper_hosts()
    )
    return f"""{HEADER}
<!-- {host}: shard {shard}, replica {replica} of cluster {topology.cluster}. -->
<clickhouse>
    <listen_host>0.0.0.0</listen_host>
    <remote_servers replace="true">
        <{topology.cluster}>
{_remote_servers(topology)}
        </{topology.cluster}>
    </remote_servers>
    <macros>
        <cluster>{topology.cluster}</cluster>
        <shard>{shard}</shard>
        <replica>{host}</replica>
    </macros>
    <zookeeper>
{keepers}
    </zookeeper>
    <distributed_ddl>
        <path>/clickhouse/task_queue/ddl</path>
    </distributed_ddl>
{_system_log_ttls()}
</clickhouse>
"""


# ClickHouse's own logs grow without bound and, at ostwatch's small data volume, would
# outgrow the data (docs/capacity.md §3): keep 30 days of each.
SYSTEM_LOGS = ("query_log", "part_log", "metric_log", "asynchronous_metric_log", "trace_log")


def _system_log_ttls() -> str:
    return "\n".join(
        f"    <{log}>\n        <ttl>event_date + INTERVAL 30 DAY DELETE</ttl>\n    </{log}>"
        for log in SYSTEM_LOGS
    )


def clickhouse_profile() -> str:
    """users.d/ostwatch.xml: how the application's reads and writes behave on the cluster.

    The worker writes a batch, then reads the archive back to rebuild the touched aggregates
    and judge alerts, and commits Kafka offsets only after ClickHouse acknowledged. So inserts
    through a Distributed table must be synchronous, acknowledged by two replicas (a node lost
    right after the acknowledgement loses nothing), and reads must prefer the replica on the
    node the worker talks to, which is the one that took its writes.
    """
    return f"""{HEADER}
<clickhouse>
    <profiles>
        <default>
            <!-- An INSERT into a Distributed table returns once the shards have the rows. -->
            <distributed_foreground_insert>1</distributed_foreground_insert>
            <!-- ...and once two replicas of each shard have them. -->
            <insert_quorum>2</insert_quorum>
            <insert_quorum_timeout>60000</insert_quorum_timeout>
            <!-- Read the local replica first: it took this node's writes. -->
            <prefer_localhost_replica>1</prefer_localhost_replica>
            <load_balancing>in_order</load_balancing>
            <!-- IN/JOIN over a Distributed table inside a distributed query (row policies,
                 reports): send the subquery's result to the shards once. -->
            <distributed_product_mode>global</distributed_product_mode>
            <distributed_ddl_task_timeout>300</distributed_ddl_task_timeout>
        </default>
    </profiles>
</clickhouse>
"""


def render(topology: Topology) -> dict[str, str]:
    """Relative path → text of every file the deployment mounts (compose file excepted)."""
    files = {"clickhouse/users.d/ostwatch.xml": clickhouse_profile()}
    for host, shard, replica in topology.clickhouse_nodes():
        files[f"clickhouse/{host}/config.d/ostwatch.xml"] = clickhouse_config(
            topology, host, shard, replica
        )
    for number, host in enumerate(topology.keeper_hosts(), start=1):
        files[f"keeper/{host}.xml"] = keeper_config(topology, number)
    return files


def write(topology: Topology, directory: Path) -> list[Path]:
    """Write the rendered files under ``directory``; return their paths."""
    written = []
    for relative, text in render(topology).items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
