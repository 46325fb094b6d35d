"""The migrations rendered for a ClickHouse cluster (``OSTWATCH_CLICKHOUSE_CLUSTER``).

Single-node ostwatch keeps each table as one MergeTree-family table. On a cluster every such
table becomes two, so that the application's queries and inserts stay exactly as they are:

- ``NAME_local`` on every node, ``ON CLUSTER``, with the Replicated twin of its engine
  (``ReplacingMergeTree(v)`` → ``ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/
  {database}/{table}', '{replica}', v)``), its columns, indexes, projections and keys unchanged;
- ``NAME``, a ``Distributed`` table over ``NAME_local`` on every shard, which is the name the
  application reads and writes.

Sharding key: ``cityHash64`` of the table's leading ORDER BY column. That column is a prefix of
the sorting key, which for the Replacing/Aggregating engines is the identity rows collapse on,
so every version of a row lands on one shard and ``FINAL`` (applied per shard) stays exact. It
is also the column the queries select by: ``facility_id`` for the archive, the daily
aggregates and the hash chain (a facility's reports and chain read one shard), ``patient_ref``
for the patient timeline and events (one patient's history, which the double-dosing checks
read, on one shard), ``alert_id`` for alerts, ``source`` for submissions (one ingest run's
counts), ``version`` for registry loads.

Statements the renderer does not know (views, dictionaries, materialized views, inserts …)
are refused rather than passed through, so a new migration cannot silently skip the cluster.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

LOCAL_SUFFIX = "_local"
KEEPER_PATH = "/clickhouse/tables/{shard}/{database}/{table}"
REPLICA_NAME = "{replica}"

_CREATE_TABLE = re.compile(
    r"^CREATE TABLE IF NOT EXISTS (?P<name>\w+)\s*(?P<body>\(.*\))\s*"
    r"ENGINE\s*=\s*(?P<engine>\w*MergeTree)(?:\((?P<args>[^()]*)\))?(?P<tail>.*)$",
    re.DOTALL,
)
_ORDER_BY = re.compile(r"\bORDER BY\s*\(?\s*(?P<column>\w+)")
_ALTER_TABLE = re.compile(r"^ALTER TABLE (?P<name>\w+)\s+(?P<rest>.*)$", re.DOTALL)
# Column changes apply to the Distributed table too (it must know every column to route and
# read it); index, projection and data mutations exist only on the local tables.
_COLUMN_ALTER = re.compile(r"^(ADD|DROP|MODIFY|RENAME|COMMENT) COLUMN\b")
_CREATE_DATABASE = re.compile(r"^CREATE DATABASE IF NOT EXISTS (?P<name>`?\w+`?)$")


class ClusterRenderError(ValueError):
    """A migration statement has no cluster rendering (extend sinks/cluster.py for it)."""


@dataclass(frozen=True)
class ClusterTable:
    """One application table as the cluster keeps it."""

    name: str
    engine: str
    replicated_engine: str
    sharding_column: str

    @property
    def local(self) -> str:
        return self.name + LOCAL_SUFFIX


def identifier(text: str) -> str:
    """``text`` if it is a plain ClickHouse identifier (names are pasted into DDL)."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", text):
        raise ClusterRenderError(f"not a plain ClickHouse identifier: {text!r}")
    return text


def parse_table(statement: str) -> ClusterTable | None:
    """The cluster layout of a ``CREATE TABLE … ENGINE = *MergeTree`` statement, else None."""
    match = _CREATE_TABLE.match(statement.strip())
    if not match:
        return None
    order = _ORDER_BY.search(match["tail"])
    if not order:
        raise ClusterRenderError(f"{match['name']}: no ORDER BY to derive a sharding key from")
    return ClusterTable(
        name=match["name"],
        engine=match["engine"],
        replicated_engine="Replicated" + match["engine"],
        sharding_column=order["column"],
    )


def _replicated_create(statement: str, cluster: str, database: str) -> list[str]:
    match = _CREATE_TABLE.match(statement.strip())
    table = parse_table(statement)
    if match is None or table is None:
        raise ClusterRenderError(f"not a MergeTree-family CREATE TABLE: {statement[:60]!r}")
    arguments = [f"'{KEEPER_PATH}'", f"'{REPLICA_NAME}'"]
    if match["args"] and match["args"].strip():
        arguments.append(match["args"].strip())
    # Replicated tables deduplicate retried inserts (insert_deduplication_token) through
    # Keeper; the window setting of the non-replicated engines has a replicated counterpart.
    tail = match["tail"].replace(
        "non_replicated_deduplication_window", "replicated_deduplication_window"
    )
    local = (
        f"CREATE TABLE IF NOT EXISTS {table.local} ON CLUSTER {cluster}\n{match['body']}\n"
        f"ENGINE = {table.replicated_engine}({', '.join(arguments)}){tail}"
    )
    distributed = (
        f"CREATE TABLE IF NOT EXISTS {table.name} ON CLUSTER {cluster} AS {table.local}\n"
        f"ENGINE = Distributed('{cluster}', '{database}', '{table.local}', "
        f"cityHash64({table.sharding_column}))"
    )
    return [local, distributed]


def _alter(match: re.Match[str], cluster: str) -> list[str]:
    name, rest = match["name"], match["rest"]
    rendered = [f"ALTER TABLE {name}{LOCAL_SUFFIX} ON CLUSTER {cluster} {rest}"]
    if _COLUMN_ALTER.match(rest):
        rendered.append(f"ALTER TABLE {name} ON CLUSTER {cluster} {rest}")
    return rendered


def render_statement(statement: str, cluster: str, database: str) -> list[str]:
    """The statements to run instead of ``statement``; itself alone when ``cluster`` is empty."""
    if not cluster:
        return [statement]
    cluster, database = identifier(cluster), identifier(database)
    text = statement.strip()
    if parse_table(text) is not None:
        return _replicated_create(text, cluster, database)
    if alter := _ALTER_TABLE.match(text):
        return _alter(alter, cluster)
    if create_database := _CREATE_DATABASE.match(text):
        return [f"CREATE DATABASE IF NOT EXISTS {create_database['name']} ON CLUSTER {cluster}"]
    raise ClusterRenderError(
        "no cluster rendering for a statement starting "
        f"{' '.join(text.split()[:4])!r}; extend sinks/cluster.py before adding it to a migration"
    )


def render_statements(statements: list[str], cluster: str, database: str) -> list[str]:
    """Every statement rendered in order (unchanged when ``cluster`` is empty)."""
    return [
        out for statement in statements for out in render_statement(statement, cluster, database)
    ]
