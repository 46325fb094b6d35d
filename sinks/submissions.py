"""The submissions repository: one decision per message (accepted, redelivered, duplicate,
rejected) keyed by (source, seq), and the conflicts refused beside them.

Submissions live in a ReplacingMergeTree keyed by (source, seq), so a retried batch (same
deduplication token) or a redelivered message leaves one row per name.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ostwatch.timeutil import utc_now
from sinks.clickhouse import ClickHouse, as_utc
from sinks.queries import sql
from sinks.records import INGEST_SOURCE_PREFIX, IntakeBatch, MessageMeta, Rejected, batch_token

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Decision:
    """A submission row before it is written: the message, its outcome and what it named."""

    meta: MessageMeta
    outcome: str
    event_id: str | None
    event_type: str | None
    facility_id: str | None
    occurred_at: datetime | None
    reason: str = ""
    raw: str = ""

    @classmethod
    def of_rejected(cls, item: Rejected) -> _Decision:
        raw = item.raw.decode("utf-8", errors="replace")
        return cls(
            item.meta, "rejected", item.event_id, item.event_type, item.facility_id,
            item.occurred_at, item.reason, raw,
        )  # fmt: skip

    def row(self, columns: Sequence[str], decided_at: datetime) -> tuple[Any, ...]:
        meta = self.meta
        values = {
            "source": meta.source, "seq": meta.seq, "outcome": self.outcome,
            "event_id": self.event_id, "event_type": self.event_type,
            "facility_id": self.facility_id, "occurred_at": self.occurred_at,
            "reason": self.reason, "raw": self.raw, "decided_at": decided_at,
            "kafka_topic": meta.topic, "kafka_partition": meta.partition,
            "kafka_offset": meta.offset, "digest": meta.digest,
        }  # fmt: skip
        return tuple(values[name] for name in columns)


SUBMISSION_COLUMNS = (
    "source", "seq", "outcome", "event_id", "event_type", "facility_id", "occurred_at",
    "reason", "raw", "decided_at", "kafka_topic", "kafka_partition", "kafka_offset", "digest",
)  # fmt: skip
# A conflict keeps what a submission row would, but it has no outcome of its own.
CONFLICT_COLUMNS = tuple(name for name in SUBMISSION_COLUMNS if name != "outcome")


class SubmissionRepository:
    """Writes decisions and answers what was decided (counts, rejections, missing offsets)."""

    def __init__(self, db: ClickHouse) -> None:
        self._db = db

    def write(self, batch: IntakeBatch) -> None:
        """One row per message decided: accepted, redelivered, duplicate or rejected; a
        conflict (a name reused with other content) goes to ``submission_conflicts``."""
        decided_at = utc_now()
        decisions = [
            *(_Decision(a.meta, "accepted", a.event.event_id, a.event.event_type,
                        a.event.facility_id, a.event.occurred_at_utc) for a in batch.archived),
            *(_Decision(d.meta, "duplicate", d.event.event_id, d.event.event_type,
                        d.event.facility_id, d.event.occurred_at_utc) for d in batch.duplicates),
            *(_Decision.of_rejected(r) for r in batch.rejected),
        ]  # fmt: skip
        if decisions:
            metas = [
                *(a.meta for a in batch.accepted),
                *(a.meta for a in batch.redelivered),
                *(d.meta for d in batch.duplicates),
                *(r.meta for r in batch.rejected),
            ]
            self._db.insert_rows(
                "submissions",
                [decision.row(SUBMISSION_COLUMNS, decided_at) for decision in decisions],
                SUBMISSION_COLUMNS,
                dedup_token=batch_token("submissions", metas),
            )
        if batch.conflicts:
            self._db.insert_rows(
                "submission_conflicts",
                [
                    _Decision.of_rejected(c).row(CONFLICT_COLUMNS, decided_at)
                    for c in batch.conflicts
                ],
                CONFLICT_COLUMNS,
                dedup_token=batch_token("conflicts", (c.meta for c in batch.conflicts)),
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
        sources = sorted(ranges)
        rows = self._db.query_rows(
            sql("submission_digests"),
            {
                "sources": sources,
                "lows": [ranges[source][0] for source in sources],
                "highs": [ranges[source][1] for source in sources],
                "low": min(low for low, _ in ranges.values()),
                "high": max(high for _, high in ranges.values()),
            },
        )
        return {
            (source, int(seq)): digest
            for source, seq, digest in rows
            if (source, int(seq)) in wanted
        }

    def count(self) -> int:
        """Submission names decided so far."""
        return int(self._db.query_rows(sql("submissions_count"))[0][0])

    def counts(self, source: str) -> dict[str, int]:
        """accepted / rejected / duplicates decided so far for one submission source."""
        rows = self._db.query_rows(sql("submission_counts"), {"source": source})
        counts = {"accepted": 0, "rejected": 0, "duplicates": 0}
        for outcome, count in rows:
            counts["duplicates" if outcome == "duplicate" else outcome] = int(count)
        return counts

    def outcomes(self) -> dict[str, int]:
        """Every submission decided so far, by outcome (the live view's totals)."""
        found = dict(self._db.query_rows(sql("submission_outcomes")))
        return {
            "accepted": int(found.get("accepted", 0)),
            "rejected": int(found.get("rejected", 0)),
            "duplicates": int(found.get("duplicate", 0)),
        }

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
        in_spans = sql("submissions_in_spans")
        decided = dict(
            self._db.query_rows(sql("submission_offsets_decided", in_spans=in_spans), parameters)
        )
        found: dict[int, tuple[int, list[int]]] = {}
        for partition, (start, end) in spans.items():
            missing = end - start - int(decided.get(partition, 0))
            if missing <= 0:
                found[partition] = (0, [])
                continue
            rows = self._db.query_rows(
                sql("submission_offsets_missing", in_spans=in_spans),
                {**parameters, "start": start, "end": end, "partition": partition, "limit": limit},
            )
            found[partition] = (missing, [int(row[0]) for row in rows])
        return found

    def undecided(self, keys: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
        """The (source, seq) of ``keys`` that have no submission row at all."""
        if not keys:
            return []
        found = {
            (str(source), int(seq))
            for source, seq in self._db.query_rows(
                sql("submissions_undecided"), {"keys": [tuple(key) for key in keys]}
            )
        }
        return [key for key in keys if (key[0], key[1]) not in found]

    def rejected(self, as_of: datetime | None = None, limit: int = 100_000) -> list[dict[str, Any]]:
        """Every rejected submission with its reason, oldest first; conflicts (a submission
        name reused with other content) among them, with a reason that says so."""
        parameters = {"limit": limit, "as_of": as_of}
        rows = self._db.query_dicts(sql("submissions_rejected"), parameters)
        rows += self._db.query_dicts(sql("submission_conflicts"), parameters)
        rows.sort(key=lambda row: (row["decided_at"], row["source"], row["seq"]))
        for row in rows:
            row["line"] = row["seq"] if row["source"].startswith(INGEST_SOURCE_PREFIX) else None
            row["event_id"] = row["event_id"] or None
            row["received_at"] = as_utc(row.pop("decided_at")).isoformat()
        return rows[:limit]
