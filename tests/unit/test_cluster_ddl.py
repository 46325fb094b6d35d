"""The cluster rendering of the migrations (sinks/cluster.py), checked on the text.

What ClickHouse's own parser says about the same statements is in
tests/integration/test_cluster_schema.py (it needs the engine).
"""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from infra.cli import main
from infra.security import store_tables
from ostwatch.settings import ClickHouseSettings, SettingsError, load
from sinks.clickhouse import SCHEMA_MIGRATIONS, migration_files, schema_statements, split_statements
from sinks.cluster import (
    KEEPER_PATH,
    ClusterRenderError,
    parse_table,
    render_statement,
    render_statements,
)

CLUSTER, DATABASE = "ostwatch", "ostwatch"


def creates() -> list[str]:
    """Every MergeTree-family CREATE TABLE that migrate runs, schema_migrations included."""
    statements = [SCHEMA_MIGRATIONS]
    for _, _, sql in migration_files():
        statements += split_statements(sql)
    return [s for s in statements if parse_table(s) is not None]


def test_single_node_statements_are_the_migrations_byte_for_byte() -> None:
    rendered = dict(schema_statements("", DATABASE))
    assert rendered.pop("schema_migrations") == [SCHEMA_MIGRATIONS]
    files = migration_files()
    assert list(rendered) == [name for _, name, _ in files]
    for _, name, sql in files:
        assert rendered[name] == split_statements(sql)


def test_every_table_of_the_migrations_is_rendered() -> None:
    # 20 tables in 0001-0010 plus schema_migrations: a table the regex missed would stay
    # single-node on a cluster without anyone noticing.
    names = {parse_table(s).name for s in creates()}  # type: ignore[union-attr]
    assert names == {*store_tables(), "schema_migrations"}
    assert len(names) == 21


@pytest.mark.parametrize("statement", creates(), ids=lambda s: parse_table(s).name)  # type: ignore[union-attr]
def test_each_table_becomes_a_replicated_local_table_and_a_distributed_twin(
    statement: str,
) -> None:
    table = parse_table(statement)
    assert table is not None
    local, distributed = render_statement(statement, CLUSTER, DATABASE)
    engine = re.search(r"ENGINE\s*=\s*(\w+)(?:\(([^()]*)\))?", statement)
    assert engine is not None
    original_args = (engine.group(2) or "").strip()
    expected_args = f"'{KEEPER_PATH}', '{{replica}}'" + (
        f", {original_args}" if original_args else ""
    )
    assert f"ENGINE = Replicated{engine.group(1)}({expected_args})" in local
    assert local.startswith(f"CREATE TABLE IF NOT EXISTS {table.name}_local ON CLUSTER {CLUSTER}\n")
    assert "non_replicated_deduplication_window" not in local
    # Columns, indexes, projections, partitioning and ordering are carried over untouched.
    body_and_keys = statement[statement.index("(") : engine.start()].strip()
    assert body_and_keys in local
    assert statement[engine.end() :].replace("non_", "") in local
    assert distributed == (
        f"CREATE TABLE IF NOT EXISTS {table.name} ON CLUSTER {CLUSTER} AS {table.name}_local\n"
        f"ENGINE = Distributed('{CLUSTER}', '{DATABASE}', '{table.name}_local', "
        f"cityHash64({table.sharding_column}))"
    )


def test_sharding_key_is_the_leading_sort_column_and_a_real_column() -> None:
    tables = store_tables()
    keys = {t.name: t.sharding_column for t in map(parse_table, creates()) if t is not None}
    assert keys["schema_migrations"] == "version"
    for name in (
        "events_archive",
        "dispensing_daily",
        "stock_daily",
        "tests_daily",
        "dispensing_items_daily",
    ):
        assert keys[name] == "facility_id"
    assert keys["archive_chain"] == "facility_id"
    assert keys["patient_timeline"] == keys["patient_events"] == keys["patient_states"]
    assert keys["patient_states"] == "patient_ref"
    assert keys["alerts"] == keys["alert_acks"] == "alert_id"
    assert keys["submissions"] == keys["submission_conflicts"] == "source"
    for name, column in keys.items():
        if name != "schema_migrations":
            assert column in tables[name], (name, column)


