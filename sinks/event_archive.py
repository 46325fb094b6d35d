"""The archive repository: accepted events in ``events_archive``, chained as they land.

Rows follow ``sinks/archive_columns.py`` (the one column specification); every read is a
named statement in ``sinks/sql/``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sinks.archive_columns import ARCHIVE_COLUMNS, archive_row
from sinks.chain import ArchiveChain
from sinks.clickhouse import ClickHouse, as_utc
from sinks.queries import sql
from sinks.records import Accepted, IntakeBatch, batch_token


class ArchiveRepository:
    """Writes and looks up archived events; ``chain`` is the archive's hash chain."""

    def __init__(self, db: ClickHouse) -> None:
        self._db = db
        self.chain = ArchiveChain(db)

    def write(self, batch: IntakeBatch) -> None:
        """Archive a batch's accepted events (a retried batch is deduplicated), then chain
        them; redelivered events are chained too (a no-op unless the worker died before
        chaining them), so a submission row means its event is chained."""
        if batch.accepted:
            self.insert(batch.accepted, batch_token("archive", (a.meta for a in batch.accepted)))
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

    def insert(self, accepted: Sequence[Accepted], dedup_token: str | None = None) -> None:
        """One insert of these events' rows, unchained (``write`` chains them)."""
        rows = [archive_row(item) for item in accepted]
        self._db.insert_rows("events_archive", rows, ARCHIVE_COLUMNS, dedup_token=dedup_token)

    def count(self) -> int:
        return int(self._db.query_rows(sql("archive_count"))[0][0])

    def counts_by_type(self) -> dict[str, int]:
        return {str(kind): int(n) for kind, n in self._db.query_rows(sql("archive_by_type"))}

    def latest_received(self) -> datetime | None:
        """When the archive last received an event (None while it is empty)."""
        latest, count = self._db.query_rows(sql("archive_latest_received"))[0]
        return as_utc(latest) if count else None

    def event_keys(self) -> Iterator[Sequence[int]]:
        """The duplicate filter's key of every accepted event_id, block by block from one
        scan (a national archive: 0.2 s, not 8.8 s of id strings), and never the archive's
        ids in memory at once."""
        yield from self._db.stream_column(sql("archive_event_keys"))

    def event_ids_since(self, since: datetime) -> list[str]:
        """The event_ids archived (by any worker) since ``since``, by arrival time."""
        rows = self._db.query_rows(sql("archive_ids_since"), {"since": since})
        return [row[0] for row in rows]

    def submission_of(self, keys: Sequence[tuple[str, str]]) -> dict[str, tuple[str, int]]:
        """For (facility_id, event_id) pairs: the (source, seq) under which each event_id was
        archived, at whichever facility; event_ids never archived are absent.

        Looked up by facility first (the archive's sort key, so cheap); the rest, an event
        re-sent under another facility or a false positive of the duplicate filter, by
        event_id alone (the archive's bloom-filter index).
        """
        if not keys:
            return {}
        wanted = sorted({event_id for _, event_id in keys})
        facilities = sorted({facility for facility, _ in keys})
        found = self._submissions("archive_submission_at_facilities", facilities, wanted)
        missing = [event_id for event_id in wanted if event_id not in found]
        if missing:
            found.update(self._submissions("archive_submission_of_ids", None, missing))
        return found

    def _submissions(
        self, name: str, facilities: list[str] | None, ids: list[str]
    ) -> dict[str, tuple[str, int]]:
        parameters: dict[str, Any] = {"ids": ids}
        if facilities is not None:
            parameters["facilities"] = facilities
        rows = self._db.query_rows(sql(name), parameters)
        return {event_id: (source, int(seq)) for event_id, source, seq in rows}

    def by_facility(self) -> list[dict[str, Any]]:
        """Accepted events, doses and the latest event's time per facility (the live view)."""
        return [
            {
                "facility_id": facility,
                "events": int(events),
                "doses": int(doses),
                "latest_occurred_at": as_utc(latest).isoformat() if latest else None,
            }
            for facility, events, doses, latest in self._db.query_rows(sql("archive_by_facility"))
        ]
