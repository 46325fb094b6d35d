"""What the intake hands to the store: one decision per Kafka message, with where it came from."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from schemas.kafka_headers import INGEST_SOURCE_PREFIX
from schemas.models import BaseEvent


@dataclass(frozen=True, slots=True)
class MessageMeta:
    """Where a message came from. (source, seq) names a submission; redelivery keeps it.

    ``digest`` fingerprints the submission's bytes when a sender named it (headers), so that
    another message under the same name is told from a redelivery (the intake's conflict check).
    """

    source: str
    seq: int
    topic: str
    partition: int
    offset: int
    received_at: datetime
    digest: str = ""

    @property
    def line(self) -> int | None:
        """The line number in the ingested file, when the source is an ingest run."""
        return self.seq if self.source.startswith(INGEST_SOURCE_PREFIX) else None


@dataclass(frozen=True, slots=True)
class Accepted:
    event: BaseEvent
    meta: MessageMeta


@dataclass(frozen=True, slots=True)
class Duplicate:
    """An event whose event_id was accepted before from another submission."""

    event: BaseEvent
    meta: MessageMeta


@dataclass(frozen=True, slots=True)
class Rejected:
    """A refused submission. ``raw`` is what the facility sent, readable (its JSON line);
    ``original`` is the Kafka message value exactly as received, for the dead-letter topic.
    """

    meta: MessageMeta
    reason: str
    raw: bytes
    original: bytes
    event_id: str = ""
    event_type: str = ""
    facility_id: str = ""
    occurred_at: datetime | None = None


@dataclass(slots=True)
class IntakeBatch:
    """The decisions for one batch of messages, written to ClickHouse together.

    ``redelivered`` are submissions already archived before (a worker stopped between the
    ClickHouse write and the offset commit): they only refresh their submission row.
    ``conflicts`` reuse the name (source, seq) of a submission recorded with other content:
    refused and kept apart, so that the first submission's recorded outcome stands.
    """

    accepted: list[Accepted] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    duplicates: list[Duplicate] = field(default_factory=list)
    redelivered: list[Accepted] = field(default_factory=list)
    conflicts: list[Rejected] = field(default_factory=list)

    @property
    def archived(self) -> list[Accepted]:
        """The accepted and the redelivered: every event of the batch that is in the archive
        (a redelivery may have died before its aggregates and alerts, so both are judged)."""
        return [*self.accepted, *self.redelivered]

    def __len__(self) -> int:
        return (
            len(self.accepted)
            + len(self.rejected)
            + len(self.duplicates)
            + len(self.redelivered)
            + len(self.conflicts)
        )


def batch_token(kind: str, metas: Iterable[MessageMeta]) -> str:
    """A deduplication token naming exactly the submissions in a batch: a retried batch
    carries the same one, so ClickHouse drops the repeated insert."""
    digest = hashlib.sha256(kind.encode())
    for meta in metas:
        digest.update(f"\x00{meta.source}\x00{meta.seq}".encode())
    return f"{kind}-{digest.hexdigest()}"