def test_column_alters_reach_both_tables_other_alters_only_the_local_one() -> None:
    column = "ALTER TABLE registry_versions\n    ADD COLUMN IF NOT EXISTS warnings Array(String)"
    assert render_statement(column, CLUSTER, DATABASE) == [
        "ALTER TABLE registry_versions_local ON CLUSTER ostwatch "
        "ADD COLUMN IF NOT EXISTS warnings Array(String)",
        "ALTER TABLE registry_versions ON CLUSTER ostwatch "
        "ADD COLUMN IF NOT EXISTS warnings Array(String)",
    ]
    index = "ALTER TABLE alerts ADD INDEX idx_kind kind TYPE set(16) GRANULARITY 1"
    assert render_statement(index, CLUSTER, DATABASE) == [
        "ALTER TABLE alerts_local ON CLUSTER ostwatch ADD INDEX idx_kind kind TYPE set(16) "
        "GRANULARITY 1"
    ]


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE MATERIALIZED VIEW IF NOT EXISTS mv TO t AS SELECT 1",
        "CREATE VIEW v AS SELECT * FROM alerts",
        "CREATE DICTIONARY d (k UInt8) PRIMARY KEY k SOURCE(NULL()) LAYOUT(FLAT()) LIFETIME(0)",
        "CREATE TABLE IF NOT EXISTS scratch (a UInt8) ENGINE = Memory",
        "INSERT INTO alerts VALUES",
    ],
)
def test_statements_without_a_cluster_rendering_are_refused(statement: str) -> None:
    assert render_statement(statement, "", DATABASE) == [statement]
    with pytest.raises(ClusterRenderError, match=r"extend sinks/cluster\.py"):
        render_statement(statement, CLUSTER, DATABASE)


def test_names_are_identifiers_not_sql() -> None:
    with pytest.raises(ClusterRenderError):
        render_statements([SCHEMA_MIGRATIONS], "c; DROP TABLE alerts", DATABASE)
    with pytest.raises(SettingsError, match="OSTWATCH_CLICKHOUSE_CLUSTER"):
        load(ClickHouseSettings, cluster="two words")


def test_the_cluster_is_a_setting_off_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OSTWATCH_CLICKHOUSE_CLUSTER", raising=False)
    assert ClickHouseSettings().cluster == ""
    monkeypatch.setenv("OSTWATCH_CLICKHOUSE_CLUSTER", "national")
    assert ClickHouseSettings().cluster == "national"


def test_schema_command_prints_both_modes() -> None:
    runner = CliRunner()
    single = runner.invoke(main, ["schema"], env={"OSTWATCH_CLICKHOUSE_CLUSTER": ""})
    assert single.exit_code == 0, single.output
    assert "ON CLUSTER" not in single.output
    assert f"{SCHEMA_MIGRATIONS};" in single.output
    cluster = runner.invoke(main, ["schema", "--cluster", "national", "--format", "json"])
    assert cluster.exit_code == 0, cluster.output
    import json

    doc = json.loads(cluster.output)
    statements = [s for m in doc["migrations"] for s in m["statements"]]
    assert doc["cluster"] == "national"
    assert all(" ON CLUSTER national" in s for s in statements)
    assert sum("ENGINE = Distributed(" in s for s in statements) == 21
    bad = runner.invoke(main, ["schema", "--cluster", "x y"])
    assert bad.exit_code != 0
    assert bad.output.count("\n") == 1 and "OSTWATCH_CLICKHOUSE_CLUSTER" in bad.output


def test_migration_versions_are_unique() -> None:
    """``migrate`` records a version as applied: two files of one version (say two branches
    that each added the next number) would leave the second unapplied on an existing store."""
    versions = [version for version, _, _ in migration_files()]
    assert len(versions) == len(set(versions)), versions
