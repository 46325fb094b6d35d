"""The cluster DDL as ClickHouse's own parser reads it, beside a migrated single-node store.

chDB cannot create Replicated tables (no Keeper) nor run ON CLUSTER (no distributed DDL), so
the cluster statements cannot be applied here. What is checked instead: every statement of
both modes is accepted by the real parser (``formatQuery``), the parser's reading of each
cluster table has the Replicated engine with the keeper path and replica macros and a
Distributed twin on the same cluster, and the sharding key is a column of the table the
single-node migration actually created.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from sinks.clickhouse import schema_statements
from sinks.store import Store

pytestmark = pytest.mark.integration

CLUSTER = "ostwatch_national"
PROFILE = Path(__file__).resolve().parents[2] / "infra/cluster/clickhouse/users.d/ostwatch.xml"


def parsed(store: Store, statement: str) -> str:
    text: str = store.db.query_rows("SELECT formatQuery(%(q)s)", {"q": statement})[0][0]
    return text


@pytest.mark.parametrize("cluster", ["", CLUSTER])
def test_every_statement_of_both_modes_parses(store: Store, cluster: str) -> None:
    statements = [s for _, group in schema_statements(cluster, "ostwatch") for s in group]
    assert statements
    for statement in statements:
        formatted = parsed(store, statement)
        assert formatted.split()[0] in {"CREATE", "ALTER"}
        assert (f"ON CLUSTER {CLUSTER}" in formatted) == bool(cluster), formatted


def test_parser_sees_replicated_tables_with_distributed_twins(store: Store) -> None:
    database = store.db.database
    columns: dict[str, set[str]] = {}
    for table, column in store.db.query_rows(
        "SELECT table, name FROM system.columns WHERE database = %(db)s", {"db": database}
    ):
        columns.setdefault(table, set()).add(column)
    engines = dict(
        store.db.query_rows(
            "SELECT name, engine FROM system.tables WHERE database = %(db)s", {"db": database}
        )
    )
    locals_: dict[str, str] = {}
    twins: dict[str, tuple[str, str]] = {}
    for _, group in schema_statements(CLUSTER, database):
        for statement in (parsed(store, s) for s in group):
            local = re.match(
                r"CREATE TABLE IF NOT EXISTS (\w+)_local ON CLUSTER \w+\s.*"
                r"ENGINE = (Replicated\w*MergeTree)\('/clickhouse/tables/\{shard\}/\{database\}/"
                r"\{table\}', '\{replica\}'",
                statement,
                re.DOTALL,
            )
            twin = re.match(
                rf"CREATE TABLE IF NOT EXISTS (\w+) ON CLUSTER {CLUSTER} AS (\w+)\s+ENGINE = "
                rf"Distributed\('{CLUSTER}', '{database}', '(\w+)', cityHash64\((\w+)\)\)$",
                statement,
            )
            if local:
                locals_[local[1]] = local[2]
            elif twin:
                assert twin[2] == twin[3] == twin[1] + "_local", statement
                twins[twin[1]] = (twin[2], twin[4])
    # Every MergeTree-family table the single-node migration created, and only those.
    merge_tree = {name for name, engine in engines.items() if engine.endswith("MergeTree")}
    assert set(locals_) == set(twins) == merge_tree
    for name, replicated in locals_.items():
        assert replicated == "Replicated" + engines[name], name
        assert twins[name][1] in columns[name], (name, twins[name])


def test_cluster_profile_names_only_real_settings(store: Store) -> None:
    """infra/cluster's users.d profile: a misspelt setting would stop every node at start."""
    profile = ET.parse(PROFILE).getroot().find("profiles/default")  # noqa: S314 - our file
    assert profile is not None
    names = [child.tag for child in profile]
    known = {
        row[0]
        for row in store.db.query_rows(
            "SELECT name FROM system.settings WHERE name IN %(names)s", {"names": names}
        )
    }
    assert names and known == set(names), set(names) - known
