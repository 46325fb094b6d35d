"""ClickHouse roles and row policies, checked on the real engine as far as chDB allows.

chDB has no access management (its user may not CREATE ROLE/USER/ROW POLICY), so the DDL
cannot be applied here. What is checked instead: every statement is accepted by ClickHouse's
own parser (``formatQuery``), every table it names exists in a migrated store, and each row
policy's condition, run as a WHERE clause on every table it guards, keeps exactly the rows of
its province's facilities.
"""

from __future__ import annotations

import re

import pytest

from infra.security import clickhouse_statements, province_condition
from sinks.store import Store
from tests.support.intake import REGISTRY_DIR, REGISTRY_FILES

pytestmark = pytest.mark.integration

OTHER = "CDC-DT,Trung tâm Kiểm soát bệnh tật tỉnh Đồng Tháp,provincial_cdc,,,Đồng Tháp\n"
PROVINCES = ("Bắc Giang", "Đồng Tháp")


@pytest.fixture
def two_provinces(store: Store) -> Store:
    texts = {name: (REGISTRY_DIR / name).read_text(encoding="utf-8") for name in REGISTRY_FILES}
    texts["facilities.csv"] = texts["facilities.csv"].rstrip("\n") + "\n" + OTHER
    store.load_registry(texts, source="test")
    return store


def test_chdb_has_no_access_management(store: Store) -> None:
    # If this starts passing, chDB gained access control: apply the DDL here instead.
    with pytest.raises(Exception, match=r"ACCESS_DENIED|Not enough privileges"):
        store.db.command("CREATE ROLE IF NOT EXISTS ostwatch_probe_role")


def test_every_statement_parses_and_names_existing_tables(store: Store) -> None:
    database = store.db.database
    statements = clickhouse_statements(database, PROVINCES)
    existing = {
        row[0]
        for row in store.db.query_rows(
            "SELECT name FROM system.tables WHERE database = %(db)s", {"db": database}
        )
    }
    for statement in statements:
        formatted = store.db.query_rows("SELECT formatQuery(%(q)s)", {"q": statement})[0][0]
        assert formatted.split()[0] in {"CREATE", "GRANT"}
        for table in re.findall(rf"\b{database}\.(\w+)", statement):
            assert table in existing, (table, statement)
    kinds = [" ".join(s.split()[:2]) for s in statements]
    assert kinds.count("CREATE ROLE") == 2 + len(PROVINCES)
    assert kinds.count("CREATE ROW") == 1 + len(PROVINCES)


def test_viewers_never_read_rejected_lines_and_the_auditor_reads_the_archive(
    store: Store,
) -> None:
    statements = clickhouse_statements("db", PROVINCES)
    viewer_grants = [s for s in statements if s.startswith("GRANT") and "ostwatch_viewer_" in s]
    assert viewer_grants and not any("db.submissions " in s for s in viewer_grants)
    assert "GRANT SELECT ON db.events_archive TO ostwatch_auditor" in statements
    auditor = [s for s in statements if s.endswith("TO ostwatch_auditor") and "GRANT" in s]
    assert all(s.startswith("GRANT SELECT ON") for s in auditor)  # read-only
    assert not any("INSERT" in s for s in statements if "viewer" in s or "auditor" in s)


@pytest.mark.parametrize(
    ("province", "expected"),
    [
        (
            "Bắc Giang",
            {"CDC-01", "DHC-01", "DHC-02", "TF-01", "TF-02", "DP-01", "CHS-01", "PSY-01"},
        ),
        ("Đồng Tháp", {"CDC-DT"}),
        ("Nowhere", set()),
    ],
)
def test_row_policy_condition_keeps_only_its_provinces_facilities(
    two_provinces: Store, province: str, expected: set[str]
) -> None:
    db = two_provinces.db
    condition = province_condition(db.database, province)
    every = (
        "arrayJoin(['CDC-01','DHC-01','DHC-02','TF-01','TF-02','DP-01','CHS-01','PSY-01','CDC-DT'])"
    )
    kept = {
        row[0]
        for row in db.query_rows(
            f"SELECT facility_id FROM (SELECT {every} AS facility_id) WHERE {condition}"  # noqa: S608
        )
    }
    assert kept == expected
    # and the condition runs on every table its policy guards
    policy = next(
        s
        for s in clickhouse_statements(db.database, [province])
        if "ROW POLICY" in s and "ostwatch_viewer_" in s
    )
    for table in re.findall(rf"\b{db.database}\.(\w+)", policy.split(" FOR SELECT")[0]):
        db.query_rows(f"SELECT count() FROM {db.database}.{table} WHERE {condition}")  # noqa: S608
