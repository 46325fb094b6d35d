"""Deployment beyond the embedded stack: least-privilege layouts (``security``), the DDL
(``schema``) and the multi-node configuration (``cluster config``)."""

from __future__ import annotations

from pathlib import Path

import click

from infra.cli.common import (
    UserError,
    emit,
    emit_json,
    format_option,
    friendly_errors,
    ignored_data_dir_option,
    output_format_option,
)
from ostwatch.settings import BrokerSettings, ClickHouseSettings, StreamSettings, load


@click.group()
def security() -> None:
    """Least-privilege layouts to apply on a production Kafka and ClickHouse
    (docs/operations.md, "Privacy and security")."""


@security.command("kafka-acls")
@click.option(
    "--bootstrap", default="kafka:9093", show_default=True, help="Where kafka-acls.sh connects."
)
@click.option(
    "--command-config",
    default="admin.properties",
    show_default=True,
    help="kafka-acls.sh client properties holding the admin's SASL credentials.",
)
@output_format_option("sh", default="sh")
@friendly_errors
@ignored_data_dir_option
def security_kafka_acls(bootstrap: str, command_config: str, output_format: str) -> None:
    """Print kafka-acls.sh commands: producers write events, the worker reads them and writes
    the dead letters and alerts, the admin manages topics; nobody else gets anything."""
    from dataclasses import asdict

    from infra.security import kafka_acls, render_kafka_acls

    acls = kafka_acls(load(BrokerSettings), load(StreamSettings))
    if output_format == "json":
        emit_json({"acls": [asdict(acl) for acl in acls]})
        return
    click.echo(render_kafka_acls(acls, bootstrap, command_config), nl=False)


@security.command("clickhouse-roles")
@click.option(
    "--province",
    "provinces",
    multiple=True,
    required=True,
    help="A province (as in facilities.csv) that gets a read-only viewer role (repeatable).",
)
@output_format_option("sql", default="sql")
@friendly_errors
@ignored_data_dir_option
def security_clickhouse_roles(provinces: tuple[str, ...], output_format: str) -> None:
    """Print the ClickHouse DDL: ingest writer, auditor, and a viewer role per province whose
    row policies show only that province's facilities."""
    from infra.security import clickhouse_statements, render_clickhouse_roles

    database = load(ClickHouseSettings).database
    if output_format == "json":
        statements = clickhouse_statements(database, provinces)
        emit_json({"database": database, "provinces": list(provinces), "statements": statements})
        return
    click.echo(render_clickhouse_roles(database, provinces), nl=False)


@click.command("schema")
@click.option(
    "--cluster",
    envvar="OSTWATCH_CLICKHOUSE_CLUSTER",
    show_envvar=True,
    default="",
    help="Render for this cluster of remote_servers (Replicated + Distributed tables, "
    "ON CLUSTER); empty prints the single-node migrations exactly as they are applied.",
)
@click.option(
    "--database",
    envvar="OSTWATCH_CLICKHOUSE_DATABASE",
    show_envvar=True,
    default="ostwatch",
    show_default=True,
    help="Database the Distributed tables point at.",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["sql", "json"]),
    default="sql",
    show_default=True,
    help="sql: a script for clickhouse-client --multiquery; json: one JSON document.",
)
@friendly_errors
@ignored_data_dir_option
def schema_command(cluster: str, database: str, output_format: str) -> None:
    """Print the DDL `migrate` applies: every migration, in order (infra/cluster/README.md)."""
    from sinks.clickhouse import schema_statements
    from sinks.cluster import ClusterRenderError

    settings = load(ClickHouseSettings, cluster=cluster, database=database)
    try:
        rendered = schema_statements(settings.cluster, settings.database)
    except ClusterRenderError as exc:
        raise UserError(str(exc)) from exc
    if output_format == "json":
        emit_json(
            {
                "cluster": settings.cluster or None,
                "database": settings.database,
                "migrations": [{"name": n, "statements": s} for n, s in rendered],
            }
        )
        return
    mode = f"cluster {settings.cluster}" if settings.cluster else "one node"
    click.echo(f"-- ostwatch DDL for {mode}, database {settings.database} (`ostwatch schema`)")
    for name, statements in rendered:
        click.echo(f"\n-- {name}")
        for statement in statements:
            click.echo(f"{statement};")


@click.group("cluster")
def cluster_group() -> None:
    """The multi-node deployment: Kafka KRaft, replicated ClickHouse, Keeper (infra/cluster)."""


@cluster_group.command("config")
@click.option(
    "--out",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory to write the ClickHouse and Keeper XML into (e.g. infra/cluster).",
)
@click.option("--cluster", "name", default="ostwatch", show_default=True, help="Cluster name.")
@click.option("--shards", type=click.IntRange(1, 64), default=1, show_default=True)
@click.option("--replicas", type=click.IntRange(1, 9), default=3, show_default=True)
@click.option(
    "--keepers",
    type=click.Choice(["3", "5"]),
    default="3",
    show_default=True,
    help="ClickHouse Keeper nodes (an odd quorum).",
)
@format_option
@friendly_errors
@ignored_data_dir_option
def cluster_config(
    directory: Path, name: str, shards: int, replicas: int, keepers: str, output_format: str
) -> None:
    """Render every ClickHouse node's config.d (remote_servers, macros, Keeper list), the
    shared users.d profile and each Keeper node's keeper_config from one description."""
    from infra.cluster_config import Topology, write
    from sinks.cluster import ClusterRenderError, identifier

    try:
        identifier(name)
    except ClusterRenderError as exc:
        raise UserError(f"--cluster: {exc}") from exc
    topology = Topology(cluster=name, shards=shards, replicas=replicas, keepers=int(keepers))
    written = [str(path) for path in write(topology, directory)]
    emit({"written": written}, output_format, "\n".join(written))


COMMANDS = (security, schema_command, cluster_group)
