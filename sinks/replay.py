"""Replay: rebuild every aggregate from the archive into a fresh store and compare.

The archive is the system of record and every aggregate row is a pure function of it, so
a store rebuilt from the archive alone must equal the live one. ``verify`` builds such a
store as another database beside the live one (chDB allows one data directory per
process), reading the live archive through a view instead of copying millions of rows,
rebuilds the aggregates there with the same SQL the worker uses, and compares table by
table and report by report. Any difference names its table, key, column and both values.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import orjson

from sinks.clickhouse import ClickHouse
from sinks.queries import Sql, identifier, identifiers, join, label, sql
from sinks.reports import Scope
from sinks.store import Store

log = logging.getLogger(__name__)

DEFAULT_LIMIT = 100

# Key columns of each aggregate table: a row is identified by these, compared on the rest.
AGGREGATE_KEYS: dict[str, tuple[str, ...]] = {
    "dispensing_daily": ("facility_id", "local_date"),
    "stock_daily": ("facility_id", "item", "local_date"),
    "dispensing_items_daily": ("facility_id", "item", "local_date"),
    "tests_daily": ("facility_id", "local_date"),
    "patient_timeline": ("patient_ref", "occurred_at", "event_id", "facility_id"),
    "archive_bounds": ("key",),
}
# Each report's rows are identified by these fields.
REPORT_KEYS: dict[str, tuple[str, ...]] = {
    "stock": ("facility_id", "item"),
    "dispensing": ("facility_id", "date"),
    "patients": ("facility_id", "programme"),
    "tests": ("facility_id", "month"),
    "targets": ("facility_id", "year"),
}
# Float sums may be added up in another order by another plan; closer than this is equal.
REL_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Difference:
    """One disagreement between the live store and the replay.

    ``column`` is ``"(row)"`` when the row exists on one side only; the values then say
    ``"present"`` or ``"missing"``.
    """

    table: str
    key: dict[str, Any]
    column: str
    live: Any
    replayed: Any


@dataclass(frozen=True)
class Verification:
    equal: bool
    differences: list[Difference]
    difference_count: int
    checked: dict[str, int]  # table or report → rows compared (live side)
    events: int
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "equal": self.equal,
            "differences": [asdict(d) for d in self.differences],
            "difference_count": self.difference_count,
            "checked": self.checked,
            "events": self.events,
            "seconds": round(self.seconds, 3),
        }


def _table_rows(table: str, database: str) -> Sql:
    """How a table of a database is read as one row per key."""
    db = identifier(database)
    if table == "archive_bounds":
        return sql("replay_rows.archive_bounds", db=db)
    return sql("replay_rows.final", db=db, table=identifier(table))


@contextmanager
def scratch_store(live: ClickHouse, purpose: str = "replay") -> Iterator[Store]:
    """A fresh, migrated database beside the live one, its archive a view of the live
    archive and its registry a copy; dropped afterwards whatever happens."""
    database = f"{live.database}_{purpose}_{uuid.uuid4().hex[:10]}"
    db = live.sibling(database)
    source = identifier(live.database)
    try:
        store = Store(db)
        store.migrate()
        db.command(sql("replay_scratch.drop_archive"))
        db.command(sql("replay_scratch.archive_view", live=source))
        for (table,) in live.query_rows(
            sql("replay_scratch.registry_tables"), {"db": live.database}
        ):
            db.command(sql("replay_scratch.copy_table", table=identifier(table), live=source))
        yield store
    finally:
        db.command(sql("replay_scratch.drop", database=identifier(database)))
        db.close()


def _compare_sql(
    table: str, live_db: str, replay_db: str, columns: Sequence[tuple[str, str]]
) -> Sql:
    """One query listing every (key, column) whose live and replayed values differ."""
    keys = AGGREGATE_KEYS[table]
    checks = [sql("replay_checks.row")]
    for name, type_name in columns:
        if name not in keys:
            kind = "float" if "Float" in type_name else "exact"
            checks.append(sql(f"replay_checks.{kind}", label=label(name), name=identifier(name)))
    return sql(
        "replay_compare",
        key_json=join(sql("replay_checks.key_json", name=identifier(k)) for k in keys),
        live=_table_rows(table, live_db),
        replayed=_table_rows(table, replay_db),
        keys=identifiers(keys),
        checks=join(checks),
    )


def _json(text: str) -> Any:
    return orjson.loads(text) if text not in ("present", "missing") else text


def compare_tables(
    live: ClickHouse, replay: ClickHouse, limit: int
) -> tuple[list[Difference], int, dict[str, int]]:
    """Differences between the aggregate tables of two databases (up to ``limit``)."""
    differences: list[Difference] = []
    total = 0
    checked: dict[str, int] = {}
    for table, keys in AGGREGATE_KEYS.items():
        columns = live.query_rows(sql("replay_rows.columns"), {"db": live.database, "t": table})
        rows_sql = _table_rows(table, live.database)
        checked[table] = int(live.query_rows(sql("replay_rows.count", rows=rows_sql))[0][0])
        rows = live.query_rows(
            _compare_sql(table, live.database, replay.database, columns), {"limit": max(limit, 1)}
        )
        if not rows:
            continue
        total += int(rows[0][4])
        for key, column, live_value, replayed, _ in rows[: max(limit - len(differences), 0)]:
            differences.append(
                Difference(
                    table,
                    {name: orjson.loads(value) for name, value in zip(keys, key, strict=True)},
                    column,
                    _json(live_value),
                    _json(replayed),
                )
            )
    return differences, total, checked


def _same(left: Any, right: Any) -> bool:
    if isinstance(left, float) and isinstance(right, float):
        return math.isclose(left, right, rel_tol=REL_TOLERANCE, abs_tol=1e-6)
    return bool(left == right)


def compare_reports(
    name: str, live_rows: Sequence[Mapping[str, Any]], replayed_rows: Sequence[Mapping[str, Any]]
) -> list[Difference]:
    """Field-by-field differences between two answers of the same report."""
    keys = REPORT_KEYS[name]
    table = f"report {name}"

    def index(rows: Sequence[Mapping[str, Any]]) -> dict[tuple[Any, ...], Mapping[str, Any]]:
        return {tuple(row[k] for k in keys): row for row in rows}

    live, replayed = index(live_rows), index(replayed_rows)
    found: list[Difference] = []
    for key in sorted(live.keys() | replayed.keys(), key=repr):
        named = dict(zip(keys, key, strict=True))
        left, right = live.get(key), replayed.get(key)
        if left is None or right is None:
            found.append(
                Difference(
                    table,
                    named,
                    "(row)",
                    "missing" if left is None else "present",
                    "missing" if right is None else "present",
                )
            )
            continue
        for column in sorted(left.keys() | right.keys()):
            if column not in keys and not _same(left.get(column), right.get(column)):
                found.append(Difference(table, named, column, left.get(column), right.get(column)))
    return found


def verify(live: Store, limit: int = DEFAULT_LIMIT) -> Verification:
    """Rebuild every aggregate from the archive into a fresh store and compare it with the
    live store: the aggregate tables row by row, then every report (latest T, whole scope).

    Meant for a quiet moment: events archived while it runs may be in one side only.
    """
    started = time.monotonic()
    events = live.archive.count()
    with scratch_store(live.db) as replayed:
        replayed.aggregates.rebuild()
        differences, total, checked = compare_tables(live.db, replayed.db, limit)
        for name in REPORT_KEYS:
            live_rows = getattr(live.reports(), name)(None, Scope())
            replayed_rows = getattr(replayed.reports(), name)(None, Scope())
            checked[f"report {name}"] = len(live_rows)
            found = compare_reports(name, live_rows, replayed_rows)
            total += len(found)
            differences.extend(found[: max(limit - len(differences), 0)])
    seconds = time.monotonic() - started
    log.info(
        "replay verify: %d events, %d differences in %.1f s",
        events,
        total,
        seconds,
        extra={"events": events, "differences": total},
    )
    return Verification(total == 0, differences, total, checked, events, seconds)
