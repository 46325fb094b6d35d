"""Storage stays behind its repositories: statements are named .sql files, values never
reach their text, one column specification makes the archive row, and nothing outside
sinks/ holds the raw ClickHouse client."""

from __future__ import annotations

import ast
import re
from datetime import UTC, date, datetime
from pathlib import Path

import orjson
import pytest

from schemas.models import parse_event_dict
from sinks.archive_columns import ARCHIVE_COLUMNS, ARCHIVE_SPEC, archive_row, column_list
from sinks.queries import Sql, all_of, fill, identifier, sql, sql_text
from sinks.records import Accepted, MessageMeta
from tests.support.alert_events import dose, ev

ROOT = Path(__file__).resolve().parents[2]
# Another helper's module (the monthly report), and the renderer that rewrites our own
# migrations for a cluster: both assemble DDL/SQL from fixed parts on purpose.
NOT_YET = {"sinks/monthly.py", "sinks/cluster.py"}
SQL_START = re.compile(
    r"^\s*(SELECT|INSERT INTO|ALTER TABLE|CREATE (TABLE|VIEW|DATABASE)|DROP (TABLE|DATABASE)"
    r"|TRUNCATE|OPTIMIZE TABLE)\b|(?-i:\b(FROM|WHERE) \{)",
    re.IGNORECASE,
)


def _modules(*packages: str) -> list[Path]:
    return sorted(path for package in packages for path in (ROOT / package).rglob("*.py"))


def _named_statements() -> set[str]:
    """Every ``sql("<literal>")`` in sinks/."""
    names = set()
    for path in _modules("sinks"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "sql"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                names.add(str(node.args[0].value))
    return names


def test_every_named_statement_has_its_file() -> None:
    names = _named_statements()
    assert {"archive_count", "chain_filters.located", "submission_digests"} <= names
    for name in names:
        assert sql_text(name).strip(), name


def test_no_statement_in_sinks_is_built_in_an_f_string() -> None:
    found = []
    for path in _modules("sinks"):
        if path.relative_to(ROOT).as_posix() in NOT_YET:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.JoinedStr):
                text = "".join(
                    str(part.value) if isinstance(part, ast.Constant) else "{}"
                    for part in node.values
                )
                if SQL_START.search(text):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {text[:60]}")
    assert found == []


def test_a_value_cannot_fill_a_placeholder() -> None:
    with pytest.raises(TypeError, match="takes SQL"):
        sql("truncate", table="alerts; DROP TABLE alerts")  # type: ignore[arg-type]
    assert sql("truncate", table=identifier("alerts")) == "TRUNCATE TABLE `alerts`"
    # Not even a text equal to a part the cache has seen.
    with pytest.raises(TypeError, match="takes SQL"):
        sql("truncate", table="`alerts`")  # type: ignore[arg-type]


def test_an_identifier_is_a_name_and_nothing_more() -> None:
    for bad in ("alerts`; DROP TABLE x", "a b", "", "1abc", "db.table"):
        with pytest.raises(ValueError, match="not an identifier"):
            identifier(bad)


def test_a_placeholder_the_file_lacks_is_refused() -> None:
    with pytest.raises(ValueError, match=r"no \{tabel\} placeholder"):
        sql("truncate", tabel=identifier("alerts"))


def test_sections_and_conditions() -> None:
    assert sql("alert_filters.open") == "status = 'open'"
    assert all_of([sql("alert_filters.open"), Sql("x = 1")]) == "(status = 'open') AND (x = 1)"
    assert all_of([]) == "1"
    with pytest.raises(KeyError, match="no section"):
        sql("alert_filters.nothing")
    # Placeholders not given stay for a second fill.
    partial = fill(Sql("SELECT {a} FROM {b}"), "t", a=Sql("1"))
    assert fill(partial, "t", b=identifier("x")) == "SELECT 1 FROM `x`"


