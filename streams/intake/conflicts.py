"""Submission names are not reused: one (source, seq), one content.

A sender names each submission with the ``ostwatch-source``/``ostwatch-seq`` headers, so that
a resend (a producer's retry, a Kafka redelivery) is recognised as the same submission and
its recorded outcome is refreshed, never counted twice. A message that reuses a name already
recorded but carries other bytes is not a resend: applied, it would overwrite the outcome
that ``ostwatch ingest`` reported for that line (anything that can write to the broker can
send one). It is refused as a *conflict*: kept in ``submission_conflicts`` with its reason,
shown by ``ostwatch report rejected``, and the first submission's record stands. Submissions
without the headers are named by their Kafka coordinates, which an embedded broker's restart
reuses, so they are not checked.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping

import orjson

from sinks.records import Accepted, Duplicate, IntakeBatch, MessageMeta, Rejected

# Submission names are (source, seq).
Name = tuple[str, int]


def submission_digest(value: bytes | None) -> str:
    """The fingerprint of a submission's bytes (128-bit BLAKE2b, hex)."""
    return hashlib.blake2b(value or b"", digest_size=16).hexdigest()


def conflict_reason(meta: MessageMeta) -> str:
    return (
        f"conflict: submission {meta.source} #{meta.seq} was already recorded with other "
        "content; this message was not applied (the first stands: send it under a new seq)"
    )


def _as_conflict(item: Accepted | Duplicate | Rejected) -> Rejected:
    meta = item.meta
    if isinstance(item, Rejected):
        return Rejected(
            meta, conflict_reason(meta), item.raw, item.original, item.event_id,
            item.event_type, item.facility_id, item.occurred_at,
        )  # fmt: skip
    event = item.event
    return Rejected(
        meta,
        conflict_reason(meta),
        orjson.dumps(event.to_contract_dict()),
        b"",
        event.event_id,
        event.event_type,
        event.facility_id,
        event.occurred_at_utc,
    )


def _in_arrival_order(batch: IntakeBatch) -> Iterator[Accepted | Duplicate | Rejected]:
    decisions: list[Accepted | Duplicate | Rejected] = [
        *batch.accepted, *batch.redelivered, *batch.duplicates, *batch.rejected,
    ]  # fmt: skip
    return iter(
        sorted(decisions, key=lambda d: (d.meta.topic, d.meta.partition, d.meta.offset, d.meta.seq))
    )


def divert_conflicts(batch: IntakeBatch, recorded: Mapping[Name, str]) -> IntakeBatch:
    """Move every decision whose name was recorded (before, or earlier in this batch) with
    another digest into ``batch.conflicts``; ``recorded`` maps names to stored digests."""
    first: dict[Name, str] = dict(recorded)
    refused: set[int] = set()
    for item in _in_arrival_order(batch):
        meta = item.meta
        if not meta.digest:
            continue
        name = (meta.source, meta.seq)
        known = first.setdefault(name, meta.digest)
        if known and known != meta.digest:
            refused.add(id(item))
            batch.conflicts.append(_as_conflict(item))
    if refused:
        batch.accepted = [a for a in batch.accepted if id(a) not in refused]
        batch.redelivered = [a for a in batch.redelivered if id(a) not in refused]
        batch.duplicates = [d for d in batch.duplicates if id(d) not in refused]
        batch.rejected = [r for r in batch.rejected if id(r) not in refused]
    return batch


def named(batch: IntakeBatch) -> list[Name]:
    """The sender-given names in a batch (the ones checked for conflicts)."""
    return sorted(
        {(item.meta.source, item.meta.seq) for item in _in_arrival_order(batch) if item.meta.digest}
    )
