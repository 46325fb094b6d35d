"""The ostwatch store: idempotent intake writes, the registry, and the queries behind the CLI.

Every write is safe to repeat: a batch retried after a failure carries the same
deduplication token, and submissions live in a ReplacingMergeTree keyed by (source, seq).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import orjson

from ostwatch.timeutil import LOCAL_TZ, utc_now
from schemas.models import BaseEvent
from schemas.reference import RegistrySnapshot, parse_registry_texts, target_total_mismatches
from sinks.aggregates import Aggregates
from sinks.chain import ArchiveChain
from sinks.clickhouse import ClickHouse, migrate
from sinks.records import Accepted, IntakeBatch, MessageMeta, Rejected

log = logging.getLogger(__name__)

ARCHIVE_COLUMNS = (
    "event_id",
    "event_type",
    "schema_version",
    "facility_id",
    "occurred_at",
    "occurred_at_text",
    "local_date",
    "received_at",
    "source",
    "seq",
    "patient_ref",
    "item",
    "dose_mg",
    "mode",
    "take_home_days",
    "quantity",
    "quantity_delta",
    "quantity_on_hand",
    "reason",
    "lot",
    "expiry_date",
    "programme",
    "residence_commune",
    "to_facility_id",
    "max_days",
    "outcome",
    "purpose",
    "results",
    "report_type",
    "period",
    "supervisor_id",
    "payload",
    "kafka_topic",
    "kafka_partition",
    "kafka_offset",
)

# Typed archive columns filled straight from the contract field of the same name, with the
# value a column takes when the event type has no such field.
_FIELD_DEFAULTS: dict[str, Any] = {
    "patient_ref": "",
    "item": "",
    "dose_mg": 0.0,
    "mode": "",
    "take_home_days": 0,
    "quantity": 0.0,
    "quantity_delta": 0.0,
    "quantity_on_hand": 0.0,
    "reason": "",
    "lot": "",
    "programme": "",
    "residence_commune": "",
    "to_facility_id": "",
    "max_days": 0,
    "outcome": "",
    "purpose": "",
    "results": {},
    "report_type": "",
    "period": "",
    "supervisor_id": "",
}

SUBMISSION_COLUMNS = (
    "source",
    "seq",
    "outcome",
    "event_id",
    "event_type",
    "facility_id",
    "occurred_at",
    "reason",
    "raw",
    "decided_at",
    "kafka_topic",
    "kafka_partition",
    "kafka_offset",
    "digest",
)
# A conflict keeps what a submission row would, but it has no outcome of its own.
CONFLICT_COLUMNS = tuple(name for name in SUBMISSION_COLUMNS if name != "outcome")


def as_utc(instant: datetime) -> datetime:
    """ClickHouse returns DateTime64(…, 'UTC') values naive; mark them as the UTC they are."""
    return instant if instant.tzinfo is not None else instant.replace(tzinfo=UTC)


def archive_row(item: Accepted) -> list[Any]:
    """The archive row of an accepted event, in ARCHIVE_COLUMNS order."""
    event, meta = item.event, item.meta
    doc = event.to_contract_dict()
    occurred = event.occurred_at_utc
    expiry = doc.get("expiry_date")
    by_name = {name: doc.get(name, default) for name, default in _FIELD_DEFAULTS.items()}
    return [
        event.event_id,
        event.event_type,
        event.schema_version,
        event.facility_id,
        occurred,
        doc["occurred_at"],
        occurred.astimezone(LOCAL_TZ).date(),
        meta.received_at,
        meta.source,
        meta.seq,
        by_name["patient_ref"],
        by_name["item"],
        float(by_name["dose_mg"]),
        by_name["mode"],
        int(by_name["take_home_days"] or (1 if event.event_type == "dose.dispensed" else 0)),
        float(by_name["quantity"]),
        float(by_name["quantity_delta"]),
        float(by_name["quantity_on_hand"]),
        by_name["reason"],
        by_name["lot"],
        date.fromisoformat(expiry) if expiry else None,
        by_name["programme"],
        by_name["residence_commune"],
        by_name["to_facility_id"],
        int(by_name["max_days"]),
        by_name["outcome"],
        by_name["purpose"],
        dict(by_name["results"]),
        by_name["report_type"],
        by_name["period"],
        by_name["supervisor_id"],
        orjson.dumps(doc).decode(),
        meta.topic,
        meta.partition,
        meta.offset,
    ]


def _submission_row(
    meta: MessageMeta,
    outcome: str,
    decided_at: datetime,
    *,
    event: BaseEvent | None = None,
    rejected: Rejected | None = None,
) -> list[Any]:
    if event is not None:
        identity = [event.event_id, event.event_type, event.facility_id, event.occurred_at_utc]
        reason, raw = "", ""
    else:
        assert rejected is not None  # noqa: S101 - one of the two is always given
        identity = [
            rejected.event_id,
            rejected.event_type,
            rejected.facility_id,
            rejected.occurred_at,
        ]
        reason, raw = rejected.reason, rejected.raw.decode("utf-8", errors="replace")
    return [
        meta.source,
        meta.seq,
        outcome,
        *identity,
        reason,
        raw,
        decided_at,
        meta.topic,
        meta.partition,
        meta.offset,
        meta.digest,
    ]


def _conflict_row(item: Rejected, decided_at: datetime) -> list[Any]:
    row = _submission_row(item.meta, "rejected", decided_at, rejected=item)
    return [value for name, value in zip(SUBMISSION_COLUMNS, row, strict=True) if name != "outcome"]


# The duplicate filter's key of an event_id (the intake's ``filter_key``): the two
# 64-bit halves of its UUID, big-endian as written, xor-ed.
EVENT_KEY_SQL = (
    "bitXor(reinterpretAsUInt64(reverse(substring(UUIDToNum(event_id), 1, 8))), "
    "reinterpretAsUInt64(reverse(substring(UUIDToNum(event_id), 9, 8))))"
)


def _columns(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    """Transpose rows into columns for a column-oriented insert."""
    return [list(column) for column in zip(*rows, strict=True)] if rows else [[]] * width


def _token(kind: str, metas: Iterable[MessageMeta]) -> str:
    """A deduplication token naming exactly the submissions in a batch."""
    digest = hashlib.sha256(kind.encode())
    for meta in metas:
        digest.update(f"\x00{meta.source}\x00{meta.seq}".encode())
    return f"{kind}-{digest.hexdigest()}"


@dataclass(frozen=True)
class RegistryLoad:
    """What a registry load did. ``total_mismatches`` are warnings, not errors: each printed
    total of targets.csv that differs from its rows, as ``{year, column, printed, derived,
    difference, line}`` (``difference`` = printed − derived); ``warnings`` the same as text."""

    version: int
    unchanged: bool
    facilities: int
    items: int
    targets: int
    deadlines: int
    total_mismatches: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class Store:
    """All reads and writes ostwatch makes, over one ClickHouse connection."""

    def __init__(self, db: ClickHouse) -> None:
        self.db = db
        self.aggregates = Aggregates(db)
        self.chain = ArchiveChain(db)
        self._registry: tuple[int, RegistrySnapshot | None] = (-1, None)

    def migrate(self) -> list[str]:
        return migrate(self.db)

    # -- intake -------------------------------------------------------------------------

    def write_intake(self, batch: IntakeBatch) -> None:
        """Write one batch: archive first, then chain it, then the submission rows.

        That order matters: if the worker dies between the two, the redelivered messages
        find their events archived under the same submission and are recognised as
        redeliveries, not duplicates. The worker writes the submission rows only once the
        batch's aggregates and alerts are in place, because `ostwatch ingest` takes them as
        the sign that its lines are done.
        """
        self.write_archive(batch)
        self.write_submissions(batch)

    def write_archive(self, batch: IntakeBatch) -> None:
        """Archive a batch's accepted events (a retried batch is deduplicated), then chain
        them; redelivered events are chained too (a no-op unless the worker died before
        chaining them), so a submission row means its event is chained."""
        if batch.accepted:
            rows = [archive_row(item) for item in batch.accepted]
            self.db.insert_columns(
                "events_archive",
                _columns(rows, len(ARCHIVE_COLUMNS)),
                ARCHIVE_COLUMNS,
                dedup_token=_token("archive", (a.meta for a in batch.accepted)),
            )
        self.chain.extend(
            [
                (a.event.facility_id, a.event.event_id, a.event.occurred_at_utc)
                for a in batch.accepted
            ],
            [
                (a.event.facility_id, a.event.event_id, a.event.occurred_at_utc)
                for a in batch.redelivered
            ],
        )

    def write_submissions(self, batch: IntakeBatch) -> None:
        """One row per message decided: accepted, redelivered, duplicate or rejected."""
        decided_at = utc_now()
        submissions = [
            _submission_row(a.meta, "accepted", decided_at, event=a.event) for a in batch.archived
        ]
        submissions += [
            _submission_row(d.meta, "duplicate", decided_at, event=d.event)
            for d in batch.duplicates
        ]
        submissions += [
            _submission_row(r.meta, "rejected", decided_at, rejected=r) for r in batch.rejected
        ]
        if submissions:
            metas = [
                *(a.meta for a in batch.accepted),
                *(a.meta for a in batch.redelivered),
                *(d.meta for d in batch.duplicates),
                *(r.meta for r in batch.rejected),
            ]
            self.db.insert_columns(
                "submissions",
                _columns(submissions, len(SUBMISSION_COLUMNS)),
                SUBMISSION_COLUMNS,
                dedup_token=_token("submissions", metas),
            )
        if batch.conflicts:
            self.db.insert_columns(
                "submission_conflicts",
                _columns(
                    [_conflict_row(c, decided_at) for c in batch.conflicts], len(CONFLICT_COLUMNS)
                ),
                CONFLICT_COLUMNS,
                dedup_token=_token("conflicts", (c.meta for c in batch.conflicts)),
            )
            for item in batch.conflicts:
                log.warning(
                    "submission conflict: %s #%d reused with other content; refused, the "
                    "first stands",
                    item.meta.source,
                    item.meta.seq,
                    extra={
                        "topic": item.meta.topic,
                        "partition": item.meta.partition,
                        "offset": item.meta.offset,
                        "event_id": item.event_id or None,
                    },
                )

    def recorded_digests(self, names: Sequence[tuple[str, int]]) -> dict[tuple[str, int], str]:
        """The content fingerprint each of these submission names was recorded with (names
        never recorded are absent; rows from before fingerprints map to '')."""
        if not names:
            return {}
        wanted = set(names)
        ranges: dict[str, tuple[int, int]] = {}
        for source, seq in wanted:
            low, high = ranges.get(source, (seq, seq))
            ranges[source] = (min(low, seq), max(high, seq))
        # One seq range per source (a batch's seqs are mostly consecutive): the sort key
        # (source, seq) finds them without parsing thousands of values; extra rows are dropped.
        clauses = " OR ".join(
            f"(source = %(s{i})s AND seq BETWEEN %(l{i})s AND %(h{i})s)" for i in range(len(ranges))
        )
        parameters: dict[str, Any] = {}
        for i, (source, (low, high)) in enumerate(sorted(ranges.items())):
            parameters |= {f"s{i}": source, f"l{i}": low, f"h{i}": high}
        rows = self.db.query_rows(
            "SELECT source, seq, argMax(digest, decided_at) FROM submissions "  # noqa: S608
            f"WHERE {clauses} GROUP BY source, seq",
            parameters,
        )
        return {
            (source, int(seq)): digest
            for source, seq, digest in rows
            if (source, int(seq)) in wanted
        }

    def ping(self) -> None:
        """Raise unless ClickHouse answers a trivial query (StoreUnavailable if unreachable)."""
        self.db.query_rows("SELECT 1")

    def archived_count(self) -> int:
        return int(self.db.query_rows("SELECT count() FROM events_archive")[0][0])

    def archived_event_keys(self) -> Iterator[Sequence[int]]:
        """The duplicate filter's key of every accepted event_id (``EVENT_KEY_SQL``), block
        by block from one scan (a national archive: 0.2 s, not 8.8 s of id strings), and
        never the archive's ids in memory at once."""
        yield from self.db.stream_column(
            f"SELECT {EVENT_KEY_SQL} FROM events_archive"  # noqa: S608 (a constant)
        )

    def archived_event_ids_since(self, since: datetime) -> list[str]:
        """The event_ids archived (by any worker) since ``since``, by arrival time."""
        rows = self.db.query_rows(
            "SELECT toString(event_id) FROM events_archive WHERE received_at >= %(since)s",
            {"since": since},
        )
        return [row[0] for row in rows]

    def archived_submission_of(self, keys: Sequence[tuple[str, str]]) -> dict[str, tuple[str, int]]:
        """For (facility_id, event_id) pairs: the (source, seq) under which each event_id was
        archived, at whichever facility; event_ids never archived are absent.

        Looked up by facility first (the archive's sort key, so cheap); the rest, an event
        re-sent under another facility or a false positive of the duplicate filter, by
        event_id alone (the archive's bloom-filter index).
        """
        if not keys:
            return {}
        wanted = sorted({event_id for _, event_id in keys})
        found = self._archived_under(
            "facility_id IN %(facilities)s AND event_id IN %(ids)s",
            {"facilities": sorted({facility for facility, _ in keys}), "ids": wanted},
        )
        missing = [event_id for event_id in wanted if event_id not in found]
        if missing:
            found.update(self._archived_under("event_id IN %(ids)s", {"ids": missing}))
        return found

    def _archived_under(self, where: str, parameters: dict[str, Any]) -> dict[str, tuple[str, int]]:
        rows = self.db.query_rows(
            f"SELECT toString(event_id), source, seq FROM events_archive WHERE {where}",  # noqa: S608 (constant clauses)
            parameters,
        )
        return {event_id: (source, int(seq)) for event_id, source, seq in rows}

    def submission_counts(self, source: str) -> dict[str, int]:
        """accepted / rejected / duplicates decided so far for one submission source."""
        rows = self.db.query_rows(
            "SELECT outcome, count() FROM submissions FINAL WHERE source = %(source)s "
            "GROUP BY outcome",
            {"source": source},
        )
        counts = {"accepted": 0, "rejected": 0, "duplicates": 0}
        for outcome, count in rows:
            counts["duplicates" if outcome == "duplicate" else outcome] = int(count)
        return counts

    def undecided_offsets(
        self,
        topic: str,
        spans: Mapping[int, tuple[int, int]],
        since: datetime | None = None,
        limit: int = 50,
    ) -> dict[int, tuple[int, list[int]]]:
        """Per partition, how many offsets in its ``[start, end)`` have no submission row
        decided since ``since``, and the first ``limit`` of them (the committed-offset check;
        one scan of ``submissions`` for all partitions, a second only where some are missing).

        A row keyed by (source, seq) keeps the offset of its latest decision, so a message
        sent twice shows up here under its first offset: callers confirm by (source, seq)."""
        spans = {p: (start, end) for p, (start, end) in spans.items() if end > start}
        if not spans:
            return {}
        width = max(spans) + 1
        starts = [spans.get(p, (0, 0))[0] for p in range(width)]
        ends = [spans.get(p, (0, 0))[1] for p in range(width)]
        parameters = {"topic": topic, "starts": starts, "ends": ends, "since": since}
        where = (
            "kafka_topic = %(topic)s AND kafka_partition < length(%(starts)s) "
            "AND kafka_offset >= arrayElement(%(starts)s, kafka_partition + 1) "
            "AND kafka_offset < arrayElement(%(ends)s, kafka_partition + 1) "
            "AND (%(since)s IS NULL OR decided_at >= %(since)s)"
        )
        decided = dict(
            self.db.query_rows(
                "SELECT kafka_partition, uniqExact(kafka_offset) FROM submissions "  # noqa: S608 (constant clauses)
                f"WHERE {where} GROUP BY kafka_partition",
                parameters,
            )
        )
        found: dict[int, tuple[int, list[int]]] = {}
        for partition, (start, end) in spans.items():
            missing = end - start - int(decided.get(partition, 0))
            if missing <= 0:
                found[partition] = (0, [])
                continue
            rows = self.db.query_rows(
                "SELECT %(start)s + number AS o FROM numbers(%(end)s - %(start)s) "  # noqa: S608 (constant clauses)
                f"WHERE o NOT IN (SELECT kafka_offset FROM submissions WHERE {where} "
                "AND kafka_partition = %(partition)s) ORDER BY o LIMIT %(limit)s",
                {**parameters, "start": start, "end": end, "partition": partition, "limit": limit},
            )
            found[partition] = (missing, [int(row[0]) for row in rows])
        return found

    def undecided_submissions(self, keys: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
        """The (source, seq) of ``keys`` that have no submission row at all."""
        if not keys:
            return []
        found = {
            (str(source), int(seq))
            for source, seq in self.db.query_rows(
                "SELECT source, seq FROM submissions WHERE (source, seq) IN %(keys)s",
                {"keys": [tuple(key) for key in keys]},
            )
        }
        return [key for key in keys if (key[0], key[1]) not in found]

    def rejected(self, as_of: datetime | None = None, limit: int = 100_000) -> list[dict[str, Any]]:
        """Every rejected submission with its reason, oldest first; conflicts (a submission
        name reused with other content) among them, with a reason that says so."""
        # Rejected lines may have no readable occurred_at; they count from their arrival.
        rows = self.db.query_dicts(
            "SELECT source, seq, event_id, event_type, facility_id, reason, raw, decided_at "
            "FROM submissions FINAL WHERE outcome = 'rejected' "
            "AND (%(as_of)s IS NULL OR coalesce(occurred_at, decided_at) <= %(as_of)s) "
            "ORDER BY decided_at, source, seq LIMIT %(limit)s",
            {"limit": limit, "as_of": as_of},
        )
        rows += self.db.query_dicts(
            "SELECT source, seq, event_id, event_type, facility_id, reason, raw, decided_at "
            "FROM submission_conflicts FINAL "
            "WHERE %(as_of)s IS NULL OR coalesce(occurred_at, decided_at) <= %(as_of)s "
            "ORDER BY decided_at, source, seq LIMIT %(limit)s",
            {"limit": limit, "as_of": as_of},
        )
        rows.sort(key=lambda row: (row["decided_at"], row["source"], row["seq"]))
        for row in rows:
            meta_line = row["seq"] if row["source"].startswith("ingest:") else None
            row["line"] = meta_line
            row["event_id"] = row["event_id"] or None
            row["received_at"] = as_utc(row.pop("decided_at")).isoformat()
        return rows[:limit]

    def intake_totals(self) -> dict[str, Any]:
        """Totals for the live view: submissions by outcome, accepted events by facility."""
        outcomes = dict(
            self.db.query_rows(
                "SELECT toString(outcome), count() FROM submissions GROUP BY outcome"
            )
        )
        by_facility = self.db.query_rows(
            "SELECT facility_id, count(), countIf(event_type = 'dose.dispensed'), "
            "max(occurred_at) FROM events_archive GROUP BY facility_id ORDER BY facility_id"
        )
        return {
            "accepted": int(outcomes.get("accepted", 0)),
            "rejected": int(outcomes.get("rejected", 0)),
            "duplicates": int(outcomes.get("duplicate", 0)),
            "facilities": [
                {
                    "facility_id": facility,
                    "events": int(events),
                    "doses": int(doses),
                    "latest_occurred_at": as_utc(latest).isoformat() if latest else None,
                }
                for facility, events, doses, latest in by_facility
            ],
        }

    # -- registry -----------------------------------------------------------------------

    def registry_version(self) -> int:
        rows = self.db.query_rows("SELECT max(version) FROM registry_versions")
        return int(rows[0][0] or 0) if rows else 0

    def current_registry(self) -> tuple[int, RegistrySnapshot | None]:
        """The newest registry, parsed from the files exactly as they were loaded."""
        rows = self.db.query_rows(
            "SELECT version, files FROM registry_versions ORDER BY version DESC LIMIT 1"
        )
        if not rows:
            return 0, None
        version, files = rows[0]
        return int(version), parse_registry_texts(dict(files))

    def registry(self) -> RegistrySnapshot | None:
        """The newest registry, re-read only when a newer version was loaded."""
        version = self.registry_version()
        if version != self._registry[0]:
            self._registry = self.current_registry()
        return self._registry[1]

    def load_registry(self, texts: Mapping[str, str], source: str) -> RegistryLoad:
        """Validate and store a new registry version; an identical load keeps the version."""
        snapshot = parse_registry_texts(texts)
        digest = hashlib.sha256(
            b"".join(f"{name}\x00{texts[name]}\x00".encode() for name in sorted(texts))
        ).hexdigest()
        current = self.db.query_rows(
            "SELECT version, sha256 FROM registry_versions ORDER BY version DESC LIMIT 1"
        )
        counts = (
            len(snapshot.facilities),
            len(snapshot.items),
            len(snapshot.targets),
            len(snapshot.deadlines),
        )
        # A property of the files, so an unchanged reload reports them again.
        mismatches = target_total_mismatches(snapshot)
        checks = (
            [mismatch.as_dict() for mismatch in mismatches],
            [mismatch.message for mismatch in mismatches],
        )
        latest = int(current[0][0]) if current else 0
        unchanged = bool(current) and current[0][1] == digest
        version = latest if unchanged else latest + 1
        for mismatch in mismatches:
            log.warning(
                "registry version %d from %s: %s",
                version,
                source,
                mismatch.message,
                extra={"version": version, **mismatch.as_dict()},
            )
        if unchanged:
            return RegistryLoad(version, True, *counts, *checks)
        self._insert_registry_rows(version, snapshot)
        self.db.insert_columns(
            "registry_versions",
            [[version], [utc_now()], [source], [digest], [dict(texts)], [checks[1]]],
            ("version", "loaded_at", "source", "sha256", "files", "warnings"),
        )
        log.info("registry version %d loaded from %s", version, source, extra={"version": version})
        return RegistryLoad(version, False, *counts, *checks)

    def registry_history(self) -> list[dict[str, Any]]:
        """Every registry version as loaded (files verbatim), oldest first: what an archive
        export carries so that a restored store reads the reference data it was built with."""
        return self.db.query_dicts(
            "SELECT version, loaded_at, source, sha256, files, warnings "
            "FROM registry_versions ORDER BY version"
        )

    def restore_registry_version(
        self,
        version: int,
        loaded_at: datetime,
        source: str,
        sha256: str,
        files: Mapping[str, str],
        warnings: Sequence[str],
    ) -> None:
        """Store one registry version exactly as it was (from an archive), with its rows
        derived from its files the same way a load derives them."""
        self._insert_registry_rows(version, parse_registry_texts(files))
        self.db.insert_columns(
            "registry_versions",
            [[version], [loaded_at], [source], [sha256], [dict(files)], [list(warnings)]],
            ("version", "loaded_at", "source", "sha256", "files", "warnings"),
        )

    def _insert_registry_rows(self, version: int, snapshot: RegistrySnapshot) -> None:
        facilities = [
            [
                version,
                f.facility_id,
                f.name,
                f.type,
                f.parent_id or "",
                f.district,
                f.province,
                f.live_from,
            ]
            for f in snapshot.facilities.values()
        ]
        items = [
            [version, i.item, i.name, i.kind, i.unit, i.mg_per_unit]
            for i in snapshot.items.values()
        ]
        targets = [
            [
                version,
                t.facility_id,
                t.year,
                t.routine_target,
                t.take_home_target,
                t.community_detox_target,
            ]
            for t in snapshot.targets
        ]
        deadlines = [
            [version, d.report_type, d.frequency, d.due_day, d.reporter_type, d.recipient_id or ""]
            for d in snapshot.deadlines.values()
        ]
        tables: dict[str, tuple[list[list[Any]], tuple[str, ...]]] = {
            "registry_facilities": (
                facilities,
                (
                    "version",
                    "facility_id",
                    "name",
                    "type",
                    "parent_id",
                    "district",
                    "province",
                    "live_from",
                ),
            ),
            "registry_items": (items, ("version", "item", "name", "kind", "unit", "mg_per_unit")),
            "registry_targets": (
                targets,
                (
                    "version",
                    "facility_id",
                    "year",
                    "routine_target",
                    "take_home_target",
                    "community_detox_target",
                ),
            ),
            "registry_deadlines": (
                deadlines,
                ("version", "report_type", "frequency", "due_day", "reporter_type", "recipient_id"),
            ),
        }
        for table, (rows, names) in tables.items():
            if rows:
                self.db.insert_columns(
                    table, _columns(rows, len(names)), names, dedup_token=f"{table}-v{version}"
                )