def test_comment_lines_never_reach_the_statement() -> None:
    # Client-side binding must not see the quotes of a comment.
    assert "--" not in sql_text("submission_digests")
    assert "--" not in sql_text("chain_filters.not_chained")


def test_the_archive_columns_are_the_migrated_table_columns() -> None:
    migrations = "".join(
        path.read_text(encoding="utf-8") for path in sorted((ROOT / "sinks/migrations").iterdir())
    )
    body = migrations.split("CREATE TABLE IF NOT EXISTS events_archive", 1)[1].split("ENGINE")[0]
    declared = re.findall(r"^\s*\(?\s*(\w+)\s+[A-Z]\w*", body, re.MULTILINE)
    added = re.findall(
        r"ALTER TABLE events_archive\s+ADD COLUMN (?:IF NOT EXISTS )?(\w+)", migrations
    )
    # Every column of the table, in its order: the specification is the table.
    assert tuple(declared + added) == ARCHIVE_COLUMNS


def test_the_archive_row_follows_the_specification() -> None:
    event = parse_event_dict(dose("05 08:30"))
    meta = MessageMeta("src", 7, "events", 2, 41, datetime(2024, 3, 5, 2, tzinfo=UTC))
    row = dict(zip(ARCHIVE_COLUMNS, archive_row(Accepted(event, meta)), strict=True))
    assert len(ARCHIVE_SPEC) == len(row) == 35
    assert row["local_date"] == date(2024, 3, 5)
    assert row["take_home_days"] == 1  # an observed dose covers its day
    assert (row["source"], row["seq"], row["kafka_partition"], row["kafka_offset"]) == (
        "src", 7, 2, 41,
    )  # fmt: skip
    assert row["expiry_date"] is None and row["quantity"] == 0.0 and row["results"] == {}
    assert orjson.loads(row["payload"])["event_id"] == event.event_id
    home = parse_event_dict(dose("05 09:00", days=3))
    assert (
        dict(zip(ARCHIVE_COLUMNS, archive_row(Accepted(home, meta)), strict=True))["take_home_days"]
        == 3
    )
    received = ev("stock.received", "05 10:00", item="MET10", quantity=5, lot="L1",
                  expiry_date="2025-01-01")  # fmt: skip
    stock = dict(
        zip(ARCHIVE_COLUMNS, archive_row(Accepted(parse_event_dict(received), meta)), strict=True)
    )
    assert stock["expiry_date"] == date(2025, 1, 1) and stock["take_home_days"] == 0
    assert stock["quantity"] == 5.0 and isinstance(stock["quantity"], float)
    with pytest.raises(ValueError, match="not archive columns"):
        column_list(["event_id", "name"])


def _reaches_raw_client(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (
            isinstance(node, ast.Attribute)
            and node.attr == "db"
            and ast.unparse(node.value).endswith("store")
        ):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
        if isinstance(node, ast.ImportFrom) and node.module == "sinks.clickhouse":
            clients = [alias.name for alias in node.names if alias.name == "ClickHouse"]
            found += [f"{path.relative_to(ROOT)}:{node.lineno}: imports {c}" for c in clients]
    return found


def test_nothing_outside_sinks_reaches_the_raw_client() -> None:
    # The benchmarks' synthetic-data generators and tamper steps write the archive
    # directly on purpose; their product-like steps go through repositories too.
    found = [hit for path in _modules("infra", "streams", "dashboards", "producers")
             for hit in _reaches_raw_client(path)]  # fmt: skip
    assert found == []


def test_the_raw_client_rule_sees_a_reach_through_the_store(tmp_path: Path) -> None:
    planted = ROOT / "streams" / "_planted_for_test.py"
    planted.write_text("def f(service):\n    return service.store.db.dsn\n", encoding="utf-8")
    try:
        assert _reaches_raw_client(planted) == ["streams/_planted_for_test.py:2: service.store.db"]
    finally:
        planted.unlink()
