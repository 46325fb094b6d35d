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

from sinks.aggregates import AGGREGATE_BY_TABLE, Aggregates
from sinks.clickhouse import ClickHouse
from sinks.reports import Reports, Scope
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
# How each table is read as one row per key (FINAL collapses ReplacingMergeTree versions).
_TABLE_ROWS: dict[str, str] = {
    **{table: f"SELECT * FROM {{db}}.{table} FINAL" for table in AGGREGATE_BY_TABLE},  # noqa: S608
    "patient_timeline": "SELECT * FROM {db}.patient_timeline FINAL",
    "archive_bounds": (
        "SELECT key, max(latest_occurred_at) AS latest_occurred_at, "
        "min(earliest_occurred_at) AS earliest_occurred_at FROM {db}.archive_bounds GROUP BY key"
    ),
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


def _q(name: str) -> str:
    return f"`{name}`"


@contextmanager
def scratch_store(live: ClickHouse, purpose: str = "replay") -> Iterator[Store]:
    """A fresh, migrated database beside the live one, its archive a view of the live
    archive and its registry a copy; dropped afterwards whatever happens."""
    database = f"{live.database}_{purpose}_{uuid.uuid4().hex[:10]}"
    db = live.sibling(database)
    try:
        store = Store(db)
        store.migrate()
        # Later migrations may hang views on the archive table; the view replacing it keeps
        # the same name and columns.
        db.command("DROP TABLE events_archive SETTINGS check_table_dependencies = 0")
        db.command(
            f"CREATE VIEW events_archive AS SELECT * FROM {_q(live.database)}.events_archive"  # noqa: S608
        )
        for (table,) in live.query_rows(
            "SELECT name FROM system.tables WHERE database = %(db)s "
            "AND startsWith(name, 'registry') AND engine NOT IN ('View', 'MaterializedView')",
            {"db": live.database},
        ):
            copy = f"INSERT INTO {_q(table)} SELECT * FROM {_q(live.database)}.{_q(table)}"  # noqa: S608
            db.command(copy)
        yield store
    finally:
        db.command(f"DROP DATABASE IF EXISTS {_q(database)}")
        db.close()


def _compare_sql(
    table: str, live_db: str, replay_db: str, columns: Sequence[tuple[str, str]]
) -> str:
    """One query listing every (key, column) whose live and replayed values differ."""
    keys = AGGREGATE_KEYS[table]
    checks = [
        "tuple('(row)', if(l._in = 1, 'present', 'missing'), "
        "if(r._in = 1, 'present', 'missing'), l._in != r._in)"
    ]
    for name, type_name in columns:
        if name in keys:
            continue
        left, right = f"l.{_q(name)}", f"r.{_q(name)}"
        if "Float" in type_name:
            largest = f"greatest(1., abs({left}), abs({right}))"
            same = f"abs({left} - {right}) <= {REL_TOLERANCE} * {largest}"
        else:
            same = f"toJSONString({left}) = toJSONString({right})"
        checks.append(
            f"tuple('{name}', toJSONString({left}), toJSONString({right}), "
            f"l._in = 1 AND r._in = 1 AND NOT ({same}))"
        )
    key_json = ", ".join(f"toJSONString({_q(k)})" for k in keys)
    rows = _TABLE_ROWS[table]
    return f"""
        SELECT [{key_json}] AS key, d.1 AS column, d.2 AS live, d.3 AS replayed,
               count() OVER () AS total
        FROM (SELECT *, toUInt8(1) AS _in FROM ({rows.format(db=_q(live_db))})) AS l
        FULL OUTER JOIN (SELECT *, toUInt8(1) AS _in FROM ({rows.format(db=_q(replay_db))})) AS r
            USING ({", ".join(_q(k) for k in keys)})
        ARRAY JOIN arrayFilter(x -> x.4, [{", ".join(checks)}]) AS d
        ORDER BY key, column
        LIMIT %(limit)s
        SETTINGS join_use_nulls = 0, output_format_json_quote_64bit_integers = 0
    """  # noqa: S608 - table and column names come from our own schema


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
        columns = live.query_rows(
            "SELECT name, type FROM system.columns WHERE database = %(db)s AND table = %(t)s "
            "ORDER BY position",
            {"db": live.database, "t": table},
        )
        checked[table] = int(
            live.query_rows(
                f"SELECT count() FROM ({_TABLE_ROWS[table].format(db=_q(live.database))})"  # noqa: S608
            )[0][0]
        )
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
    events = int(live.db.query_rows("SELECT count() FROM events_archive")[0][0])
    with scratch_store(live.db) as replayed:
        Aggregates(replayed.db).rebuild()
        differences, total, checked = compare_tables(live.db, replayed.db, limit)
        for name in REPORT_KEYS:
            live_rows = getattr(Reports(live.db, live.registry, "aggregates"), name)(None, Scope())
            replayed_rows = getattr(Reports(replayed.db, replayed.registry, "aggregates"), name)(
                None, Scope()
            )
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
