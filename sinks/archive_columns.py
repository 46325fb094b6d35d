"""The one specification of an ``events_archive`` row: each column, how an accepted event
fills it, and whether the hash chain covers it.

The intake's INSERT column list, the row tuple, the chain's content hash, the portable
archive's SELECT and the alert judge's patient rows are all derived from ``ARCHIVE_SPEC``,
so a column is added in one place (and in a migration).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

import orjson

from ostwatch.timeutil import LOCAL_TZ
from sinks.queries import Sql, identifiers
from sinks.records import Accepted

# What a column reads: the accepted event (with its Kafka metadata) and its contract dict.
Reader = Callable[[Accepted, dict[str, Any]], Any]


@dataclass(frozen=True)
class ArchiveColumn:
    """One archive column. ``chained``: covered by the chain's content hash; the hash is
    frozen as of chain format 1, so a column added later must say ``chained=False``."""

    name: str
    read: Reader
    chained: bool = True


def _field(
    name: str, default: Any, cast: Callable[[Any], Any] = lambda value: value
) -> ArchiveColumn:
    """A typed column filled from the contract field of the same name, or ``default`` when
    the event type has no such field."""
    return ArchiveColumn(name, lambda _item, doc: cast(doc.get(name, default)))


def _take_home_days(item: Accepted, doc: dict[str, Any]) -> int:
    # An observed dose covers its one day.
    dispensed = item.event.event_type == "dose.dispensed"
    return int(doc.get("take_home_days", 0) or (1 if dispensed else 0))


def _expiry(_item: Accepted, doc: dict[str, Any]) -> date | None:
    expiry = doc.get("expiry_date")
    return date.fromisoformat(expiry) if expiry else None


ARCHIVE_SPEC: tuple[ArchiveColumn, ...] = (
    ArchiveColumn("event_id", lambda item, _: item.event.event_id),
    ArchiveColumn("event_type", lambda item, _: item.event.event_type),
    ArchiveColumn("schema_version", lambda item, _: item.event.schema_version),
    ArchiveColumn("facility_id", lambda item, _: item.event.facility_id),
    ArchiveColumn("occurred_at", lambda item, _: item.event.occurred_at_utc),
    ArchiveColumn("occurred_at_text", lambda _, doc: doc["occurred_at"]),
    ArchiveColumn(
        "local_date", lambda item, _: item.event.occurred_at_utc.astimezone(LOCAL_TZ).date()
    ),
    ArchiveColumn("received_at", lambda item, _: item.meta.received_at),
    ArchiveColumn("source", lambda item, _: item.meta.source),
    ArchiveColumn("seq", lambda item, _: item.meta.seq),
    _field("patient_ref", ""),
    _field("item", ""),
    _field("dose_mg", 0.0, float),
    _field("mode", ""),
    ArchiveColumn("take_home_days", _take_home_days),
    _field("quantity", 0.0, float),
    _field("quantity_delta", 0.0, float),
    _field("quantity_on_hand", 0.0, float),
    _field("reason", ""),
    _field("lot", ""),
    ArchiveColumn("expiry_date", _expiry),
    _field("programme", ""),
    _field("residence_commune", ""),
    _field("to_facility_id", ""),
    _field("max_days", 0, int),
    _field("outcome", ""),
    _field("purpose", ""),
    _field("results", {}, dict),
    _field("report_type", ""),
    _field("period", ""),
    _field("supervisor_id", ""),
    ArchiveColumn("payload", lambda _, doc: orjson.dumps(doc).decode()),
    ArchiveColumn("kafka_topic", lambda item, _: item.meta.topic),
    ArchiveColumn("kafka_partition", lambda item, _: item.meta.partition),
    ArchiveColumn("kafka_offset", lambda item, _: item.meta.offset),
)

ARCHIVE_COLUMNS: tuple[str, ...] = tuple(column.name for column in ARCHIVE_SPEC)
CHAINED_COLUMNS: tuple[str, ...] = tuple(column.name for column in ARCHIVE_SPEC if column.chained)


def archive_row(item: Accepted) -> tuple[Any, ...]:
    """The archive row of an accepted event, in ``ARCHIVE_COLUMNS`` order."""
    doc = item.event.to_contract_dict()
    return tuple(column.read(item, doc) for column in ARCHIVE_SPEC)


def column_list(names: Iterable[str] = ARCHIVE_COLUMNS) -> Sql:
    """Archive column names as SQL (every one checked against the specification)."""
    names = tuple(names)
    unknown = set(names) - set(ARCHIVE_COLUMNS)
    if unknown:
        raise ValueError(f"not archive columns: {sorted(unknown)}")
    return identifiers(names)


def content_hash_sql() -> Sql:
    """The chain's content hash of an archived row, computed by ClickHouse: SHA-256 of the
    row's chained columns as one tuple's text (strings quoted and escaped)."""
    return Sql(f"SHA256(toString(tuple({column_list(CHAINED_COLUMNS)})))")
