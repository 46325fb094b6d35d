"""Least-privilege layouts for production: Kafka ACLs and ClickHouse roles, rendered as text.

Neither can be applied on the embedded stack (Tansu has no SASL or ACLs; chDB has no access
management), so both are rendered here for an operator to run against the real cluster and
checked statically by tests: the ACL file's rules by ``tests/unit/test_security_layout.py``,
every ClickHouse statement by the real ClickHouse parser (``formatQuery`` in chDB) and every
row-policy condition by running it against a migrated embedded store.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from ostwatch.access import (
    AUDITOR_ROLE,
    INGEST_ROLE,
    READ_ONLY_PROFILE,
    viewer_role,
)
from ostwatch.settings import BrokerSettings, StreamSettings
from sinks.clickhouse import migration_files, split_statements

ACL_FILE = "kafka_acls.toml"
RESOURCE_FLAGS = {"topic": "--topic", "group": "--group", "cluster": "--cluster"}
# Tables a viewer never reads: rejected submissions (what facilities got wrong, for
# operators), the migration log, and each patient's states across facilities (one row per
# patient, no facility_id a province's row policy could filter on).
VIEWER_EXCLUDED_TABLES = frozenset({"submissions", "schema_migrations", "patient_states"})
# The row policies read the facility → province map from here, so it carries no policy itself
# (facility names and places are not personal data).
POLICY_EXEMPT_TABLES = frozenset({"registry_facilities"})
# The archive and what explains it, for the auditor.
AUDITOR_TABLE_PREFIXES = ("events_archive", "submissions", "registry_", "patient_timeline")
_CREATE_TABLE_RE = re.compile(
    r"CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?`?(\w+)`?\s*\((.*?)\)\s*ENGINE",
    re.IGNORECASE | re.DOTALL,
)


@dataclass(frozen=True)
class KafkaAcl:
    """One allow rule: principal × resource (type, name, pattern) × operations."""

    principal: str
    resource: str
    name: str
    pattern: str
    operations: tuple[str, ...]


def kafka_acls(broker: BrokerSettings, stream: StreamSettings) -> list[KafkaAcl]:
    """The ACL layout of ``infra/kafka_acls.toml`` with the configured topic and group names."""
    layout: dict[str, Any] = tomllib.loads(
        resources.files("infra").joinpath(ACL_FILE).read_text(encoding="utf-8")
    )
    names = {
        "events_topic": broker.events_topic,
        "dead_letter_topic": broker.dead_letter_topic,
        "alerts_topic": broker.alerts_topic,
        "group_id": stream.group_id,
    }
    principals: Mapping[str, str] = layout["principals"]
    return [
        KafkaAcl(
            principal=principals[rule["principal"]],
            resource=rule["resource"],
            name=rule["name"].format(**names),
            pattern=rule.get("pattern", "literal"),
            operations=tuple(rule["operations"]),
        )
        for rule in layout["acl"]
    ]


def render_kafka_acls(acls: Iterable[KafkaAcl], bootstrap: str, command_config: str) -> str:
    """A shell script of ``kafka-acls.sh --add`` commands, run with the admin's credentials."""
    lines = [
        "#!/bin/sh",
        "# ostwatch Kafka ACLs (rendered by `ostwatch security kafka-acls`).",
        "set -eu",
    ]
    for acl in acls:
        words = [
            "kafka-acls.sh",
            "--bootstrap-server",
            bootstrap,
            "--command-config",
            command_config,
            "--add",
            "--allow-principal",
            acl.principal,
        ]
        for operation in acl.operations:
            words += ["--operation", operation]
        words.append(RESOURCE_FLAGS[acl.resource])
        if acl.resource != "cluster":
            words.append(acl.name)
        words += ["--resource-pattern-type", acl.pattern]
        lines.append(" ".join(shlex.quote(word) for word in words))
    return "\n".join(lines) + "\n"


# -- ClickHouse -------------------------------------------------------------------------------


def store_tables() -> dict[str, list[str]]:
    """Every table the migrations create, with its column names (in migration order)."""
    tables: dict[str, list[str]] = {}
    for _, _, sql in migration_files():
        for statement in split_statements(sql):
            match = _CREATE_TABLE_RE.search(statement)
            if match:
                columns = [
                    line.split()[0].strip("`")
                    for line in match.group(2).splitlines()
                    if line.strip() and not line.strip().startswith(("--", "INDEX", "PROJECTION"))
                ]
                tables[match.group(1)] = columns
    return tables


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def province_condition(database: str, province: str) -> str:
    """The row-policy condition of a province: facilities of the newest registry version."""
    # DDL text for an operator; the province is quoted as a literal.
    return (
        f"facility_id IN (SELECT facility_id FROM {database}.registry_facilities "  # noqa: S608
        f"WHERE province = {_quote(province)} AND version = "
        f"(SELECT max(version) FROM {database}.registry_versions))"
    )


def clickhouse_statements(database: str, provinces: Iterable[str]) -> list[str]:
    """Roles, grants and row policies: the ingest writer, the auditor, a viewer per province.

    Users are not created here (their passwords belong in the operator's secret store):
    docs/operations.md "Security" shows the CREATE USER for each role.
    """
    tables = store_tables()
    with_facility = [
        name
        for name, columns in tables.items()
        if "facility_id" in columns and name not in POLICY_EXEMPT_TABLES
    ]
    auditor_tables = [name for name in tables if name.startswith(AUDITOR_TABLE_PREFIXES)]
    viewer_tables = [name for name in tables if name not in VIEWER_EXCLUDED_TABLES]
    statements = [
        f"CREATE SETTINGS PROFILE IF NOT EXISTS {READ_ONLY_PROFILE} SETTINGS readonly = 2",
        f"CREATE ROLE IF NOT EXISTS {INGEST_ROLE}",
        "GRANT SELECT, INSERT, ALTER TABLE, CREATE TABLE, CREATE VIEW, TRUNCATE, OPTIMIZE "
        f"ON {database}.* TO {INGEST_ROLE}",
        f"CREATE ROLE IF NOT EXISTS {AUDITOR_ROLE} SETTINGS PROFILE {READ_ONLY_PROFILE}",
        *(f"GRANT SELECT ON {database}.{table} TO {AUDITOR_ROLE}" for table in auditor_tables),
        # Once a table has row policies, only rows some policy allows are visible: the writer
        # and the auditor see every row.
        "CREATE ROW POLICY IF NOT EXISTS ostwatch_all_rows ON "
        + ", ".join(f"{database}.{table}" for table in with_facility)
        + f" FOR SELECT USING 1 TO {INGEST_ROLE}, {AUDITOR_ROLE}",
    ]
    for province in provinces:
        role = viewer_role(province)
        statements += [
            f"CREATE ROLE IF NOT EXISTS {role} SETTINGS PROFILE {READ_ONLY_PROFILE}",
            *(f"GRANT SELECT ON {database}.{table} TO {role}" for table in viewer_tables),
            f"CREATE ROW POLICY IF NOT EXISTS {role} ON "
            + ", ".join(f"{database}.{table}" for table in with_facility if table in viewer_tables)
            + f" FOR SELECT USING {province_condition(database, province)} TO {role}",
        ]
    return statements


def render_clickhouse_roles(database: str, provinces: Iterable[str]) -> str:
    """The statements as one SQL script for ``clickhouse-client --multiquery``."""
    header = "-- ostwatch ClickHouse roles (rendered by `ostwatch security clickhouse-roles`).\n"
    return header + "".join(f"{s};\n" for s in clickhouse_statements(database, provinces))
